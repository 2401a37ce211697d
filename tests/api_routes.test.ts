import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createApi } from "../src/api/app.ts";
import type { ApiOptions } from "../src/api/app.ts";
import { serve } from "../src/api/serve.ts";
import { decodeValue, encodeValue } from "../src/app/value_codec.ts";
import { FakeCluster } from "./api_fake_handle.ts";

const session = "ab".repeat(16);
const base = "http://replica";

function setup(options: Partial<ApiOptions> = {}) {
  const cluster = new FakeCluster(3);
  cluster.apiUrls = ["http://r0", "http://r1", "http://r2"];
  const handle = cluster.handles[0]!;
  const app = createApi(handle, { readAccess: "public", bodySizeMax: 4096, requestTimeoutMs: 200, ...options });
  const call = (method: string, path: string, init: { json?: unknown; cbor?: unknown; raw?: string | Uint8Array<ArrayBuffer>; type?: string; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    let body: string | Uint8Array<ArrayBuffer> | undefined;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers["content-type"] = "application/json";
    } else if (init.cbor !== undefined) {
      body = encodeValue(init.cbor) as Uint8Array<ArrayBuffer>;
      headers["content-type"] = "application/cbor";
      headers["accept"] = "application/cbor";
    } else if (init.raw !== undefined) {
      body = init.raw;
      if (init.type !== undefined) headers["content-type"] = init.type;
    }
    return app.fetch(new Request(base + path, { method, headers, ...(body === undefined ? {} : { body }) }));
  };
  return { cluster, handle, app, call };
}

async function expectError(response: Response, status: number, code: string): Promise<{ code: string; message: string; primary?: string }> {
  assert.equal(response.headers.get("content-type"), "application/json");
  const body = await response.json() as { error: { code: string; message: string; primary?: string } };
  assert.equal(body.error.code, code, `code (${body.error.message})`);
  assert.equal(response.status, status);
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
  return body.error;
}

