import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { encodeEntry } from "../src/codec/entry_header.ts";
import { decodeMessage, encodeMessage } from "../src/vsr/message.ts";
import type { Message } from "../src/vsr/message.ts";

// Sockets hand out Node Buffers that are views into a shared pool at an offset, and
// Buffer.slice() makes views too: a prepare must decode the same from such bytes.
test("a prepare decodes from a Buffer view at an offset into a larger pool", () => {
  const cluster = new Uint8Array(16).fill(5);
  const body = new Uint8Array([9, 8, 7, 6]);
  const header = encodeEntry({
    parent: new Uint8Array(16), cluster, client: new Uint8Array(16), op: 1, commit: 0, timestamp: 1, view: 1, request: 0, operation: 16,
  }, body);
  const message: Message = { cluster, replica: 1, view: 1, commit: 0, kind: "prepare", entries: [{ header, body }] };
  const bytes = encodeMessage(message);
  const pool = Buffer.alloc(bytes.length + 1000, 0xee);
  pool.set(bytes, 333);
  const view = pool.subarray(333, 333 + bytes.length);
  assert.equal(view.byteOffset, 333);
  // Compare values, not classes (bytes decoded from a Buffer may come back as Buffers).
  const plain = (value: unknown): unknown => {
    if (value instanceof Uint8Array) return Array.from(value);
    if (Array.isArray(value)) return value.map(plain);
    if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    return value;
  };
  const decoded = decodeMessage(view, cluster);
  assert.deepEqual(plain(decoded), plain(decodeMessage(bytes, cluster)));
  assert.equal(decoded.kind, "prepare");
});

// Memory: a replica keeps every entry of its window until the next checkpoint, so entries
// must not cost an ArrayBuffer per field (they were the largest share of what the garbage
// collector promoted under load).
test("prepare entries are views of the message bytes, and the log window's headers views of the slot's bytes", async () => {
  const { LogWindow } = await import("../src/vsr/log.ts");
  const { rootEntry } = await import("../src/codec/entry_header.ts");
  const cluster = new Uint8Array(16).fill(5);
  const root = rootEntry(cluster);
  const entries = [1, 2, 3].map((op) => {
    const body = new Uint8Array([op, op, op]);
    return { header: encodeEntry({ parent: new Uint8Array(16), cluster, client: new Uint8Array(16), op, commit: 0, timestamp: op, view: 1, request: op, operation: 16 }, body), body };
  });
  const bytes = encodeMessage({ cluster, replica: 1, view: 1, commit: 0, kind: "prepare", entries });
  const decoded = decodeMessage(bytes, cluster);
  assert.equal(decoded.kind, "prepare");
  if (decoded.kind !== "prepare") return;
  for (const [i, entry] of decoded.entries.entries()) {
    assert.equal(entry.header.buffer, bytes.buffer, `entry ${i} header`);
    assert.equal(entry.body.buffer, bytes.buffer, `entry ${i} body`);
    assert.deepEqual(entry.header, entries[i]!.header);
  }
  const log = new LogWindow(root);
  const slot = log.put(decoded.entries[1]!.header, decoded.entries[1]!.body, true);
  assert.equal(slot.header.op, 2);
  assert.equal(slot.header.checksum.buffer, bytes.buffer);
  assert.deepEqual(slot.header.checksum, entries[1]!.header.subarray(0, 16));
  assert.deepEqual(slot.header.parent, new Uint8Array(16));
});
