import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { installSha256, sha256Implementations, sha256PairInto, sha256Prefixed } from "../src/codec/checksum.ts";
import { HmacSha256 } from "../src/codec/hmac_sha256.ts";
import { sha256FromMidstateInto, sha256Midstate } from "../src/codec/sha256.ts";
import { loadLibcryptoSha256 } from "../ffi/libcrypto.ts";

const lengths = [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 100, 119, 120, 128, 255, 256, 257, 4095, 4096, 4097, 25_000];

function bytesOf(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + seed * 7) & 0xff;
  return bytes;
}

const sha = (bytes: Uint8Array) => new Uint8Array(createHash("sha256").update(bytes).digest());
const hmac = (key: Uint8Array, message: Uint8Array) => new Uint8Array(createHmac("sha256", key).update(message).digest());

/** Runs `check` with the default implementations, then again with libcrypto installed where it loads. */
async function underEveryImplementation(check: (label: string) => void): Promise<void> {
  check("default");
  const native = await loadLibcryptoSha256();
  // Node (koffi) and Deno (-A) load libcrypto where it exists; Bun never does.
  if (native !== null) {
    assert.ok(installSha256(native), "libcrypto passes the self test");
    check(native.name);
  }
}

test("HMAC-SHA256 with a prepared key gives RFC 4231's test vector and node:crypto's MAC for keys and messages of every length", async () => {
  await underEveryImplementation((label) => {
    const jefe = new HmacSha256(new TextEncoder().encode("Jefe"));
    const out = new Uint8Array(32);
    jefe.macInto(new TextEncoder().encode("what do ya want for nothing?"), out);
    assert.equal(Buffer.from(out).toString("hex"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", label);
    for (const keyLength of [0, 16, 32, 64, 65, 131]) {
      const key = bytesOf(keyLength, 3);
      const prepared = new HmacSha256(key);
      for (const length of lengths) {
        const message = bytesOf(length, length);
        out.fill(0);
        prepared.macInto(message, out);
        assert.deepEqual(out, hmac(key, message), `${label}: key ${keyLength}, message ${length}`);
      }
    }
  });
});

test("the two-part SHA-256 equals the SHA-256 of the joined parts at every cut, on every implementation", async () => {
  await underEveryImplementation((label) => {
    const out = new Uint8Array(32);
    for (const length of lengths) {
      const whole = bytesOf(length, 1);
      for (const cut of new Set([0, 1, 16, length >> 1, length - 1, length].filter((c) => c >= 0 && c <= length))) {
        out.fill(0);
        sha256PairInto(whole.subarray(0, cut), whole.subarray(cut), out);
        assert.deepEqual(out, sha(whole), `${label}: length ${length}, cut ${cut}`);
      }
    }
    for (const implementation of sha256Implementations()) {
      if (implementation.digestPairInto === undefined) continue;
      const whole = bytesOf(300, 9);
      implementation.digestPairInto(whole.subarray(0, 16), whole.subarray(16), out);
      assert.deepEqual(out, sha(whole), implementation.name);
    }
  });
});

test("a prefixed SHA-256 (a midstate) equals the SHA-256 of prefix and input joined, on every implementation", async () => {
  const prefix = bytesOf(128, 5);
  await underEveryImplementation((label) => {
    const hashAfter = sha256Prefixed(prefix);
    const out = new Uint8Array(32);
    for (const length of lengths) {
      const input = bytesOf(length, 2);
      const joined = new Uint8Array(prefix.length + length);
      joined.set(prefix);
      joined.set(input, prefix.length);
      hashAfter(input, out);
      assert.deepEqual(out, sha(joined), `${label}: length ${length}`);
      sha256FromMidstateInto(sha256Midstate(prefix), prefix.length, input, out);
      assert.deepEqual(out, sha(joined), `typescript midstate: length ${length}`);
    }
  });
  assert.throws(() => sha256Prefixed(new Uint8Array(10)), RangeError, "a prefix must be whole blocks");
});
