/**
 * Checksums: SHA-256 truncated to 128 bits. Used for entry headers and bodies, the hash
 * chain, superblock copies, snapshots and frames.
 *
 * The digest is the same everywhere; the implementation is the one measured fastest per
 * call on the running runtime (recovery hashes two inputs per entry, a 112-byte header
 * and the body, so the cost per call matters as much as the throughput):
 *
 * | runtime | implementation | 112 B | 4 KiB |
 * |---|---|---|---|
 * | Node 20 | node:crypto `hash()` one-shot | 1.3 µs | 3.7 µs |
 * | Node, libcrypto installed | OpenSSL's SHA256_Init/Update/Final through koffi | 0.4 µs | 2.6 µs |
 * | Bun | node:crypto `hash()` one-shot | 0.3 µs | 2.5 µs |
 * | Deno, libcrypto installed | the same through Deno.dlopen | 0.5 µs | 2.9 µs |
 * | Deno, no FFI | plain TypeScript (sha256.ts) up to 256 B, node:crypto above | 1.5 µs | 6.6 µs |
 *
 * (createHash().update().digest() costs 2.1 / 3.8 µs on Node and 3.8 / 6.8 µs on Deno.)
 * codec reaches no FFI itself: the storage layer installs libcrypto's SHA-256 through
 * ffi/libcrypto.ts with {@link installSha256} when it opens a data dir (where recovery
 * hashes a whole journal); everything else uses node:crypto until then.
 * Every implementation is checked against the known digest of "abc" before it is used,
 * and tests compare all of them on inputs of many lengths.
 * @module
 */
import * as nodeCrypto from "node:crypto";
import { sha256FromMidstateInto, sha256Into, sha256Midstate } from "./sha256.ts";

/** Size of a checksum in bytes (128 bits). */
export const checksumSize = 16;

/** One way to compute SHA-256 into a 32-byte buffer. */
export interface Sha256Implementation {
  /** What it is, for `chronon bench` lines and test names. */
  readonly name: string;
  /** Writes SHA-256(`bytes`) into `out` (32 bytes). */
  digestInto(bytes: Uint8Array, out: Uint8Array): void;
  /** Writes SHA-256(`first` ‖ `second`) into `out` (32 bytes) in one pass, without joining them. */
  digestPairInto?(first: Uint8Array, second: Uint8Array, out: Uint8Array): void;
  /**
   * A function writing SHA-256(`prefix` ‖ bytes) into a 32-byte `out`, with `prefix`
   * (whole 64-byte blocks) absorbed once, here, not per call: HMAC's padded keys.
   */
  prefixed?(prefix: Uint8Array): (bytes: Uint8Array, out: Uint8Array) => void;
}

/** Inputs up to this size are hashed in TypeScript where the native call costs more. */
const shortInputMax = 256;

const nodeHash = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array, encoding: "buffer") => Uint8Array }).hash;

/** node:crypto, one-shot `hash()` where the runtime has it (Node ≥ 20.12, Bun, Deno). */
const nodeCryptoImplementation: Sha256Implementation = nodeHash !== undefined
  ? { name: "node:crypto hash", digestInto: (bytes, out) => out.set(nodeHash("sha256", bytes, "buffer")) }
  : { name: "node:crypto createHash", digestInto: (bytes, out) => out.set(nodeCrypto.createHash("sha256").update(bytes).digest()) };

/** The TypeScript SHA-256. */
const typescriptImplementation: Sha256Implementation = {
  name: "typescript",
  digestInto: sha256Into,
  prefixed(prefix) {
    const midstate = sha256Midstate(prefix);
    return (bytes, out) => sha256FromMidstateInto(midstate, prefix.length, bytes, out);
  },
};

/**
 * node:crypto with the prefix absorbed into a Hash that is copied per call: on Bun a copy
 * costs about 0.25 µs, less than the TypeScript compression (on Node and Deno it costs
 * more: 1.1 and 2.7 µs).
 */
const nodeCryptoPrefixed = (prefix: Uint8Array) => {
  const hash = nodeCrypto.createHash("sha256").update(prefix);
  return (bytes: Uint8Array, out: Uint8Array) => out.set(hash.copy().update(bytes).digest());
};

/**
 * True when `implementation` gives the known digest of "abc" and the same digests as
 * node:crypto for a few lengths around the block size (a broken binding is never used).
 */
function passesSelfTest(implementation: Sha256Implementation): boolean {
  const out = new Uint8Array(32);
  const reference = new Uint8Array(32);
  try {
    implementation.digestInto(new Uint8Array([0x61, 0x62, 0x63]), out);
    if (checksumHex(out) !== "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") return false;
    for (const length of [0, 55, 56, 64, 112, 4096 + 7]) {
      const input = new Uint8Array(length);
      for (let i = 0; i < length; i++) input[i] = (i * 7 + length) & 0xff;
      implementation.digestInto(input, out);
      nodeCryptoImplementation.digestInto(input, reference);
      if (!checksumEqual(out, reference)) return false;
      if (implementation.digestPairInto !== undefined) {
        out.fill(0);
        const cut = length >> 1;
        implementation.digestPairInto(input.subarray(0, cut), input.subarray(cut), out);
        if (!checksumEqual(out, reference)) return false;
      }
      if (implementation.prefixed !== undefined) {
        const prefix = new Uint8Array(64).fill(length & 0xff);
        const joined = new Uint8Array(64 + length);
        joined.set(prefix);
        joined.set(input, 64);
        out.fill(0);
        implementation.prefixed(prefix)(input, out);
        nodeCryptoImplementation.digestInto(joined, reference);
        if (!checksumEqual(out, reference)) return false;
      }
    }
  } catch {
    return false;
  }
  return true;
}

