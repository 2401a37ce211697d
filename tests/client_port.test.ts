import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { serveClientPort } from "../src/api/client_port.ts";
import type { ClientPortHandle } from "../src/api/client_port.ts";
import { decodeValue, encodeValue } from "../src/app/value_codec.ts";
import { Client, OutcomeUnknownError, RejectedError, SessionEvictedError, UnauthorizedError } from "../src/client/mod.ts";
import { FrameReader, frameOf, framesOf } from "../src/net/client_frame.ts";
import { FakeCluster } from "./api_fake_handle.ts";

/** Three fake replicas, each behind a real client port on 127.0.0.1. */
async function cluster(options: { token?: string; tokenlessWrites?: "open" | "refuse"; bodySizeMax?: number } = {}) {
  const fake = new FakeCluster(3);
  fake.apiUrls = ["http://replica-0", "http://replica-1", "http://replica-2"];
  const ports: ClientPortHandle[] = [];
  const urls: string[] = [];
  for (const handle of fake.handles) {
    ports.push(await serveClientPort(handle, {
      hostname: "127.0.0.1", port: 0, readAccess: "public", bodySizeMax: options.bodySizeMax ?? 64 * 1024,
      tokenlessWrites: options.tokenlessWrites ?? "open",
      ...(options.token === undefined ? {} : { token: options.token }),
      primaryHint: (apiUrl) => urls[fake.apiUrls.indexOf(apiUrl)],
    }));
  }
  for (const port of ports) urls.push(`chronon://127.0.0.1:${port.port}`);
  return { fake, urls, ports, close: () => Promise.all(ports.map((p) => p.close())) };
}

/** Sends raw bytes on a fresh connection and collects the decoded answers until it closes. */
function raw(port: number, bytes: Uint8Array, waitMs = 300): Promise<{ answers: unknown[]; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const reader = new FrameReader(1 << 20);
    const answers: unknown[] = [];
    let closed = false;
    socket.on("data", (chunk: Uint8Array) => {
      const frames = reader.push(chunk);
      if (frames !== "oversized") for (const f of frames) answers.push(decodeValue(f));
    });
    socket.on("close", () => {
      closed = true;
    });
    socket.on("error", () => {});
    socket.write(bytes);
    setTimeout(() => {
      socket.destroy();
      resolve({ answers, closed });
    }, waitMs);
  });
}

const frame = (value: unknown) => frameOf(encodeValue(value));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

describe("binary client frames", () => {
  test("frames split anywhere and several in one chunk come out whole and in order", () => {
    const bytes = concat(frame([1, "a"]), frame([2, "bb"]), frame([3, new Uint8Array(300)]));
    for (const cut of [1, 3, 4, 5, 9, bytes.length - 1]) {
      const reader = new FrameReader(1024);
      const first = reader.push(bytes.subarray(0, cut));
      const second = reader.push(bytes.subarray(cut));
      assert.ok(first !== "oversized" && second !== "oversized");
      const all = [...first, ...second].map((p) => decodeValue(p));
      assert.deepEqual(all.map((m) => (m as unknown[])[0]), [1, 2, 3], `cut at ${cut}`);
    }
  });

  test("a length prefix over the limit is reported before its payload arrives", () => {
    const reader = new FrameReader(100);
    assert.equal(reader.push(new Uint8Array([101, 0, 0, 0])), "oversized");
    assert.deepEqual(new FrameReader(100).push(new Uint8Array([100, 0, 0])), []);
  });
});

