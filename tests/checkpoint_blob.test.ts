import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode as cborEncode } from "cborg";
import { encodeValue, decodeValue } from "../src/app/value_codec.ts";
import { checkpointRange, checkpointSize, decodeCheckpoint, encodeCheckpoint, encodeCheckpointImage } from "../src/vsr/checkpoint.ts";
import { encodeEntry } from "../src/codec/entry_header.ts";
import { blockingWriteSizeMax, PortableDisk } from "../src/storage/disk_portable.ts";
import { CheckpointStore, checksumInSlices } from "../src/storage/checkpoint_store.ts";
import { checksum } from "../src/codec/checksum.ts";
import { concatBytes } from "../src/codec/bytes.ts";

const rootHeader = (): Uint8Array =>
  encodeEntry({
    cluster: new Uint8Array(16).fill(1), parent: new Uint8Array(16), view: 0, op: 0, commit: 0, timestamp: 0,
    client: new Uint8Array(16), request: 0, operation: 0,
  }, new Uint8Array(0));

test("the checkpoint blob is byte for byte what cborg writes for the same map, for every head width", () => {
  const header = rootHeader();
  const ops = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
  const sizes = [0, 5, 23, 24, 255, 256, 300, 70_000];
  for (const op of ops) {
    for (const size of sizes) {
      const parts = { op, header, state: new Uint8Array(size).fill(size & 0xff), clients: new Uint8Array(size % 97).fill(2) };
      const reference = new Uint8Array(cborEncode({ version: 1, op, header, state: parts.state, clients: parts.clients }));
      assert.deepEqual(encodeCheckpoint(parts), reference, `op ${op}, state of ${size} bytes`);
      const back = decodeCheckpoint(encodeCheckpoint(parts));
      assert.equal(back.op, op);
      assert.deepEqual(back.state, parts.state);
      assert.deepEqual(back.clients, parts.clients);
    }
  }
});

test("a value of megabytes encodes to the same bytes with or without a size hint, and decodes back", () => {
  const items = new Map<string, { value: string; version: number }>();
  for (let i = 0; i < 20_000; i++) items.set(`key-${i}`, { value: "v".repeat(100) + i, version: i });
  const plain = encodeValue({ items });
  assert.ok(plain.length > 2 * 1024 * 1024, "large enough to take the hand-over path");
  const hinted = encodeValue({ items }, plain.length + 1024);
  assert.deepEqual(hinted, plain);
  // The handed-over buffer is not reused by the next encode.
  const copy = plain.slice();
  encodeValue({ other: "x".repeat(5000) });
  encodeValue({ items });
  assert.deepEqual(plain, copy);
  const back = decodeValue(plain) as { items: Map<string, { value: string; version: number }> };
  assert.equal(back.items.size, 20_000);
  assert.deepEqual(back.items.get("key-19999"), { value: "v".repeat(100) + 19999, version: 19999 });
});