describe("sessions and requests", () => {
  test("register with and without a chosen id; a request is applied once and a retry gets the stored reply", async () => {
    const { call, cluster } = setup();
    const fresh = await call("POST", "/v1/sessions");
    assert.equal(fresh.status, 200);
    assert.match(((await fresh.json()) as { session: string }).session, /^[0-9a-f]{32}$/);
    const chosen = await call("POST", "/v1/sessions", { json: { session } });
    assert.deepEqual(await chosen.json(), { session });
    const first = await call("POST", "/v1/requests", { json: { session, request: 1, event: { add: 5 } } });
    assert.equal(first.status, 200);
    const firstBody = await first.json();
    assert.deepEqual(firstBody, { reply: { counter: 5, echo: { add: 5 } }, op: 1 });
    const retry = await call("POST", "/v1/requests", { json: { session, request: 1, event: { add: 5 } } });
    assert.deepEqual(await retry.json(), firstBody);
    assert.equal(cluster.applied.length, 1, "applied once");
    assert.equal(cluster.counter, 5);
  });

  test("CBOR in, CBOR out: Maps, bigints and bytes round-trip exactly", async () => {
    const { call } = setup();
    await call("POST", "/v1/sessions", { json: { session } });
    const event = { add: 1, tags: new Map([["k", 1n << 60n]]), blob: new Uint8Array([1, 2, 3]) };
    const response = await call("POST", "/v1/requests", { cbor: { session: new Uint8Array(16).fill(0xab), request: 1, event } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/cbor");
    const body = decodeValue(new Uint8Array(await response.arrayBuffer())) as { reply: { echo: typeof event } };
    assert.deepEqual(body.reply.echo, event);
  });

  test("JSON answers show CBOR-only values in their documented JSON form", async () => {
    const { call } = setup();
    await call("POST", "/v1/sessions", { json: { session } });
    await call("POST", "/v1/requests", { cbor: { session, request: 1, event: { big: 1n << 60n, small: 7n, blob: new Uint8Array([255]), set: new Set([1]) } } });
    const retry = await call("POST", "/v1/requests", { json: { session, request: 1, event: {} } });
    const body = await retry.json() as { reply: { echo: unknown } };
    assert.deepEqual(body.reply.echo, { big: "1152921504606846976", small: 7, blob: "/w==", set: [1] });
  });

  test("the application's rejection is `rejected` with its message, and is stored for the retry", async () => {
    const { call, cluster } = setup();
    await call("POST", "/v1/sessions", { json: { session } });
    await expectError(await call("POST", "/v1/requests", { json: { session, request: 1, event: { fail: "insufficient funds" } } }), 422, "rejected")
      .then((e) => assert.equal(e.message, "insufficient funds"));
    await expectError(await call("POST", "/v1/requests", { json: { session, request: 1, event: { fail: "insufficient funds" } } }), 422, "rejected");
    assert.equal(cluster.applied.length, 1);
  });

  test("not_primary names the primary's address; session_evicted, unavailable and timeout pass through", async () => {
    const { call, cluster, handle } = setup();
    await call("POST", "/v1/sessions", { json: { session } });
    cluster.primary = 2;
    const notPrimary = await expectError(await call("POST", "/v1/requests", { json: { session, request: 1, event: {} } }), 409, "not_primary");
    assert.equal(notPrimary.primary, "http://r2");
    cluster.primary = 0;
    await expectError(await call("POST", "/v1/requests", { json: { session: "cd".repeat(16), request: 1, event: {} } }), 410, "session_evicted");
    handle.outage = { code: "unavailable", message: "no quorum" };
    await expectError(await call("POST", "/v1/requests", { json: { session, request: 1, event: {} } }), 503, "unavailable");
    handle.outage = null;
    cluster.afterApply = () => "hang";
    const timeout = await expectError(await call("POST", "/v1/requests", { json: { session, request: 1, event: {} } }), 504, "timeout");
    assert.match(timeout.message, /unknown/);
  });
});

describe("validation before the handle", () => {
  test("oversized bodies are refused with 413, by Content-Length and while streaming", async () => {
    const { call, handle } = setup({ bodySizeMax: 100 });
    await expectError(await call("POST", "/v1/requests", { json: { session, request: 1, event: "x".repeat(200) } }), 413, "too_large");
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new Uint8Array(50).fill(0x20));
        controller.close();
      },
    });
    const app = createApi(handle, { readAccess: "public", bodySizeMax: 100 });
    const streamed = await app.fetch(new Request(base + "/v1/requests", { method: "POST", body: stream, headers: { "content-type": "application/json" }, duplex: "half" } as RequestInit));
    await expectError(streamed, 413, "too_large");
    assert.deepEqual(handle.calls, []);
  });

  test("malformed JSON, malformed CBOR, wrong content type and bad fields are bad_request", async () => {
    const { call, handle } = setup();
    await expectError(await call("POST", "/v1/requests", { raw: "{not json", type: "application/json" }), 400, "bad_request");
    await expectError(await call("POST", "/v1/requests", { raw: new Uint8Array([0xbf, 0xff, 0x1c]), type: "application/cbor" }), 400, "bad_request");
    await expectError(await call("POST", "/v1/requests", { raw: "session=1", type: "application/x-www-form-urlencoded" }), 400, "bad_request");
    await expectError(await call("POST", "/v1/requests", { json: [1, 2] }), 400, "bad_request");
    await expectError(await call("POST", "/v1/requests", { json: { session: "xyz", request: 1, event: {} } }), 400, "bad_request");
    await expectError(await call("POST", "/v1/requests", { json: { session, request: 0, event: {} } }), 400, "bad_request");
    await expectError(await call("POST", "/v1/requests", { json: { session, request: 1.5, event: {} } }), 400, "bad_request");
    await expectError(await call("POST", "/v1/requests", { json: { session, request: 1 } }), 400, "bad_request");
    await expectError(await call("POST", "/v1/sessions", { json: { session: "short" } }), 400, "bad_request");
    await expectError(await call("POST", "/v1/queries?consistency=eventual", { json: { query: 1 } }), 400, "bad_request");
    await expectError(await call("POST", "/v1/queries", { json: { notQuery: 1 } }), 400, "bad_request");
    await expectError(await call("GET", "/v1/effects?status=done"), 400, "bad_request");
    await expectError(await call("GET", "/v1/effects?limit=100000"), 400, "bad_request");
    await expectError(await call("POST", "/v1/effects/nothex/retry"), 400, "bad_request");
    await expectError(await call("GET", "/v1/channels/news?cursor=-1"), 400, "bad_request");
    await expectError(await call("GET", "/v1/channels/news?limit=0"), 400, "bad_request");
    assert.deepEqual(handle.calls, [], "nothing invalid reached the handle");
    await expectError(await call("GET", "/v1/nowhere"), 404, "not_found");
  });
});

