/**
 * The fast path of `decodeValue`: reads the CBOR that `encodeValue` writes straight from
 * the bytes, with no token objects.
 *
 * It must return what the cborg path in value_codec.ts returns, so it accepts only the
 * plain shapes (definite lengths; integers up to 2^53; half, single and double floats;
 * valid UTF-8 strings; bytes; arrays; string-keyed maps without duplicates or
 * `__proto__`; tags 258 (Set) and 259 (Map); false, true, null, undefined) and gives up
 * (`undefined` result flag) on anything else, malformed input included: the caller then
 * decodes the whole input with cborg, which decodes it or names what is wrong.
 * @module
 */

import { copyBytes } from "./byte_slab.ts";

/** Nesting depth past which the fast path gives up. */
export const fastDecodeDepthMax = 256;

const giveUp: unique symbol = Symbol("give up");
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Short ASCII strings (map keys, names, enum values) are interned up to this length.
 * Longer ones are mostly unique (effect ids are 32 characters): interning them would
 * only evict the keys and names that repeat.
 */
const internLengthMax = 24;
/** ASCII strings up to this length are built from char codes (no subarray, no TextDecoder call). */
const asciiDirectLengthMax = 128;
const internSlots = 4096;
const interned: (string | null)[] = new Array<string | null>(internSlots).fill(null);
const charCodes: number[] = [];

/**
 * The ASCII string in bytes[start, end), from a small table of recently decoded strings
 * when it is there (no allocation, and its hash is already computed for Map lookups), or
 * null when a byte is not ASCII.
 */
function internedAscii(bytes: Uint8Array, start: number, end: number): string | null {
  let hash = 0x811c_9dc5;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (byte >= 0x80) return null;
    hash = Math.imul(hash ^ byte, 0x0100_0193);
  }
  const slot = (hash ^ (hash >>> 15)) & (internSlots - 1);
  const length = end - start;
  const cached = interned[slot]!;
  if (cached !== null && cached.length === length) {
    let i = 0;
    while (i < length && cached.charCodeAt(i) === bytes[start + i]) i++;
    if (i === length) return cached;
  }
  const text = asciiFromCodes(bytes, start, end);
  interned[slot] = text;
  return text;
}

const fromCharCode = String.fromCharCode;

/** The string of bytes[start, end), all known to be ASCII. */
function asciiFromCodes(bytes: Uint8Array, start: number, end: number): string {
  const length = end - start;
  const b = bytes;
  const s = start;
  // Map keys and names are short: one call with the codes as arguments is 3x faster than
  // filling an array and applying it (Node and Deno: ~15 against ~50 ns for 8 characters).
  switch (length) {
    case 0: return "";
    case 1: return fromCharCode(b[s]!);
    case 2: return fromCharCode(b[s]!, b[s + 1]!);
    case 3: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!);
    case 4: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!);
    case 5: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!);
    case 6: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!);
    case 7: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!);
    case 8: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!);
    case 9: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!);
    case 10: return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!);
  }
  charCodes.length = length;
  for (let i = 0; i < length; i++) charCodes[i] = bytes[start + i]!;
  return String.fromCharCode.apply(null, charCodes);
}

/** The ASCII string in bytes[start, end), not interned, or null when a byte is not ASCII. */
function directAscii(bytes: Uint8Array, start: number, end: number): string | null {
  for (let i = start; i < end; i++) if (bytes[i]! >= 0x80) return null;
  return asciiFromCodes(bytes, start, end);
}

const noBytes = new Uint8Array(0);

class Reader {
  position = 0;
  bytes: Uint8Array = noBytes;

