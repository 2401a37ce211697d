import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import {
  decodeFrameHeader, encodeFrame, encodeFrameHeaderInto, FrameKind, frameHeaderSize, frameKeyOf, frameVersion, verifyFrame,
} from "../src/net/frame.ts";
import { ByteQueue } from "../src/net/byte_queue.ts";
import { framePayloadCopySizeMax } from "../src/net/connection.ts";
import { busesNew, freePorts, rawDial, text, waitFor } from "./net_helpers.ts";

const key = new Uint8Array(32).map((_, i) => i * 5 + 1);

test("a version-2 message frame: checksum = SHA-256/128 of fields and payload, mac = HMAC-SHA256/128 of that whole digest", () => {
  const payload = new Uint8Array(300).map((_, i) => i * 3);
  const frame = encodeFrame(FrameKind.message, 0x1_2345_6789, payload, key);
  assert.equal(frameVersion, 2);
  assert.equal(frame[2], 2, "version byte");
  const fields = frame.subarray(0, 16);
  assert.deepEqual([...fields.subarray(8, 16)], [0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0], "sequence u64 little-endian");
  const digest = createHash("sha256").update(fields).update(payload).digest();
  assert.deepEqual(frame.subarray(16, 32), new Uint8Array(digest.subarray(0, 16)));
  const mac = createHmac("sha256", key).update(digest).digest();
  assert.deepEqual(frame.subarray(32, 48), new Uint8Array(mac.subarray(0, 16)));
  assert.equal(verifyFrame(frame, key), null);
  assert.equal(verifyFrame(frame, frameKeyOf(key)), null, "a prepared key verifies the same");
  const header = decodeFrameHeader(frame, 1000);
  assert.deepEqual(header, { kind: FrameKind.message, payloadSize: 300, sequence: 0x1_2345_6789 });
});

test("frames are classified: payload bit → bad_checksum, sequence bit or wrong key → bad_mac, version 1 → garbage", () => {
  const frame = encodeFrame(FrameKind.message, 7, text("classify me"), key);
  const flipped = frame.slice();
  flipped[frameHeaderSize + 3]! ^= 0x01;
  assert.equal(verifyFrame(flipped, key), "bad_checksum");
  const sequence = frame.slice();
  sequence[8]! ^= 0x01;
  // The checksum covers the sequence too, so a flipped sequence bit is corruption...
  assert.equal(verifyFrame(sequence, key), "bad_checksum");
  // ...and a sequence rewritten with a matching checksum is a forgery the MAC catches.
  const forged = encodeFrame(FrameKind.message, 8, text("classify me"), new Uint8Array(32).fill(9));
  assert.equal(verifyFrame(forged, key), "bad_mac");
  const macBit = frame.slice();
  macBit[40]! ^= 0x80;
  assert.equal(verifyFrame(macBit, key), "bad_mac");
  const v1 = frame.slice();
  v1[2] = 1;
  assert.equal(decodeFrameHeader(v1, 1000), "garbage");
  const huge = frame.slice();
  huge[15] = 0x00;
  huge[14] = 0x20; // sequence high word 0x200000: past Number.MAX_SAFE_INTEGER
  assert.equal(decodeFrameHeader(huge, 1000), "garbage");
  assert.equal(decodeFrameHeader(frame, 5), "oversized");
  const handshake = encodeFrame(FrameKind.hello, 0, text("hi"), null);
  assert.deepEqual([...handshake.subarray(32, 48)], new Array(16).fill(0), "handshake frames carry a zero mac");
  assert.equal(verifyFrame(handshake, null), null);
});

test("headers written into a shared buffer at offsets are the frames themselves, byte for byte", () => {
  const prepared = frameKeyOf(key);
  const payloads = [text("a"), new Uint8Array(0), new Uint8Array(5000).fill(4), text("last")];
  const total = payloads.reduce((n, p) => n + frameHeaderSize + p.length, 0);
  const buffer = new Uint8Array(total + 3).fill(0xee);
  let at = 3;
  payloads.forEach((payload, sequence) => {
    encodeFrameHeaderInto(buffer, at, FrameKind.message, sequence, payload, prepared);
    buffer.set(payload, at + frameHeaderSize);
    assert.deepEqual(buffer.subarray(at, at + frameHeaderSize + payload.length), encodeFrame(FrameKind.message, sequence, payload, key));
    at += frameHeaderSize + payload.length;
  });
  assert.equal(buffer[0], 0xee, "nothing written before the offset");
});

