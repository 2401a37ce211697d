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