const isDeno = (globalThis as { Deno?: unknown }).Deno !== undefined;
const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;

/** For inputs longer than {@link shortInputMax}. */
let longImplementation: Sha256Implementation = nodeCryptoImplementation;
/** For inputs up to {@link shortInputMax}: TypeScript where node:crypto costs more per call (Deno). */
let shortImplementation: Sha256Implementation = isDeno ? typescriptImplementation : nodeCryptoImplementation;
/** Implementations installed with {@link installSha256}. */
const installed: Sha256Implementation[] = [];

/**
 * Makes `implementation` (a native SHA-256 reached through FFI, see ffi/libcrypto.ts) the
 * one used for every checksum from now on, if it gives the right digest of "abc".
 * Returns whether it was installed.
 */
export function installSha256(implementation: Sha256Implementation): boolean {
  if (!passesSelfTest(implementation)) return false;
  longImplementation = implementation;
  shortImplementation = implementation;
  if (!installed.includes(implementation)) installed.push(implementation);
  return true;
}

/** Names of the implementations in use now: `{ short, long }` inputs. */
export function checksumImplementation(): { readonly short: string; readonly long: string } {
  return { short: shortImplementation.name, long: longImplementation.name };
}

/** Every SHA-256 implementation available here (for tests that compare them). */
export function sha256Implementations(): Sha256Implementation[] {
  return [nodeCryptoImplementation, typescriptImplementation, ...installed];
}

const digest = new Uint8Array(32);

function digestInto(bytes: Uint8Array, out: Uint8Array): void {
  if (bytes.length <= shortInputMax) shortImplementation.digestInto(bytes, out);
  else longImplementation.digestInto(bytes, out);
}

/**
 * Pairs up to this many bytes in all are joined in a scratch buffer and hashed in one
 * call where the implementation has no {@link Sha256Implementation.digestPairInto}: the
 * copy costs less than a streaming Hash object (about 0.5 µs on Node, 1 µs on Deno).
 */
const pairJoinedMax = 4096;
const pairScratch = new Uint8Array(pairJoinedMax);

/**
 * Writes the whole SHA-256 (32 bytes) of `first` ‖ `second` into `out`, without joining
 * them in a new buffer: the frame path (header fields and payload) of the bus.
 * @example
 * const out = new Uint8Array(32);
 * sha256PairInto(new Uint8Array([0x61]), new TextEncoder().encode("bc"), out); // sha256("abc")
 */
export function sha256PairInto(first: Uint8Array, second: Uint8Array, out: Uint8Array): void {
  if (out.length !== 32) throw new RangeError("a SHA-256 digest has 32 bytes");
  const total = first.length + second.length;
  const implementation = total <= shortInputMax ? shortImplementation : longImplementation;
  if (implementation.digestPairInto !== undefined) {
    implementation.digestPairInto(first, second, out);
  } else if (total <= pairJoinedMax) {
    pairScratch.set(first, 0);
    pairScratch.set(second, first.length);
    implementation.digestInto(pairScratch.subarray(0, total), out);
  } else {
    out.set(nodeCrypto.createHash("sha256").update(first).update(second).digest());
  }
}

/**
 * A function writing SHA-256(`prefix` ‖ bytes) into a 32-byte `out`, with `prefix`
 * (whole 64-byte blocks) absorbed once: HMAC keys computed once per connection, not per
 * frame. Uses the native SHA-256 when one is installed (then a call is two FFI calls),
 * node:crypto on Bun, else the TypeScript one (about 0.35 µs per block on Node).
 */
export function sha256Prefixed(prefix: Uint8Array): (bytes: Uint8Array, out: Uint8Array) => void {
  if (prefix.length % 64 !== 0) throw new RangeError("a prefix of whole 64-byte blocks");
  const native = installed.find((implementation) => implementation.prefixed !== undefined);
  if (native?.prefixed !== undefined && longImplementation === native) return native.prefixed(prefix);
  if (isBun) return nodeCryptoPrefixed(prefix);
  return typescriptImplementation.prefixed!(prefix);
}

/** Checksum of one or more byte ranges, as if they were concatenated. */
export function checksum(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) {
    digestInto(parts[0]!, digest);
    return digest.slice(0, checksumSize);
  }
  if (parts.length === 2) {
    sha256PairInto(parts[0]!, parts[1]!, digest);
    return digest.slice(0, checksumSize);
  }
  const hash = nodeCrypto.createHash("sha256");
  for (const part of parts) hash.update(part);
  const sum = hash.digest();
  return new Uint8Array(sum.buffer, sum.byteOffset, checksumSize).slice();
}

/**
 * True when the checksum of `bytes` equals the 16 bytes of `expected` at `expectedOffset`:
 * the verification hot path (recovery, reads), with no allocation.
 */
export function checksumMatches(bytes: Uint8Array, expected: Uint8Array, expectedOffset = 0): boolean {
  digestInto(bytes, digest);
  if (expected.length < expectedOffset + checksumSize) return false;
  for (let i = 0; i < checksumSize; i++) if (digest[i] !== expected[expectedOffset + i]) return false;
  return true;
}

/** Constant-shape comparison of two checksums (not secret: no timing guarantees needed). */
export function checksumEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lower-case hex of a checksum, for logs and `chronon inspect`. */
export function checksumHex(sum: Uint8Array): string {
  let out = "";
  for (const byte of sum) out += byte.toString(16).padStart(2, "0");
  return out;
}