test("readFresh returns a buffer of its own whether the bytes lay in one chunk or spanned several", () => {
  const queue = new ByteQueue();
  const chunkA = new Uint8Array([1, 2, 3, 4, 5]);
  const chunkB = new Uint8Array([6, 7, 8]);
  queue.push(chunkA);
  queue.push(chunkB);
  const one = queue.readFresh(2);
  const spanning = queue.readFresh(4);
  assert.deepEqual([...one], [1, 2]);
  assert.deepEqual([...spanning], [3, 4, 5, 6]);
  for (const bytes of [one, spanning]) {
    assert.equal(bytes.byteOffset, 0);
    assert.equal(bytes.buffer.byteLength, bytes.length);
  }
  chunkA.fill(0);
  chunkB.fill(0);
  assert.deepEqual([...spanning], [3, 4, 5, 6], "not a view of the chunks");
  assert.equal(queue.length, 2);
  assert.deepEqual([...queue.readFresh(0)], []);
});

test("the handler owns what the bus hands it: plain Uint8Arrays of their own, unchanged by later traffic", async () => {
  const nodes = busesNew(await freePorts(2));
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  const kept: Uint8Array[] = [];
  b.bus.onMessage((_from, bytes) => kept.push(bytes));
  a.bus.onMessage((_from, bytes) => kept.push(bytes));
  await Promise.all(nodes.map((n) => n.bus.start()));
  try {
    // Small and large messages mixed in one flush (copied runs and by-reference writes).
    const sizes = [10, framePayloadCopySizeMax, framePayloadCopySizeMax + 1, 3, 70_000, 0, 200, 100_000, 1];
    const sent = sizes.map((size, i) => new Uint8Array(size).fill(i + 1));
    for (const message of sent) a.bus.send(1, message.slice());
    const self = new Uint8Array([42, 43]);
    a.bus.send(0, self);
    await waitFor(() => kept.length === sizes.length + 1, "every message");
    self.fill(0);
    // Later traffic through the same socket buffers must not touch what was kept.
    for (let i = 0; i < 200; i++) a.bus.send(1, new Uint8Array(1000).fill(0xab));
    await waitFor(() => kept.length === sizes.length + 201, "the later traffic");
    const fromA = kept.filter((bytes) => bytes.length !== 2);
    for (let i = 0; i < sizes.length; i++) {
      const bytes = fromA[i]!;
      assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype, `message ${i} is a plain Uint8Array`);
      assert.equal(bytes.byteOffset, 0);
      assert.equal(bytes.buffer.byteLength, bytes.length, `message ${i} has an ArrayBuffer of its own`);
      assert.deepEqual(bytes, sent[i], `message ${i} intact`);
    }
    const selfCopy = kept.find((bytes) => bytes.length === 2)!;
    assert.deepEqual([...selfCopy], [42, 43], "a message to oneself is a copy");
    assert.equal(b.bus.counters.framesIn, sizes.length + 200);
  } finally {
    await Promise.all(nodes.map((n) => n.bus.close()));
  }
});

test("a frame with a forged mac among good ones in one write drops the connection after the good ones", async () => {
  const nodes = busesNew(await freePorts(2));
  const b = nodes[1]!;
  await b.bus.start();
  try {
    const dialed = await rawDial(b.bus.port, 0, 1);
    assert.ok(dialed.keySend !== null);
    const good0 = encodeFrame(FrameKind.message, 0, text("good 0"), dialed.keySend);
    const good1 = encodeFrame(FrameKind.message, 1, text("good 1"), dialed.keySend);
    const bad = encodeFrame(FrameKind.message, 2, text("bad"), new Uint8Array(32));
    const joined = new Uint8Array(good0.length + good1.length + bad.length);
    joined.set(good0);
    joined.set(good1, good0.length);
    joined.set(bad, good0.length + good1.length);
    dialed.peer.write(joined);
    assert.ok(await dialed.peer.closedByPeer());
    assert.deepEqual(b.inbox.messages, [[0, "good 0"], [0, "good 1"]]);
    assert.equal(b.bus.counters.connectionsDropped.bad_mac, 1);
  } finally {
    await b.bus.close();
  }
});