  /** The argument of the head whose first byte was `initial` (minor type < 28). */
  argument(minor: number): number {
    if (minor < 24) return minor;
    const bytes = this.bytes;
    const p = this.position;
    switch (minor) {
      case 24:
        if (p + 1 > bytes.length) throw giveUp;
        this.position = p + 1;
        return bytes[p]!;
      case 25:
        if (p + 2 > bytes.length) throw giveUp;
        this.position = p + 2;
        return (bytes[p]! << 8) | bytes[p + 1]!;
      case 26:
        if (p + 4 > bytes.length) throw giveUp;
        this.position = p + 4;
        return ((bytes[p]! << 24) >>> 0) + ((bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!);
      case 27: {
        if (p + 8 > bytes.length) throw giveUp;
        const high = ((bytes[p]! << 24) >>> 0) + ((bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!);
        // Above 2^53 - 1 cborg returns a bigint: leave those to it.
        if (high > 0x1f_ffff) throw giveUp;
        const low = ((bytes[p + 4]! << 24) >>> 0) + ((bytes[p + 5]! << 16) | (bytes[p + 6]! << 8) | bytes[p + 7]!);
        const n = high * 0x1_0000_0000 + low;
        if (n > Number.MAX_SAFE_INTEGER) throw giveUp;
        this.position = p + 8;
        return n;
      }
      default:
        // 28..30 reserved, 31 indefinite length.
        throw giveUp;
    }
  }

  string(length: number): string {
    const bytes = this.bytes;
    const start = this.position;
    const end = start + length;
    if (end > bytes.length) throw giveUp;
    this.position = end;
    if (length <= internLengthMax) {
      const text = internedAscii(bytes, start, end);
      if (text !== null) return text;
    } else if (length <= asciiDirectLengthMax) {
      const text = directAscii(bytes, start, end);
      if (text !== null) return text;
    }
    try {
      return textDecoder.decode(bytes.subarray(start, end));
    } catch {
      // Invalid UTF-8: cborg's own rules decide.
      throw giveUp;
    }
  }

  float(minor: number): number {
    const bytes = this.bytes;
    const p = this.position;
    if (minor === 25) {
      if (p + 2 > bytes.length) throw giveUp;
      this.position = p + 2;
      const half = (bytes[p]! << 8) | bytes[p + 1]!;
      const sign = half & 0x8000 ? -1 : 1;
      const exponent = (half >>> 10) & 0x1f;
      const fraction = half & 0x3ff;
      if (exponent === 0) return sign * fraction * 2 ** -24;
      if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
      return sign * (1024 + fraction) * 2 ** (exponent - 25);
    }
    const size = minor === 26 ? 4 : 8;
    if (p + size > bytes.length) throw giveUp;
    this.position = p + size;
    const view = new DataView(bytes.buffer, bytes.byteOffset + p, size);
    return size === 4 ? view.getFloat32(0) : view.getFloat64(0);
  }

  value(depth: number): unknown {
    const bytes = this.bytes;
    if (this.position >= bytes.length) throw giveUp;
    if (depth >= fastDecodeDepthMax) throw giveUp;
    const initial = bytes[this.position++]!;
    const major = initial >>> 5;
    const minor = initial & 0x1f;
    switch (major) {
      case 0:
        return this.argument(minor);
      case 1: {
        const n = -1 - this.argument(minor);
        // -2^53 is not safe: cborg returns a bigint for it.
        if (n < Number.MIN_SAFE_INTEGER) throw giveUp;
        return n;
      }
      case 2: {
        const length = this.argument(minor);
        const start = this.position;
        if (start + length > bytes.length) throw giveUp;
        this.position = start + length;
        // A copy (a Buffer's slice would alias the input), in slab memory when small.
        return copyBytes(bytes, start, start + length);
      }
      case 3:
        return this.string(this.argument(minor));
      case 4: {
        const length = this.argument(minor);
        if (length > bytes.length - this.position) throw giveUp;
        const out: unknown[] = new Array(length);
        for (let i = 0; i < length; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case 5: {
        const length = this.argument(minor);
        if (length > bytes.length - this.position) throw giveUp;
        const out: Record<string, unknown> = {};
        for (let i = 0; i < length; i++) {
          const head = this.position < bytes.length ? bytes[this.position]! : 0;
          if (head >>> 5 !== 3) throw giveUp;
          this.position++;
          const key = this.string(this.argument(head & 0x1f));
          if (key === "__proto__" || Object.hasOwn(out, key)) throw giveUp;
          out[key] = this.value(depth + 1);
        }
        return out;
      }
      case 6: {
        const tag = this.argument(minor);
        if (tag !== 258 && tag !== 259) throw giveUp;
        const inner = this.value(depth + 1);
        if (!Array.isArray(inner)) throw giveUp;
        if (tag === 258) return new Set(inner);
        if (inner.length % 2 !== 0) throw giveUp;
        const map = new Map<unknown, unknown>();
        for (let i = 0; i < inner.length; i += 2) map.set(inner[i], inner[i + 1]);
        return map;
      }
      default:
        switch (minor) {
          case 20:
            return false;
          case 21:
            return true;
          case 22:
            return null;
          case 23:
            return undefined;
          case 25:
          case 26:
          case 27:
            return this.float(minor);
          default:
            throw giveUp;
        }
    }
  }
}

/** What {@link decodeFast} returns when the input is for cborg to decode. */
export const notFast: unique symbol = Symbol("not fast");

/**
 * One reader for every decode: nothing a decode calls can start another (no getters, no
 * callbacks), and a reader and a result object per event were measurable garbage.
 */
const reader = new Reader();

/**
 * Decodes `bytes` on the fast path (one whole item, no trailing bytes), or gives up and
 * returns {@link notFast} (no CBOR value decodes to a symbol).
 */
export function decodeFast(bytes: Uint8Array): unknown {
  reader.bytes = bytes;
  reader.position = 0;
  try {
    const value = reader.value(0);
    return reader.position === bytes.length ? value : notFast;
  } catch (error) {
    if (error === giveUp) return notFast;
    throw error;
  } finally {
    // Not kept alive by the reader until the next decode.
    reader.bytes = noBytes;
  }
}

