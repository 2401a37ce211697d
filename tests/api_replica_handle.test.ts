import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeValue } from "../src/app/value_codec.ts";
import { encodeReply } from "../src/app/wire.ts";
import { ReplicaHandle } from "../src/node/handle.ts";
import type { HandleHost } from "../src/node/handle.ts";
import type { ClientRequest } from "../src/vsr/replica_api.ts";

function host(overrides: Partial<HandleHost> = {}): HandleHost {
  return {
    request: () => {},
    query: () => {},
    status: () => { throw new Error("unused"); },
    apiUrl: (i) => `http://replica-${i}`,
    metricsText: () => "",
    nowMs: () => 0,
    ...overrides,
  };
}

test("a submit resolves with the kernel's reply, the replica's errors mapped, a missing reply as timeout", async () => {
  const requests: ClientRequest[] = [];
  const handle = new ReplicaHandle(host({ request: (r) => requests.push(r) }), 1000);
  const session = new Uint8Array(16).fill(1);
  const ok = handle.submit({ session, request: 1, event: { put: "a" } });
  const refused = handle.submit({ session, request: 2, event: { put: "b" } });
  const rejected = handle.submit({ session, request: 3, event: { put: "c" } });
  const lost = handle.submit({ session, request: 4, event: { put: "d" } });
  assert.equal(requests.length, 4);
  assert.deepEqual(decodeValue(requests[0]!.body), [1, { put: "a" }], "the body is the encoded event");
  assert.deepEqual(requests.map((r) => r.request), [1, 2, 3, 4]);
  handle.deliver({ token: requests[0]!.token, body: encodeReply({ ok: true, value: "done", effects: ["e1"] }), view: 0, primary: 0, op: 7 });
  handle.deliver({ token: requests[1]!.token, error: "not_primary", view: 1, primary: 2 });
  handle.deliver({ token: requests[2]!.token, body: encodeReply({ ok: false, code: "rejected", message: "no" }), view: 0, primary: 0, op: 8 });
  handle.abandonAll();
  assert.deepEqual(await ok, { ok: true, value: { reply: "done", op: 7, effects: ["e1"] } });
  assert.deepEqual(await refused, { ok: false, error: { code: "not_primary", message: "not_primary", primary: "http://replica-2" } });
  assert.deepEqual(await rejected, { ok: false, error: { code: "rejected", message: "no" } });
  assert.equal((await lost).ok ? "ok" : (await lost as { error: { code: string } }).error.code, "timeout");
  assert.equal(handle.pending, 0);
});

test("a host that throws, or an event that cannot be encoded, rejects the submit instead of throwing", async () => {
  const handle = new ReplicaHandle(host({ request: () => { throw new Error("core refused"); } }), 1000);
  const session = new Uint8Array(16);
  const thrown = handle.submit({ session, request: 1, event: 1 });
  assert.ok(thrown instanceof Promise);
  await assert.rejects(thrown, /core refused/);
  const unencodable = new ReplicaHandle(host(), 1000).submit({ session, request: 1, event: () => 1 });
  assert.ok(unencodable instanceof Promise);
  await assert.rejects(unencodable);
});
