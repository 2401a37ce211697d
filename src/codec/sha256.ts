/**
 * SHA-256 (FIPS 180-4) in plain TypeScript, for short inputs: the 112 bytes of an entry
 * header that its checksum covers are two compression blocks, and a runtime's native hash
 * costs more than that per call on some runtimes (Deno's node:crypto: about 4 µs a call,
 * this: about 1 µs). Long inputs belong to a native hash (over 1 GB/s with the CPU's SHA
 * instructions; this one runs at a small fraction of that).
 * @module
 */

/** Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const roundConstants = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Initial hash value: the first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const initialState = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

// Reused scratch: the hash is synchronous and never re-entered, so one set serves every call.
const state = new Int32Array(8);
const schedule = new Int32Array(64);
const tail = new Uint8Array(128);

/** Runs the compression function over the 64-byte block of `bytes` at `at`. */
function compress(bytes: Uint8Array, at: number): void {
  const w = schedule;
  const k = roundConstants;
  for (let i = 0; i < 16; i++) {
    const j = at + i * 4;
    w[i] = (bytes[j]! << 24) | (bytes[j + 1]! << 16) | (bytes[j + 2]! << 8) | bytes[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!;
    const y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const choose = (e & f) ^ (~e & g);
    const t1 = (h + s1 + choose + k[i]! + w[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const majority = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (s0 + majority) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/**
 * Writes the first `out.length` bytes (at most 32) of SHA-256(`bytes`) into `out`.
 * @example
 * const digest = new Uint8Array(16);
 * sha256Into(new TextEncoder().encode("abc"), digest); // ba7816bf8f01cfea414140de5dae2223
 */
export function sha256Into(bytes: Uint8Array, out: Uint8Array): void {
  if (out.length > 32) throw new RangeError("a SHA-256 digest has 32 bytes");
  state.set(initialState);
  finishInto(bytes, 0, out);
}

/**
 * The state after absorbing `prefix` (whole 64-byte blocks): hashing many inputs behind
 * one fixed prefix (HMAC's padded keys) then costs only the input's own blocks.
 * @example
 * const inner = sha256Midstate(new Uint8Array(64).fill(0x36));
 */
export function sha256Midstate(prefix: Uint8Array): Int32Array {
  if (prefix.length % 64 !== 0) throw new RangeError("a midstate covers whole 64-byte blocks");
  state.set(initialState);
  for (let at = 0; at < prefix.length; at += 64) compress(prefix, at);
  return state.slice();
}

/**
 * Writes the first `out.length` bytes (at most 32) of SHA-256(prefix ‖ `bytes`) into
 * `out`, where `midstate` is {@link sha256Midstate}(prefix) and `prefixSize` its length.
 */
export function sha256FromMidstateInto(midstate: Int32Array, prefixSize: number, bytes: Uint8Array, out: Uint8Array): void {
  if (out.length > 32) throw new RangeError("a SHA-256 digest has 32 bytes");
  if (midstate.length !== 8 || prefixSize % 64 !== 0) throw new RangeError("a midstate of whole blocks");
  state.set(midstate);
  finishInto(bytes, prefixSize, out);
}

/** Absorbs `bytes` into `state` (which already holds `prefixSize` bytes) and writes the digest. */
function finishInto(bytes: Uint8Array, prefixSize: number, out: Uint8Array): void {
  const length = bytes.length;
  const whole = length - (length % 64);
  for (let at = 0; at < whole; at += 64) compress(bytes, at);
  // Padding: 0x80, zeros, then the bit length as a 64-bit big-endian number.
  const rest = length - whole;
  tail.fill(0);
  tail.set(bytes.subarray(whole), 0);
  tail[rest] = 0x80;
  const tailSize = rest < 56 ? 64 : 128;
  const bits = (prefixSize + length) * 8;
  const high = Math.floor(bits / 0x1_0000_0000);
  tail[tailSize - 8] = high >>> 24;
  tail[tailSize - 7] = high >>> 16;
  tail[tailSize - 6] = high >>> 8;
  tail[tailSize - 5] = high;
  tail[tailSize - 4] = bits >>> 24;
  tail[tailSize - 3] = bits >>> 16;
  tail[tailSize - 2] = bits >>> 8;
  tail[tailSize - 1] = bits;
  compress(tail, 0);
  if (tailSize === 128) compress(tail, 64);
  for (let i = 0; i < out.length; i++) out[i] = state[i >>> 2]! >>> (24 - (i & 3) * 8);
}

/** SHA-256 of `bytes` (32 bytes). */
export function sha256(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  sha256Into(bytes, out);
  return out;
}
