import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect } from "node:net";
import type { Socket } from "node:net";
import { encodeFrame, encodeFrameHeader, FrameKind, frameHeaderSize, verifyFrame } from "../src/net/frame.ts";
import { busesNew, freePorts, RawPeer, rawDial, text, waitFor } from "./net_helpers.ts";

/** Two good buses (0 and 1) plus a third replica slot (2) that the tests impersonate. */
async function cluster3() {
  const ports = await freePorts(3);
  const nodes = busesNew(ports);
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  await Promise.all([a.bus.start(), b.bus.start()]);
  return { ports, a, b, close: () => Promise.all([a.bus.close(), b.bus.close()]) };
}

/** The good pair still exchanges a message both ways. */
async function pairStillWorks(a: ReturnType<typeof busesNew>[0], b: ReturnType<typeof busesNew>[0], tag: string) {
  const aBefore = a.inbox.messages.length;
  const bBefore = b.inbox.messages.length;
  a.bus.send(b.replica, text(`ping ${tag}`));
  b.bus.send(a.replica, text(`pong ${tag}`));
  await waitFor(() => a.inbox.messages.length === aBefore + 1 && b.inbox.messages.length === bBefore + 1, `good peers after ${tag}`);
}

test("garbage, oversized length, wrong cluster, wrong secret: dropped, counted, logged once, peers keep working", async () => {
  const c = await cluster3();
  try {
    await pairStillWorks(c.a, c.b, "start");
    const target = c.ports[1]!; // replica 1 accepts dials from replica 0 only; 2 is a hostile client here

    for (let i = 0; i < 3; i++) {
      const garbage = await RawPeer.connect(target);
      garbage.write(text("GET / HTTP/1.1\r\nHost: x\r\n\r\n".padEnd(64, "x")));
      assert.ok(await garbage.closedByPeer(), "garbage connection closed");
    }
    await waitFor(() => c.b.bus.counters.connectionsDropped.garbage === 3, "garbage counted");

    const oversized = await RawPeer.connect(target);
    const header = encodeFrame(FrameKind.hello, 0, new Uint8Array(0), null);
    new DataView(header.buffer).setUint32(4, 0xffff_fff0, true);
    oversized.write(header.subarray(0, frameHeaderSize));
    assert.ok(await oversized.closedByPeer(), "oversized connection closed");
    await waitFor(() => c.b.bus.counters.connectionsDropped.oversized === 1, "oversized counted");

    const foreign = await rawDial(target, 0, 1, { cluster: new Uint8Array(16).fill(9) });
    assert.equal(foreign.keySend, null, "no handshake with another cluster");
    await waitFor(() => c.b.bus.counters.connectionsDropped.wrong_cluster === 1, "wrong cluster counted");

    for (let i = 0; i < 2; i++) {
      const impostor = await rawDial(target, 0, 1, { secret: "not the secret at all, sorry!!" });
      // The bus answered the hello, then rejected the proof.
      assert.ok(await impostor.peer.closedByPeer(), "impostor closed");
    }
    await waitFor(() => c.b.bus.counters.connectionsDropped.bad_secret === 2, "bad secret counted");

    // One log line per reason (the address is the same for all of them).
    const reasons = c.b.logs.map((line) => /: (\w+) \(/.exec(line)?.[1]);
    assert.deepEqual(reasons.sort(), ["bad_secret", "garbage", "oversized", "wrong_cluster"]);
    assert.equal(c.b.bus.counters.framesIn, 1, "nothing from the hostile connections was delivered");
    await pairStillWorks(c.a, c.b, "faults");
    assert.equal(c.b.bus.peerStatus()[0]?.connected, true);
  } finally {
    await c.close();
  }
});

test("a peer that is not allowed to dial, or names the wrong receiver, is refused", async () => {
  const c = await cluster3();
  try {
    // Replica 1 only accepts dials from lower indexes; replica 2 knows the secret but must wait to be dialed.
    const higher = await rawDial(c.ports[1]!, 2, 1);
    assert.equal(higher.keySend, null);
    const misaddressed = await rawDial(c.ports[1]!, 0, 2);
    assert.equal(misaddressed.keySend, null);
    await waitFor(() => c.b.bus.counters.connectionsDropped.unknown_peer === 2, "unknown peer counted");
    await pairStillWorks(c.a, c.b, "unknown peers");
  } finally {
    await c.close();
  }
});

test("an authenticated peer that sends a bad MAC, a bad checksum or a replayed frame is dropped", async () => {
  // Replicas 1 and 2 are real buses; the raw peer plays replica 0 (it knows the secret).
  const ports = await freePorts(3);
  const nodes = busesNew(ports);
  const [, b1, b2] = nodes as [unknown, typeof nodes[0], typeof nodes[0]];
  await Promise.all([b1.bus.start(), b2.bus.start()]);
  const c = { ports, b: b1 };
  try {
    const forged = await rawDial(c.ports[1]!, 0, 1);
    assert.ok(forged.keySend !== null);
    forged.peer.write(encodeFrame(FrameKind.message, 0, text("forged"), new Uint8Array(32).fill(1)));
    assert.ok(await forged.peer.closedByPeer());
    await waitFor(() => c.b.bus.counters.connectionsDropped.bad_mac === 1, "bad mac counted");

    const flipped = await rawDial(c.ports[1]!, 0, 1);
    assert.ok(flipped.keySend !== null);
    const frame = encodeFrame(FrameKind.message, 0, text("flip me"), flipped.keySend);
    frame[frameHeaderSize + 2]! ^= 0x10;
    flipped.peer.write(frame);
    assert.ok(await flipped.peer.closedByPeer());
    await waitFor(() => c.b.bus.counters.connectionsDropped.bad_checksum === 1, "bad checksum counted");

    const replay = await rawDial(c.ports[1]!, 0, 1);
    assert.ok(replay.keySend !== null);
    const first = encodeFrame(FrameKind.message, 0, text("once"), replay.keySend);
    replay.peer.write(first);
    replay.peer.write(first);
    assert.ok(await replay.peer.closedByPeer());
    await waitFor(() => c.b.bus.counters.connectionsDropped.replayed === 1, "replay counted");
    assert.deepEqual(c.b.inbox.messages.filter(([, m]) => m === "once").length, 1, "the replayed frame was delivered once");
    await pairStillWorks(b1, b2, "mac faults");
  } finally {
    await Promise.all([b1.bus.close(), b2.bus.close()]);
  }
});

test("frames recorded between two replicas and replayed on a new connection are refused", async () => {
  // Replica 0 reaches replica 1 through a recording proxy; the recording is replayed later.
  const ports = await freePorts(3);
  const [busPort0, busPort1, proxyPort] = ports as [number, number, number];
  const recorded: Uint8Array[] = [];
  const sockets: Socket[] = [];
  const proxy = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port: busPort1 });
    sockets.push(client, upstream);
    client.on("data", (chunk: Uint8Array) => {
      recorded.push(Uint8Array.from(chunk));
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Uint8Array) => client.write(chunk));
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(proxyPort, "127.0.0.1", () => resolve()));
  const nodes = busesNew([busPort0, busPort1]);
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  // Replica 0 dials replica 1 at the proxy's port.
  const { Bus } = await import("../src/net/bus.ts");
  const aThroughProxy = new Bus({
    cluster: (await import("./net_helpers.ts")).cluster, replica: 0,
    addresses: [{ host: "127.0.0.1", port: busPort0 }, { host: "127.0.0.1", port: proxyPort }],
    secret: (await import("./net_helpers.ts")).secret, log: () => {},
  });
  aThroughProxy.onMessage(() => {});
  await b.bus.start();
  await aThroughProxy.start();
  try {
    for (let i = 0; i < 5; i++) aThroughProxy.send(1, text(`real ${i}`));
    await waitFor(() => b.inbox.messages.length === 5, "messages through the proxy");
    const stream = new Uint8Array(recorded.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const chunk of recorded) {
      stream.set(chunk, offset);
      offset += chunk.length;
    }
    const replay = await RawPeer.connect(busPort1);
    replay.write(stream);
    assert.ok(await replay.closedByPeer(), "replayed recording refused");
    await waitFor(() => b.bus.counters.connectionsDropped.bad_secret === 1, "replayed proof fails (fresh nonce)");
    assert.equal(b.inbox.messages.length, 5, "no replayed message delivered");
    aThroughProxy.send(1, text("after replay"));
    await waitFor(() => b.inbox.messages.length === 6, "real peer keeps working");
  } finally {
    await aThroughProxy.close();
    await b.bus.close();
    await a.bus.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  }
});

test("a peer that never finishes the handshake is dropped after the timeout", async () => {
  const c = await cluster3();
  try {
    const silent = await RawPeer.connect(c.ports[1]!);
    assert.ok(await silent.closedByPeer(2000), "silent connection closed");
    assert.equal(c.b.bus.counters.connectionsDropped.handshake_timeout, 1);
    await pairStillWorks(c.a, c.b, "timeout");
  } finally {
    await c.close();
  }
});

test("a message frame's header written before its payload is the frame, byte for byte, and verifies", () => {
  const key = new Uint8Array(32).fill(3);
  const payload = new Uint8Array(5000).map((_, i) => i * 7);
  const header = encodeFrameHeader(FrameKind.message, 42, payload, key);
  assert.equal(header.length, frameHeaderSize);
  const joined = new Uint8Array(header.length + payload.length);
  joined.set(header);
  joined.set(payload, header.length);
  assert.deepEqual(joined, encodeFrame(FrameKind.message, 42, payload, key));
  assert.equal(verifyFrame(joined, key), null);
  joined[frameHeaderSize + 10]! ^= 1;
  assert.notEqual(verifyFrame(joined, key), null, "the header's checksum and mac cover the payload");
});