describe("reads", () => {
  test("queries in both consistencies; a stale query works on a backup, a linearizable one does not", async () => {
    const { call, cluster } = setup();
    const lin = await call("POST", "/v1/queries?consistency=linearizable", { json: { query: "counter" } });
    assert.deepEqual(await lin.json(), { result: { counter: 0, consistency: "linearizable", query: "counter" } });
    cluster.primary = 1;
    const stale = await call("POST", "/v1/queries?consistency=stale", { json: { query: "counter" } });
    assert.equal(stale.status, 200);
    await expectError(await call("POST", "/v1/queries", { json: { query: "counter" } }), 409, "not_primary");
  });

  test("effects are listed by status and a dead-lettered one is retried; an unknown id is not_found", async () => {
    const { call } = setup();
    const pending = await (await call("GET", "/v1/effects?status=pending")).json() as { effects: { id: string }[]; next: null };
    assert.deepEqual(pending.effects.map((e) => e.id), ["11".repeat(16)]);
    const dead = await (await call("GET", "/v1/effects?status=dead&limit=10")).json() as { effects: { id: string }[] };
    assert.deepEqual(dead.effects.map((e) => e.id), ["22".repeat(16)]);
    const retried = await call("POST", `/v1/effects/${"22".repeat(16)}/retry`);
    assert.deepEqual(await retried.json(), { id: "22".repeat(16) });
    const after = await (await call("GET", "/v1/effects?status=pending")).json() as { effects: unknown[] };
    assert.equal(after.effects.length, 2);
    await expectError(await call("POST", `/v1/effects/${"33".repeat(16)}/retry`), 404, "not_found");
  });

  test("channels read by cursor and limit", async () => {
    const { call } = setup();
    const page = await (await call("GET", "/v1/channels/news?cursor=1&limit=2")).json();
    assert.deepEqual(page, { entries: [{ cursor: 1, payload: "b" }, { cursor: 2, payload: "c" }], next: 3 });
    const end = await (await call("GET", "/v1/channels/news?cursor=5")).json();
    assert.deepEqual(end, { entries: [], next: 5 });
  });

  test("status, healthz (503 while recovering) and metrics in Prometheus text", async () => {
    const { call, handle } = setup();
    const status = await (await call("GET", "/v1/status")).json() as { replica: number; status: string; peers: unknown[] };
    assert.equal(status.replica, 0);
    assert.equal(status.status, "normal");
    assert.equal(status.peers.length, 2);
    assert.equal((await call("GET", "/healthz")).status, 200);
    handle.recovering = true;
    assert.equal((await call("GET", "/healthz")).status, 503);
    const metrics = await call("GET", "/metrics");
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    assert.match(text, /^chronon_commits_total 3$/m);
    assert.match(text, /^chronon_bus_connections_dropped_total\{reason="bad_mac"\} 2$/m);
  });
});

describe("bearer token", () => {
  const token = "s3cret-token";
  const auth = { authorization: `Bearer ${token}` };

  test("writes need the token; public reads do not; healthz never does", async () => {
    const { call, handle } = setup({ token, readAccess: "public" });
    await expectError(await call("POST", "/v1/sessions"), 401, "unauthorized");
    await expectError(await call("POST", "/v1/sessions", { headers: { authorization: "Bearer wrong" } }), 401, "unauthorized");
    await expectError(await call("POST", "/v1/sessions", { headers: { authorization: token } }), 401, "unauthorized");
    await expectError(await call("POST", `/v1/effects/${"22".repeat(16)}/retry`), 401, "unauthorized");
    assert.deepEqual(handle.calls, []);
    assert.equal((await call("POST", "/v1/sessions", { headers: auth })).status, 200);
    assert.equal((await call("GET", "/v1/status")).status, 200);
    assert.equal((await call("POST", "/v1/queries", { json: { query: 1 } })).status, 200);
  });

  test("with readAccess token, reads need it too, except healthz", async () => {
    const { call } = setup({ token, readAccess: "token" });
    for (const path of ["/v1/status", "/metrics", "/v1/effects", "/v1/channels/news"]) {
      await expectError(await call("GET", path), 401, "unauthorized");
      assert.equal((await call("GET", path, { headers: auth })).status, 200, path);
    }
    await expectError(await call("POST", "/v1/queries", { json: { query: 1 } }), 401, "unauthorized");
    assert.equal((await call("GET", "/healthz")).status, 200);
  });
});

test("the API serves over real HTTP on 127.0.0.1 with the runtime's server", async () => {
  const { app, cluster } = setup();
  const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
  try {
    assert.ok(server.port > 0);
    const url = `http://127.0.0.1:${server.port}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    await fetch(`${url}/v1/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ session }) }).then((r) => r.arrayBuffer());
    const reply = await fetch(`${url}/v1/requests`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ session, request: 1, event: { add: 2 } }) });
    assert.deepEqual(await reply.json(), { reply: { counter: 2, echo: { add: 2 } }, op: 1 });
    const big = await fetch(`${url}/v1/requests`, { method: "POST", headers: { "content-type": "application/json" }, body: "x".repeat(10_000) });
    assert.equal(big.status, 413);
    await big.arrayBuffer();
    assert.equal(cluster.applied.length, 1);
  } finally {
    await server.close();
  }
});
