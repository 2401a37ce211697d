import { test } from "node:test";
import assert from "node:assert/strict";
import { createApi } from "../src/api/app.ts";
import { serve } from "../src/api/serve.ts";
import type { ServerHandle } from "../src/api/serve.ts";
import { defineApp } from "../src/app/app.ts";
import type { Event } from "../src/app/app.ts";
import {
  BadRequestError, Client, OutcomeUnknownError, RejectedError, SessionEvictedError, TooLargeError,
  UnauthorizedError, UnavailableError,
} from "../src/client/mod.ts";
import { FakeCluster } from "./api_fake_handle.ts";

/** Three fake replicas, each behind the real API on its own 127.0.0.1 port. */
async function cluster(options: { requestTimeoutMs?: number; token?: string; bodySizeMax?: number } = {}) {
  const fake = new FakeCluster(3);
  const servers: ServerHandle[] = [];
  for (const handle of fake.handles) {
    const app = createApi(handle, {
      readAccess: "public", bodySizeMax: options.bodySizeMax ?? 64 * 1024, requestTimeoutMs: options.requestTimeoutMs ?? 2000,
      ...(options.token === undefined ? {} : { token: options.token }),
    });
    servers.push(await serve(app, { hostname: "127.0.0.1", port: 0 }));
  }
  fake.apiUrls = servers.map((s) => `http://127.0.0.1:${s.port}`);
  return { fake, urls: fake.apiUrls, close: () => Promise.all(servers.map((s) => s.close())), servers };
}

// The app type the client is typed from (only its types are used here).
const counterApp = defineApp({
  genesis: () => ({ counter: 0 }),
  apply(state, event: Event<{ add?: number; fail?: string }>) {
    return { state, reply: { counter: state.counter + (event.payload.add ?? 0), echo: event.payload as unknown } };
  },
  query: (state, _q: string) => ({ counter: state.counter }),
});

test("the client follows the not_primary hint and registers a session", async () => {
  const c = await cluster();
  try {
    c.fake.primary = 2;
    const client = new Client<typeof counterApp>({ addresses: c.urls, timeoutMs: 1000, deadlineMs: 3000 });
    const reply = await client.submit({ add: 3 });
    assert.equal(reply.counter, 3);
    assert.equal(client.primary, c.urls[2]);
    assert.match(client.session ?? "", /^[0-9a-f]{32}$/);
    // Registration met not_primary at replica 0 and followed the hint; the submit went straight to 2.
    assert.deepEqual(c.fake.handles.map((h) => h.calls.filter((x) => x === "registerSession").length), [1, 0, 1]);
    assert.deepEqual(c.fake.handles.map((h) => h.calls.filter((x) => x === "submit").length), [0, 0, 1]);
    const result = await client.query("counter");
    assert.deepEqual(result, { counter: 3, consistency: "linearizable", query: "counter" });
    const stale = await client.query("counter", { consistency: "stale" }) as unknown as { consistency: string };
    assert.equal(stale.consistency, "stale");
  } finally {
    await c.close();
  }
});

test("a retry across a failover uses the same request number and is applied once", async () => {
  const c = await cluster({ requestTimeoutMs: 150 });
  try {
    const client = new Client<typeof counterApp>({ addresses: c.urls, timeoutMs: 1000, deadlineMs: 5000, backoffMsMin: 5 });
    assert.equal((await client.submit({ add: 1 })).counter, 1);
    // The primary applies the next request, then fails over before answering it.
    c.fake.afterApply = (replica) => {
      c.fake.afterApply = null;
      c.fake.primary = (replica + 1) % 3;
      c.fake.view += 1;
      return "hang";
    };
    const reply = await client.submit({ add: 10 });
    assert.equal(reply.counter, 11);
    assert.equal(c.fake.counter, 11, "the event was applied once");
    assert.deepEqual(c.fake.applied.map((a) => a.request), [1, 2]);
    assert.deepEqual(c.fake.handles.map((h) => h.calls.filter((x) => x === "submit").length), [2, 1, 0]);
    assert.equal(client.primary, c.urls[1]);
    // A server that goes away entirely: the client rotates on connection errors.
    await c.servers[1]!.close();
    c.fake.primary = 2;
    assert.equal((await client.submit({ add: 100 })).counter, 111);
    assert.deepEqual(c.fake.applied.map((a) => a.request), [1, 2, 3]);
  } finally {
    await c.close();
  }
});

