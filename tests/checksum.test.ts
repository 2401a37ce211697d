import { test } from "node:test";
import assert from "node:assert/strict";
import { checksum, checksumEqual, checksumHex, checksumSize } from "../src/codec/checksum.ts";

test("checksum is sha256 truncated to 128 bits", () => {
  const sum = checksum(new TextEncoder().encode("abc"));
  assert.equal(sum.length, checksumSize);
  assert.equal(checksumHex(sum), "ba7816bf8f01cfea414140de5dae2223");
});

test("checksum of parts equals checksum of their concatenation", () => {
  const a = new Uint8Array([1, 2, 3]);
  const b = new Uint8Array([4, 5]);
  assert.ok(checksumEqual(checksum(a, b), checksum(new Uint8Array([1, 2, 3, 4, 5]))));
  assert.ok(!checksumEqual(checksum(a, b), checksum(b, a)));
});