test("a synced write larger than blockingWriteSizeMax leaves the event loop free; a small one does not yield", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-blob-"));
  const disk = new PortableDisk();
  try {
    const file = await disk.open(join(dir, "f"), { create: true });
    const turnRan = async (bytes: Uint8Array[], offset: number): Promise<boolean> => {
      let ran = false;
      setImmediate(() => {
        ran = true;
      });
      await file.write(offset, bytes, { sync: true });
      return ran;
    };
    const small = [new Uint8Array(1000).fill(1), new Uint8Array(24).fill(2)];
    assert.equal(await turnRan(small, 0), false, "a small synced write completes on the calling thread");
    const half = blockingWriteSizeMax / 2 + 4096;
    const large = [new Uint8Array(half).fill(3), new Uint8Array(half).fill(4), new Uint8Array(10).fill(5)];
    assert.equal(await turnRan(large, 2048), true, "a large synced write goes through the thread pool");
    // Many small buffers past the bound (a journal batch of large entries) land in order.
    const many = Array.from({ length: 300 }, (_, i) => new Uint8Array(4096 + (i % 3) * 64).fill(i & 0xff));
    const manyBytes = many.reduce((n, b) => n + b.length, 0);
    assert.ok(manyBytes > blockingWriteSizeMax);
    const manyAt = 2048 + 2 * half + 10;
    await file.write(manyAt, many, { sync: true });
    await file.close();
    const written = readFileSync(join(dir, "f"));
    let at = manyAt;
    for (const [i, buffer] of many.entries()) {
      assert.equal(written[at], i & 0xff, `buffer ${i} starts at ${at}`);
      assert.equal(written[at + buffer.length - 1], i & 0xff, `buffer ${i} ends at ${at + buffer.length - 1}`);
      at += buffer.length;
    }
    assert.equal(written.length, at);
    assert.equal(written[2047], 0);
    assert.equal(written[2048], 3);
    assert.equal(written[2048 + half], 4);
    assert.equal(written[2048 + 2 * half], 5);
    assert.equal(written[999], 1);
    assert.equal(written[1000], 2);
  } finally {
    await disk.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a checkpoint hashed a megabyte per turn has the checksum of the whole, at every slice boundary", async () => {
  const mib = 1024 * 1024;
  for (const size of [0, 1, 1000, mib - 1, mib, mib + 1, 3 * mib + 5]) {
    const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 31 + (i >> 11)) & 0xff);
    assert.deepEqual(await checksumInSlices(bytes), checksum(bytes), `${size} bytes`);
  }
  // A synchronous hash would resolve in microtasks, before this immediate runs.
  let turnRan = false;
  setImmediate(() => {
    turnRan = true;
  });
  await checksumInSlices(new Uint8Array(4 * mib));
  assert.ok(turnRan, "the event loop ran while a 4 MiB checkpoint was hashed");
});

test("concatBytes joins byte arrays and byte lists in order into a new array", () => {
  const a = new Uint8Array([1, 2]);
  const joined = concatBytes([a, [3], new Uint8Array(0), [], new Uint8Array([4, 5])]);
  assert.deepEqual(joined, new Uint8Array([1, 2, 3, 4, 5]));
  joined[0] = 9;
  assert.equal(a[0], 1, "a copy, not a view");
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
});

test("a checkpoint image is the blob in pieces: the state is one piece of its own, ranges across pieces read like the blob", () => {
  const header = rootHeader();
  const state = Uint8Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff);
  const parts = { op: 70_000, header, state, clients: Uint8Array.from({ length: 300 }, (_, i) => i & 0xff) };
  const image = encodeCheckpointImage(parts);
  const blob = encodeCheckpoint(parts);
  assert.deepEqual(concatBytes(image), blob);
  assert.ok(image.includes(state), "the state image is a piece, not a copy");
  assert.equal(checkpointSize(image), blob.length);
  for (const [offset, length] of [[0, 1], [0, 7], [3, 5000], [5, 6000], [blob.length - 3, 10], [blob.length, 4], [100, 0], [0, blob.length + 9]]) {
    assert.deepEqual(checkpointRange(image, offset!, length!), blob.subarray(offset!, Math.min(blob.length, offset! + length!)), `range ${offset}+${length}`);
  }
  for (let offset = 0; offset < blob.length; offset += 97) {
    assert.deepEqual(checkpointRange(image, offset, 1024), blob.subarray(offset, offset + 1024));
  }
});

test("a checkpoint file written from pieces verifies and reads back as the joined blob", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-cp-pieces-"));
  try {
    const disk = new PortableDisk();
    const cluster = new Uint8Array(16).fill(1);
    const store = new CheckpointStore(disk, join(dir, "checkpoints"), cluster);
    const state = Uint8Array.from({ length: 3 * 1024 * 1024 + 17 }, (_, i) => (i * 7) & 0xff);
    const image = encodeCheckpointImage({ op: 9, header: rootHeader(), state, clients: new Uint8Array(40).fill(3) });
    await store.write(9, image);
    const read = await store.read(9);
    assert.ok("bytes" in read, `read back: ${"reason" in read ? read.reason : ""}`);
    assert.deepEqual(read.bytes, concatBytes(image));
    assert.deepEqual(await checksumInSlices(image), checksum(concatBytes(image)));
    await disk.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