test("no definite answer before the deadline: OutcomeUnknownError says the outcome is unknown", async () => {
  const c = await cluster({ requestTimeoutMs: 100 });
  try {
    const client = new Client<typeof counterApp>({ addresses: c.urls, timeoutMs: 500, deadlineMs: 600, backoffMsMin: 5 });
    await client.submit({ add: 1 });
    // Every replica applies (once) but never answers: each attempt times out at the API (504).
    for (const handle of c.fake.handles) handle.hang = true;
    const started = Date.now();
    await assert.rejects(client.submit({ add: 1 }), (error: unknown) => {
      assert.ok(error instanceof OutcomeUnknownError);
      assert.equal(error.definite, false);
      assert.match(error.message, /UNKNOWN/);
      assert.ok(error.attempts >= 2, `attempts ${error.attempts}`);
      return true;
    });
    assert.ok(Date.now() - started < 1500, "gave up near the deadline");
    // Every attempt carried the same request number: it was applied at most once.
    assert.deepEqual(c.fake.applied.map((a) => a.request), [1, 2]);
    // The next submit uses a fresh number, not the possibly-applied one.
    for (const handle of c.fake.handles) handle.hang = false;
    await client.submit({ add: 5 });
    assert.deepEqual(c.fake.applied.map((a) => a.request), [1, 2, 3]);
  } finally {
    await c.close();
  }
});

test("when every replica is down, submit ends with OutcomeUnknownError and query with UnavailableError", async () => {
  const c = await cluster();
  await c.close();
  const client = new Client<typeof counterApp>({ addresses: c.urls, timeoutMs: 100, deadlineMs: 300, backoffMsMin: 5 });
  await assert.rejects(client.query("x"), UnavailableError);
  await assert.rejects(client.submit({ add: 1 }), UnavailableError, "no session could be registered: nothing was submitted");
});

test("definite errors are thrown at once and not retried", async () => {
  const c = await cluster({ bodySizeMax: 200 });
  try {
    const client = new Client<typeof counterApp>({ addresses: c.urls, timeoutMs: 1000, deadlineMs: 3000 });
    await client.submit({ add: 1 });
    const submits = () => c.fake.handles[0]!.calls.filter((x) => x === "submit").length;
    const before = submits();
    await assert.rejects(client.submit({ fail: "insufficient funds" }), (error: unknown) => {
      assert.ok(error instanceof RejectedError);
      assert.equal(error.message, "insufficient funds");
      assert.equal(error.definite, true);
      return true;
    });
    assert.equal(submits(), before + 1, "rejected: one attempt");
    await assert.rejects(client.submit({ add: 1, fail: undefined, ...{ pad: "x".repeat(500) } } as never), TooLargeError);
    assert.equal(submits(), before + 1, "too large never reached the handle");
    c.fake.sessions.clear();
    await assert.rejects(client.submit({ add: 1 }), SessionEvictedError);
    assert.equal(client.session, null, "an evicted session is dropped");
    assert.equal((await client.submit({ add: 2 })).counter, 3, "a new session is registered");
    await assert.rejects(client.query("throw"), RejectedError);
  } finally {
    await c.close();
  }
});

test("a missing or wrong token is UnauthorizedError; the right one works", async () => {
  const c = await cluster({ token: "tok" });
  try {
    await assert.rejects(new Client({ addresses: c.urls, deadlineMs: 2000 }).submit({ add: 1 }), UnauthorizedError);
    await assert.rejects(new Client({ addresses: c.urls, token: "nope", deadlineMs: 2000 }).submit({ add: 1 }), UnauthorizedError);
    const ok = new Client<typeof counterApp>({ addresses: c.urls, token: "tok", deadlineMs: 2000 });
    assert.equal((await ok.submit({ add: 4 })).counter, 4);
    assert.equal(c.fake.applied.length, 1);
  } finally {
    await c.close();
  }
});

test("concurrent submits on one client are serialized with increasing request numbers", async () => {
  const c = await cluster();
  try {
    const client = new Client<typeof counterApp>({ addresses: c.urls, deadlineMs: 3000 });
    const replies = await Promise.all([1, 2, 3, 4, 5].map((n) => client.submit({ add: n })));
    assert.deepEqual(replies.map((r) => r.counter), [1, 3, 6, 10, 15]);
    assert.deepEqual(c.fake.applied.map((a) => a.request), [1, 2, 3, 4, 5]);
    assert.throws(() => new Client({ addresses: [] }), RangeError);
    assert.throws(() => new Client({ addresses: ["10.0.0.1:80"] }), RangeError);
    void BadRequestError;
  } finally {
    await c.close();
  }
});