describe("binary client protocol", () => {
  test("the client follows not_primary hints to the primary's client port, submits and queries", async () => {
    const c = await cluster();
    const client = new Client({ addresses: c.urls, timeoutMs: 1000, deadlineMs: 3000 });
    try {
      c.fake.primary = 2;
      const reply = await client.submit({ add: 5 }) as { counter: number };
      assert.equal(reply.counter, 5);
      assert.equal(client.primary, c.urls[2]);
      assert.match(client.session ?? "", /^[0-9a-f]{32}$/);
      assert.deepEqual(c.fake.handles.map((h) => h.calls.filter((x) => x === "registerSession").length), [1, 0, 1]);
      assert.deepEqual(c.fake.handles.map((h) => h.calls.filter((x) => x === "submit").length), [0, 0, 1]);
      assert.deepEqual(await client.query("q"), { counter: 5, consistency: "linearizable", query: "q" });
      assert.equal((await client.query("q", { consistency: "stale" }) as { consistency: string }).consistency, "stale");
    } finally {
      client.close();
      await c.close();
    }
  });

  test("a retry after a lost answer keeps the request number and is applied once", async () => {
    const c = await cluster();
    const client = new Client({ addresses: c.urls, timeoutMs: 150, deadlineMs: 5000, backoffMsMin: 5 });
    try {
      await client.register();
      // The primary applies the request but its answer never comes; then replica 1 takes over.
      c.fake.afterApply = (replica) => {
        if (replica !== 0) return "answer";
        c.fake.primary = 1;
        return "hang";
      };
      const reply = await client.submit({ add: 2 }) as { counter: number };
      assert.equal(reply.counter, 2);
      assert.equal(c.fake.applied.length, 1, "applied once despite the retry");
      assert.equal(c.fake.handles[1]!.calls.filter((x) => x === "submit").length, 1);
    } finally {
      client.close();
      await c.close();
    }
  });

  test("definite errors are definite, and an unanswered request is outcome-unknown", async () => {
    const c = await cluster();
    const client = new Client({ addresses: [c.urls[0]!], timeoutMs: 100, deadlineMs: 400, backoffMsMin: 5 });
    try {
      await assert.rejects(client.submit({ fail: "no overdrafts" }), (e: unknown) => e instanceof RejectedError && e.message === "no overdrafts");
      c.fake.sessions.clear();
      await assert.rejects(client.submit({ add: 1 }), SessionEvictedError);
      c.fake.handles[0]!.hang = true;
      await assert.rejects(client.submit({ add: 1 }), OutcomeUnknownError);
    } finally {
      client.close();
      await c.close();
    }
  });

  test("writes need the token; reads follow readAccess; a wrong token closes the connection", async () => {
    const c = await cluster({ token: "s3cret-token-0123456789" });
    const good = new Client({ addresses: c.urls, token: "s3cret-token-0123456789", timeoutMs: 500, deadlineMs: 2000 });
    const none = new Client({ addresses: c.urls, timeoutMs: 500, deadlineMs: 2000 });
    try {
      assert.equal((await good.submit({ add: 1 }) as { counter: number }).counter, 1);
      await assert.rejects(none.submit({ add: 1 }), UnauthorizedError);
      assert.equal((await none.query("q", { consistency: "stale" }) as { counter: number }).counter, 1);
      // A wrong token is refused at the hello: a definite error at once, not a retry until the deadline.
      const wrongClient = new Client({ addresses: c.urls, token: "wrong-token-0123456789", timeoutMs: 500, deadlineMs: 10_000 });
      const started = Date.now();
      await assert.rejects(wrongClient.submit({ add: 1 }), UnauthorizedError);
      assert.ok(Date.now() - started < 2000, "refused without waiting for the deadline");
      wrongClient.close();
      const wrong = await raw(c.ports[0]!.port, frame([0, 1, "wrong-token-0123456789"]));
      assert.equal(wrong.closed, true);
      assert.deepEqual((wrong.answers[0] as unknown[]).slice(0, 3), [0, 1, "unauthorized"]);
      assert.equal(c.fake.applied.length, 1);
    } finally {
      good.close();
      none.close();
      await c.close();
    }
    const refusing = await cluster({ tokenlessWrites: "refuse" });
    const client = new Client({ addresses: refusing.urls, timeoutMs: 500, deadlineMs: 2000 });
    try {
      await assert.rejects(client.submit({ add: 1 }), UnauthorizedError);
    } finally {
      client.close();
      await refusing.close();
    }
  });

  test("garbage, oversized and out-of-order frames close that connection only; the port keeps serving", async () => {
    const c = await cluster({ bodySizeMax: 1000 });
    try {
      const port = c.ports[0]!.port;
      const garbage = await raw(port, concat(new Uint8Array([3, 0, 0, 0, 0xff, 0xff, 0xff])));
      assert.equal(garbage.closed, true);
      assert.equal((garbage.answers[0] as unknown[])[2], "bad_request");
      const oversized = await raw(port, new Uint8Array([0xff, 0xff, 0xff, 0x7f]));
      assert.equal(oversized.closed, true);
      assert.equal((oversized.answers[0] as unknown[])[2], "too_large");
      const noHello = await raw(port, frame([7, 2, new Uint8Array(16), 1, { add: 1 }]));
      assert.equal(noHello.closed, true);
      assert.equal((noHello.answers[0] as unknown[])[2], "bad_request");
      // A valid session after a bad request on the same connection: bad fields are per request.
      const session = new Uint8Array(16).fill(9);
      const mixed = await raw(port, concat(
        frame([0, 1, null]),
        frame([5, 2, new Uint8Array(3), 1, { add: 1 }]),
        frame([6, 1, session]),
        frame([7, 2, session, 1, { add: 4 }]),
      ));
      assert.equal(mixed.closed, false);
      const byId = new Map((mixed.answers as unknown[][]).map((a) => [a[0], a]));
      assert.deepEqual(byId.get(0), [0, 1]);
      assert.equal(byId.get(5)![2], "bad_request");
      assert.equal(byId.get(6)![1], 0);
      assert.equal((byId.get(7)![2] as { counter: number }).counter, 4);
      assert.equal(c.fake.applied.length, 1);
      for (let i = 0; i < 50 && c.ports[0]!.connections > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(c.ports[0]!.connections, 0, "closed connections are forgotten");
    } finally {
      await c.close();
    }
  });
});

describe("binary client hot path", () => {
  test("the frames of one turn are written as one buffer, byte for byte the frames one after another", () => {
    const payloads = [encodeValue([1, "a"]), new Uint8Array(0), encodeValue([3, new Uint8Array(70_000)]), encodeValue([4])];
    const joined = framesOf(payloads, payloads.length);
    assert.deepEqual(joined, concat(...payloads.map((p) => frameOf(p))));
    assert.deepEqual(framesOf(payloads, 2), concat(frameOf(payloads[0]!), frameOf(payloads[1]!)), "only the first count");
    const reader = new FrameReader(1 << 20);
    const back = reader.push(joined);
    assert.ok(back !== "oversized");
    assert.deepEqual(back, payloads);
  });

  test("calls on one client run one at a time in order, also when a call starts with nothing in flight after a failure", async () => {
    const c = await cluster();
    const client = new Client({ addresses: [c.urls[0]!], timeoutMs: 500, deadlineMs: 1500 });
    try {
      const replies = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => client.submit({ add: n }))) as { counter: number }[];
      assert.deepEqual(replies.map((r) => r.counter), [1, 3, 6, 10, 15, 21]);
      await assert.rejects(client.submit({ fail: "no" }), RejectedError);
      // Idle again: this call starts at once; the next one queues behind it.
      const [a, b] = await Promise.all([client.submit({ add: 100 }), client.submit({ add: 1000 })]) as { counter: number }[];
      assert.equal(a!.counter, 121);
      assert.equal(b!.counter, 1121);
      assert.deepEqual(c.fake.applied.map((x) => x.request), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      client.close();
      await c.close();
    }
  });

  test("many clients of one process share the connection and each gets its own answers", async () => {
    const c = await cluster();
    const clients = Array.from({ length: 32 }, () => new Client({ addresses: [c.urls[0]!], timeoutMs: 1000, deadlineMs: 3000 }));
    try {
      for (let round = 0; round < 3; round++) {
        const replies = await Promise.all(clients.map((client, i) => client.submit({ add: 0, round, i }))) as { echo: { round: number; i: number } }[];
        replies.forEach((reply, i) => assert.deepEqual(reply.echo, { add: 0, round, i }));
      }
      assert.equal(c.ports[0]!.connections, 1, "one connection for all of them");
    } finally {
      for (const client of clients) client.close();
      await c.close();
    }
  });
});
