import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { serveClientPort } from "../src/api/client_port.ts";
import { decodeValue, encodeValue } from "../src/app/value_codec.ts";
import { encodeEvent, encodeReply, operationEvent } from "../src/app/wire.ts";
import { Client, RejectedError } from "../src/client/mod.ts";
import { FrameReader, frameOf } from "../src/net/client_frame.ts";
import { ReplicaHandle } from "../src/node/handle.ts";
import type { HandleHost } from "../src/node/handle.ts";
import type { ClientReply, ClientRequest } from "../src/vsr/replica_api.ts";

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
  assert.equal(handle.pending, 0, "no waiter is left behind for a request that never reached the replica");
  const unencodable = new ReplicaHandle(host(), 1000).submit({ session, request: 1, event: () => 1 });
  assert.ok(unencodable instanceof Promise);
  await assert.rejects(unencodable);
});

/** A client port over a ReplicaHandle whose host answers as the kernel does, at the next turn. */
async function portOverHandle(answer: (request: ClientRequest) => Omit<ClientReply, "token">) {
  const requests: ClientRequest[] = [];
  const handle: ReplicaHandle = new ReplicaHandle(host({
    request: (request) => {
      requests.push(request);
      setImmediate(() => handle.deliver({ token: request.token, ...answer(request) }));
    },
  }), 1000);
  const port = await serveClientPort(handle, { hostname: "127.0.0.1", port: 0, readAccess: "public", bodySizeMax: 1 << 16, tokenlessWrites: "open" });
  return { handle, port, requests, url: `chronon://127.0.0.1:${port.port}` };
}

const kvReply = (request: ClientRequest): Omit<ClientReply, "token"> => {
  if (request.operation !== operationEvent) return { body: encodeReply({ ok: true, value: null, effects: [] }), view: 0, primary: 0, op: 1 };
  const [, event] = decodeValue(request.body) as [number, { type: string; value?: string }];
  if (event.type === "fail") return { body: encodeReply({ ok: false, code: "rejected", message: "refused" }), view: 0, primary: 0, op: 2 };
  return { body: encodeReply({ ok: true, value: { ok: true, value: event.value, version: 7 }, effects: ["ab".repeat(16)] }), view: 0, primary: 0, op: 9 };
};

test("over the client port a submit's event reaches the log as its bytes and its reply is cut out of the kernel's body", async () => {
  const { port, requests, url } = await portOverHandle(kvReply);
  const client = new Client({ addresses: [url], timeoutMs: 1000, deadlineMs: 3000 });
  try {
    const event = { type: "put", key: "k", value: "é".repeat(300), n: new Map([[1n, new Set([2])]]) };
    assert.deepEqual(await client.submit(event), { ok: true, value: "é".repeat(300), version: 7 });
    const submitted = requests.find((r) => r.operation === operationEvent)!;
    assert.deepEqual(submitted.body, encodeEvent(event), "byte for byte the body submit would have made");
    await assert.rejects(client.submit({ type: "fail" }), RejectedError);
  } finally {
    client.close();
    await port.close();
  }
});

test("a submit frame the library would not write (an indefinite array, a long-form event) still works, its event decoded the same", async () => {
  const { port, requests } = await portOverHandle(kvReply);
  const session = new Uint8Array(16).fill(3);
  const frames = [
    frameOf(encodeValue([0, 1, null])),
    frameOf(encodeValue([1, 1, session])),
    // [_ 2, 2, session, 1, {"type": "put", "value": "x"}] as an indefinite array.
    frameOf(new Uint8Array([0x9f, 0x02, 0x02, ...encodeValue(session), 0x01, ...encodeValue({ type: "put", value: "x" }), 0xff])),
    // [3, 2, session, 2, {"type": "put", "value": "y", "n": 5 written long}].
    frameOf(new Uint8Array([0x85, 0x03, 0x02, ...encodeValue(session), 0x02, 0xa3, ...encodeValue("type"), ...encodeValue("put"), ...encodeValue("value"), ...encodeValue("y"), ...encodeValue("n"), 0x18, 0x05])),
  ];
  const answers: unknown[] = [];
  const socket = connect({ host: "127.0.0.1", port: port.port });
  const reader = new FrameReader(1 << 20);
  socket.on("data", (chunk: Uint8Array) => {
    const got = reader.push(chunk);
    if (got !== "oversized") for (const f of got) answers.push(decodeValue(f));
  });
  try {
    for (const f of frames) socket.write(f);
    const deadline = Date.now() + 2000;
    while (answers.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(answers.slice(2).sort((a, b) => (a as number[])[0]! - (b as number[])[0]!), [
      [2, 0, { ok: true, value: "x", version: 7 }, 9],
      [3, 0, { ok: true, value: "y", version: 7 }, 9],
    ]);
    const bodies = requests.filter((r) => r.operation === operationEvent).map((r) => r.body);
    assert.deepEqual(bodies.map((b) => decodeValue(b)), [[1, { type: "put", value: "x" }], [1, { type: "put", value: "y", n: 5 }]]);
    assert.deepEqual([...bodies[1]!.subarray(-2)], [0x18, 0x05], "a plain submit frame's event goes on as its own bytes");
  } finally {
    socket.destroy();
    await port.close();
  }
});

test("submitEncoded hands the reply out as a view of the kernel's body when it is an ok reply, decoded otherwise", async () => {
  const bodies: Uint8Array[] = [];
  const requests: ClientRequest[] = [];
  const handle = new ReplicaHandle(host({ request: (r) => requests.push(r) }), 1000);
  const session = new Uint8Array(16);
  const ok = handle.submitEncoded({ session, request: 1, eventEncoded: encodeValue({ a: 1 }) });
  const other = handle.submitEncoded({ session, request: 2, eventEncoded: encodeValue({ a: 2 }) });
  const rejected = handle.submitEncoded({ session, request: 3, eventEncoded: encodeValue({ a: 3 }) });
  assert.deepEqual(requests[0]!.body, encodeEvent({ a: 1 }));
  bodies.push(encodeReply({ ok: true, value: [1, "two"], effects: [] }));
  // Keys in another order: not the kernel's layout, so decoded and encoded again.
  bodies.push(encodeValue({ value: "v", ok: true, effects: [] }));
  bodies.push(encodeReply({ ok: false, code: "rejected", message: "no" }));
  bodies.forEach((body, i) => handle.deliver({ token: requests[i]!.token, body, view: 0, primary: 0, op: 10 + i }));
  const first = await ok;
  assert.ok(first.ok);
  assert.equal(first.value.replyEncoded.buffer, bodies[0]!.buffer, "a view, not a copy");
  assert.deepEqual(decodeValue(first.value.replyEncoded), [1, "two"]);
  assert.equal(first.value.op, 10);
  const second = await other;
  assert.ok(second.ok);
  assert.deepEqual(decodeValue(second.value.replyEncoded), "v");
  assert.deepEqual(await rejected, { ok: false, error: { code: "rejected", message: "no" } });
});
