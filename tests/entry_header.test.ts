import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chainsAfter, decodeHeader, decodeHeaderLazy, decodeHeaderView, encodeEntry, entryHeaderSize, rootEntry, verifyBody, verifyHeader,
} from "../src/codec/entry_header.ts";

const cluster = new Uint8Array(16).fill(7);
const client = new Uint8Array(16).fill(9);

function entryAfter(parent: Uint8Array, op: number, body: Uint8Array): Uint8Array {
  const header = decodeHeader(parent);
  return encodeEntry({
    parent: header.checksum, cluster, client, op, commit: op - 1, timestamp: 1_700_000_000_000 + op,
    view: 3, request: op, operation: 16,
  }, body);
}

test("entry header round-trips every field", () => {
  const root = rootEntry(cluster);
  const body = new TextEncoder().encode("hello");
  const bytes = entryAfter(root, 1, body);
  assert.equal(bytes.length, entryHeaderSize);
  assert.equal(verifyHeader(bytes), null);
  const header = decodeHeader(bytes);
  assert.equal(header.op, 1);
  assert.equal(header.commit, 0);
  assert.equal(header.timestamp, 1_700_000_000_001);
  assert.equal(header.view, 3);
  assert.equal(header.request, 1);
  assert.equal(header.operation, 16);
  assert.equal(header.size, 5);
  assert.deepEqual(header.cluster, cluster);
  assert.deepEqual(header.client, client);
  assert.ok(verifyBody(header, body));
  assert.ok(chainsAfter(decodeHeader(root), header));
});

test("a u64 field above 2^32 round-trips", () => {
  const root = decodeHeader(rootEntry(cluster));
  const bytes = encodeEntry({ ...root, op: 2 ** 40 + 5, commit: 2 ** 33, timestamp: 2 ** 45 }, new Uint8Array(0));
  const header = decodeHeader(bytes);
  assert.equal(header.op, 2 ** 40 + 5);
  assert.equal(header.commit, 2 ** 33);
  assert.equal(header.timestamp, 2 ** 45);
});

test("every single bit flip in a header is detected", () => {
  const bytes = entryAfter(rootEntry(cluster), 1, new Uint8Array([1, 2, 3]));
  for (let bit = 0; bit < entryHeaderSize * 8; bit++) {
    const copy = bytes.slice();
    copy[bit >> 3]! ^= 1 << (bit & 7);
    assert.notEqual(verifyHeader(copy), null, `flip of bit ${bit} went unnoticed`);
  }
});

test("a changed body fails verifyBody and a wrong parent breaks the chain", () => {
  const root = rootEntry(cluster);
  const one = entryAfter(root, 1, new Uint8Array([1, 2, 3]));
  assert.equal(verifyBody(decodeHeader(one), new Uint8Array([1, 2, 4])), false);
  const other = entryAfter(one, 2, new Uint8Array(0));
  assert.equal(chainsAfter(decodeHeader(root), decodeHeader(other)), false);
  assert.ok(chainsAfter(decodeHeader(one), decodeHeader(other)));
});

test("root entries differ between clusters", () => {
  const a = decodeHeader(rootEntry(cluster));
  const b = decodeHeader(rootEntry(new Uint8Array(16).fill(8)));
  assert.notDeepEqual(a.checksum, b.checksum);
});

test("the view and lazy decodings give every field of the copying one, as views of the same bytes", () => {
  const parent = rootEntry(cluster);
  const body = new Uint8Array([1, 2, 3]);
  const bytes = encodeEntry({
    parent: decodeHeader(parent).checksum, cluster, client, op: 2 ** 33 + 5, commit: 2 ** 32 + 1, timestamp: 1_700_000_000_123,
    view: 70_000, request: 4_000_000_000, operation: 0xbeef,
  }, body);
  const copied = decodeHeader(bytes);
  const fields = ["checksum", "checksumBody", "parent", "cluster", "client", "op", "commit", "timestamp", "view", "request", "size", "operation", "version"] as const;
  for (const [name, decoded] of [["view", decodeHeaderView(bytes)], ["lazy", decodeHeaderLazy(bytes)]] as const) {
    for (const field of fields) assert.deepEqual(decoded[field], copied[field], `${name}: ${field}`);
    for (const field of ["checksum", "checksumBody", "parent", "cluster", "client"] as const) {
      assert.equal((decoded[field] as Uint8Array).buffer, bytes.buffer, `${name}: ${field} is a view, not a copy`);
    }
    assert.ok(verifyBody(decoded, body), name);
    assert.ok(chainsAfter(decodeHeader(parent), decoded) === (decoded.op === 1), name);
  }
  // The lazy header holds no view between reads: each read makes a fresh one.
  const lazy = decodeHeaderLazy(bytes);
  assert.notEqual(lazy.checksum, lazy.checksum);
});
