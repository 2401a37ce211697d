import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  checksum, checksumEqual, checksumHex, checksumImplementation, checksumMatches, checksumSize, installSha256, sha256Implementations,
} from "../src/codec/checksum.ts";
import { sha256 } from "../src/codec/sha256.ts";
import { loadLibcryptoSha256 } from "../ffi/libcrypto.ts";
import { useNativeChecksum } from "../src/storage/native_checksum.ts";

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


/** Inputs of every length around the block and padding boundaries, plus body-sized ones. */
function inputs(): Uint8Array[] {
  const lengths = [0, 1, 3, 54, 55, 56, 57, 63, 64, 65, 111, 112, 113, 119, 120, 127, 128, 129, 255, 256, 257, 1000, 4096, 4096 + 128, 65_536 + 3];
  return lengths.map((length) => {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = (i * 131 + length * 7) & 0xff;
    return bytes;
  });
}

function reference(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

test("the TypeScript SHA-256 gives node:crypto's digest for every length around the block boundaries", () => {
  for (const bytes of inputs()) assert.deepEqual(sha256(bytes), reference(bytes), `length ${bytes.length}`);
  for (let length = 0; length < 300; length++) {
    const bytes = new Uint8Array(length).fill(length & 0xff);
    assert.deepEqual(sha256(bytes), reference(bytes), `length ${length}`);
  }
});

test("every SHA-256 implementation available here, libcrypto through FFI included, gives the same digests", async () => {
  await useNativeChecksum();
  const implementations = sha256Implementations();
  const native = await loadLibcryptoSha256();
  // Node (koffi) and Deno (Deno.dlopen, -A) load libcrypto where it exists; Bun never does.
  if (native !== null) assert.ok(implementations.some((i) => i.name === native.name), `${native.name} installed`);
  const out = new Uint8Array(32);
  for (const implementation of implementations) {
    for (const bytes of inputs()) {
      out.fill(0);
      implementation.digestInto(bytes, out);
      assert.deepEqual(out, reference(bytes), `${implementation.name}, length ${bytes.length}`);
      // A view at an odd offset into a larger buffer (how recovery hashes entries in a chunk).
      const big = new Uint8Array(bytes.length + 11);
      big.set(bytes, 5);
      implementation.digestInto(big.subarray(5, 5 + bytes.length), out);
      assert.deepEqual(out, reference(bytes), `${implementation.name}, view, length ${bytes.length}`);
    }
  }
  const inUse = checksumImplementation();
  assert.ok(inUse.short.length > 0 && inUse.long.length > 0);
});

test("checksumMatches compares against the 16 bytes at an offset and fails on any flipped bit", () => {
  const body = new TextEncoder().encode("a body of some bytes");
  const holder = new Uint8Array(48);
  holder.set(checksum(body), 16);
  assert.ok(checksumMatches(body, holder, 16));
  assert.ok(!checksumMatches(body, holder, 0));
  for (let bit = 0; bit < 16 * 8; bit += 13) {
    holder[16 + (bit >> 3)]! ^= 1 << (bit & 7);
    assert.ok(!checksumMatches(body, holder, 16), `bit ${bit}`);
    holder[16 + (bit >> 3)]! ^= 1 << (bit & 7);
  }
  assert.ok(!checksumMatches(body, holder, 40), "expected bytes past the end never match");
});

test("installSha256 refuses an implementation that gives wrong digests", () => {
  const before = checksumImplementation();
  const broken = { name: "broken", digestInto: (_bytes: Uint8Array, out: Uint8Array) => out.fill(1) };
  assert.equal(installSha256(broken), false);
  assert.deepEqual(checksumImplementation(), before);
  assert.equal(checksumHex(checksum(new TextEncoder().encode("abc"))), "ba7816bf8f01cfea414140de5dae2223");
});
