/**
 * The fast path of `encodeValue`: writes CBOR straight into one reusable buffer, with no
 * token objects (cborg builds a token tree per value, and that garbage was the largest
 * cost of applying an event).
 *
 * It must write exactly the bytes the cborg path in value_codec.ts writes, because
 * those bytes are state (the outbox, channels, checkpoints, the state hash). So it only
 * handles the shapes whose encoding is unambiguous (null, undefined, booleans, safe
 * integers, strings, Uint8Array, plain arrays, plain objects, Map, Set) and gives up
 * (`null`) on anything else, and the caller then encodes the whole value with cborg.
 * Floats and bigints are written by cborg itself, one scalar at a time. A differential
 * test compares the two paths on random values.
 * @module
 */

import { allocateBytes, slabSize } from "./byte_slab.ts";

/** Nesting depth past which the fast path gives up (the cborg path decides). */
export const fastDepthMax = 256;

/** Buffer kept between calls; grown on demand, shrunk back when a huge value passed. */
const bufferSizeKeep = 1 << 20;

const textEncoder = new TextEncoder();

/** Strings at least this long are written by TextEncoder.encodeInto rather than a loop. */
const encodeIntoLengthMin = 64;

/** Results up to this size are copied out of the writer by a loop, larger ones by `set`. */
const copyLoopSizeMax = 64;

/**
 * Marks a value to be written as a CBOR byte string holding the value's own encoding:
 * the bytes `encodeValue({ k: encodeValue(v) })` writes for `{ k: new NestedEncoding(v) }`,
 * without encoding `v` into a buffer of its own first (a checkpoint's app image is tens
 * of megabytes: one fresh buffer and one copy fewer). Only the fast path knows it: when
 * anything in the value is outside the fast path, {@link encodeFast} returns null and the
 * caller encodes the parts separately.
 */

/**
 * Writes the CBOR head of major type `major` (already shifted: 0x00, 0x20, …, 0xe0) with
 * argument `n` (0 ≤ n ≤ 2^53) in its shortest form at `at`, and returns the offset after
 * it. `target` must have 9 bytes of room at `at`. Shared by every encoder that writes
 * CBOR by hand (this one and the kernel's stepped snapshot encoder), so they agree on it.
 */
export function writeCborHead(target: Uint8Array, at: number, major: number, n: number): number {
  let p = at;
  if (n < 24) target[p++] = major | n;
  else if (n < 0x100) {
    target[p++] = major | 24;
    target[p++] = n;
  } else if (n < 0x1_0000) {
    target[p++] = major | 25;
    target[p++] = n >>> 8;
    target[p++] = n & 0xff;
  } else if (n < 0x1_0000_0000) {
    target[p++] = major | 26;
    target[p++] = n >>> 24;
    target[p++] = (n >>> 16) & 0xff;
    target[p++] = (n >>> 8) & 0xff;
    target[p++] = n & 0xff;
  } else {
    const high = Math.floor(n / 0x1_0000_0000);
    const low = n >>> 0;
    target[p++] = major | 27;
    target[p++] = high >>> 24;
    target[p++] = (high >>> 16) & 0xff;
    target[p++] = (high >>> 8) & 0xff;
    target[p++] = high & 0xff;
    target[p++] = low >>> 24;
    target[p++] = (low >>> 16) & 0xff;
    target[p++] = (low >>> 8) & 0xff;
    target[p++] = low & 0xff;
  }
  return p;
}

export class NestedEncoding {
  constructor(readonly value: unknown) {}
}

/** Bytes of the shortest head for argument `n` (0 ≤ n ≤ 2^53), as {@link Writer.head} writes it. */
function headWidth(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x1_0000 ? 3 : n < 0x1_0000_0000 ? 5 : 9;
}

/** Thrown inside the encoder when a value is outside the fast path. */
const giveUp: unique symbol = Symbol("give up");

type ScalarEncoder = (value: number | bigint) => Uint8Array;

/**
 * A reusable CBOR writer (one per caller that may re-enter: see {@link encodeFast}). It
 * writes `bytes[start, position)`; positions are absolute, so a write that outgrows its
 * buffer moves to a larger one at the same offsets and every position taken before stays
 * valid.
 */
class Writer {
  bytes: Uint8Array;
  start = 0;
  position = 0;
  /** True while `bytes` is the shared arena (results are views of it, not copies). */
  inArena = false;
  /** The writer's own buffer, for values that outgrow the arena; kept between calls. */
  scratch: Uint8Array = new Uint8Array(4096);
  /** An object whose encoding is known (`reusedBytes`): written as those bytes when met. */
  reused: object | null = null;
  reusedBytes: Uint8Array | null = null;

  constructor(readonly scalar: ScalarEncoder) {
    this.bytes = this.scratch;
  }

  reserve(size: number): void {
    const needed = this.position + size;
    if (needed <= this.bytes.length) return;
    let target = this.inArena ? this.scratch : this.bytes;
    if (needed > target.length) {
      let length = target.length * 2;
      while (length < needed) length *= 2;
      target = new Uint8Array(length);
    }
    if (target !== this.bytes) target.set(this.bytes.subarray(this.start, this.position), this.start);
    this.bytes = this.scratch = target;
    this.inArena = false;
  }

  /** Major type `major` (already shifted) with argument `n` (0 ≤ n ≤ 2^53), shortest form. */
  head(major: number, n: number): void {
    this.reserve(9);
    this.position = writeCborHead(this.bytes, this.position, major, n);
  }

  /** Rewrites the one-byte head at `at` as the longer head for `n` ≥ 24, moving what follows. */
  widenHead(at: number, major: number, n: number): void {
    const end = this.position;
    const width = headWidth(n);
    this.reserve(width - 1);
    this.bytes.copyWithin(at + width, at + 1, end);
    this.position = at;
    this.head(major, n);
    if (this.position !== at + width) throw new Error("value encoder: widened head has the wrong width");
    this.position = end + width - 1;
  }

  /**
   * Writes `inner`'s encoding as a byte string. The head is reserved at 5 bytes (the width
   * for 64 KiB to 4 GiB, the sizes worth nesting) and the encoding moved when its size
   * needs another width: a small move for small images.
   */
  nested(inner: unknown, depth: number): void {
    const reservedWidth = 5;
    this.reserve(reservedWidth);
    const headAt = this.position;
    this.position += reservedWidth;
    const start = this.position;
    this.value(inner, depth + 1);
    const end = this.position;
    const size = end - start;
    const width = headWidth(size);
    // Room, taken while the position is still at the end (a move to a larger buffer
    // copies only up to the position): for a wider head, and for head()'s own reserve.
    this.reserve(9);
    if (width !== reservedWidth) this.bytes.copyWithin(headAt + width, start, end);
    this.position = headAt;
    this.head(0x40, size);
    if (this.position !== headAt + width) throw new Error("value encoder: nested head has the wrong width");
    this.position = headAt + width + size;
  }

  raw(chunk: Uint8Array): void {
    this.reserve(chunk.length);
    this.bytes.set(chunk, this.position);
    this.position += chunk.length;
  }

  string(text: string): void {
    const length = text.length;
    if (length <= 512) {
      // Optimistic ASCII: one byte per UTF-16 unit, header sized for that.
      const start = this.position;
      this.head(0x60, length);
      this.reserve(length);
      const bytes = this.bytes;
      let p = this.position;
      if (length >= encodeIntoLengthMin) {
        // Native UTF-8 encoding beats the loop for longer strings. One byte per unit read
        // means every unit was ASCII (anything else, lone surrogates too, takes 2-3 bytes).
        const { read, written } = textEncoder.encodeInto(text, bytes.subarray(p, p + length));
        if (read === length && written === length) {
          this.position = p + length;
          return;
        }
      } else {
        let i = 0;
        for (; i < length; i++) {
          const unit = text.charCodeAt(i);
          if (unit >= 0x80) break;
          bytes[p++] = unit;
        }
        if (i === length) {
          this.position = p;
          return;
        }
      }
      this.position = start;
    }
    // Non-ASCII (or long): UTF-8 with lone surrogates replaced by U+FFFD, as cborg does.
    const encoded = textEncoder.encode(text);
    this.head(0x60, encoded.length);
    this.raw(encoded);
  }

  value(value: unknown, depth: number): void {
    switch (typeof value) {
      case "string":
        this.string(value);
        return;
      case "number":
        if (Number.isSafeInteger(value)) {
          // -0 is a safe integer and `>= 0`: written as 0, like the cborg path.
          if (value >= 0) this.head(0x00, value);
          else this.head(0x20, -1 - value);
        } else this.raw(this.scalar(value));
        return;
      case "boolean":
        this.reserve(1);
        this.bytes[this.position++] = value ? 0xf5 : 0xf4;
        return;
      case "undefined":
        this.reserve(1);
        this.bytes[this.position++] = 0xf7;
        return;
      case "bigint":
        this.raw(this.scalar(value));
        return;
      case "object":
        break;
      default:
        throw giveUp;
    }
    if (value === null) {
      this.reserve(1);
      this.bytes[this.position++] = 0xf6;
      return;
    }
    if (depth >= fastDepthMax) throw giveUp;
    if (value === this.reused) {
      this.raw(this.reusedBytes!);
      return;
    }
    if (value instanceof Uint8Array) {
      this.head(0x40, value.length);
      this.raw(value);
      return;
    }
    if (value instanceof NestedEncoding) {
      this.nested(value.value, depth);
      return;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype) {
      if ((value as { constructor?: unknown }).constructor !== Object) throw giveUp;
      const record = value as Record<string, unknown>;
      // for-in (no key array per object) yields Object.keys' keys in the same order, plus
      // enumerable inherited ones, which only a polluted Object.prototype has. The
      // count is known at the end: one header byte is reserved and widened if needed.
      this.reserve(1);
      const headAt = this.position++;
      let count = 0;
      for (const key in record) {
        // An enumerable key inherited from a polluted Object.prototype: cborg decides.
        if (!Object.hasOwn(record, key)) throw giveUp;
        this.string(key);
        this.value(record[key], depth + 1);
        count++;
      }
      if (count < 24) this.bytes[headAt] = 0xa0 | count;
      else this.widenHead(headAt, 0xa0, count);
      return;
    }
    if (proto === Array.prototype && Array.isArray(value)) {
      const length = value.length;
      this.head(0x80, length);
      for (let i = 0; i < length; i++) this.value(value[i], depth + 1);
      return;
    }
    if (proto === Map.prototype && value instanceof Map) {
      this.head(0xc0, 259);
      this.head(0x80, value.size * 2);
      for (const [key, item] of value) {
        this.value(key, depth + 1);
        this.value(item, depth + 1);
      }
      return;
    }
    if (proto === Set.prototype && value instanceof Set) {
      this.head(0xc0, 258);
      this.head(0x80, value.size);
      for (const item of value) this.value(item, depth + 1);
      return;
    }
    throw giveUp;
  }
}

let shared: Writer | null = null;
let sharedBusy = false;

/**
 * Encodes the map `{ [first key]: first, [second key]: second }` given as raw bytes
 * `prefix` (map head, first key), `first`, raw `middle` (second key), `second`: the
 * bytes the whole object would encode to, without building the object. Null when a
 * value is outside the fast path.
 */
export function encodeFastSpliced(prefix: Uint8Array, first: unknown, middle: Uint8Array, second: unknown, scalar: ScalarEncoder): Uint8Array | null {
  const writer = acquire(scalar);
  try {
    writer.raw(prefix);
    writer.value(first, 1);
    writer.raw(middle);
    writer.value(second, 1);
    return result(writer);
  } catch (error) {
    if (error === giveUp) return null;
    throw error;
  } finally {
    release(writer);
  }
}

/**
 * Encodes `value` on the fast path, or returns null when it holds something the fast
 * path leaves to cborg (then nothing was written anywhere). The result is a Uint8Array of
 * exactly the encoded size that no other result overlaps: a view of the encoder's arena
 * when it fit there (most values), else a copy in slab memory, or over 1 MiB a view of a
 * larger buffer that nothing else holds. Read it through its byteOffset, never through
 * `.buffer` from 0. `scalar` encodes one float or bigint the
 * way the cborg path would; `sizeHint` is the size the caller expects, reserved upfront.
 */
export function encodeFast(
  value: unknown,
  scalar: ScalarEncoder,
  reused: object | null = null,
  reusedBytes: Uint8Array | null = null,
  sizeHint = 0,
): Uint8Array | null {
  const writer = acquire(scalar);
  try {
    // A known large size (a snapshot around an app image) saves the doubling copies.
    if (sizeHint > 0) writer.reserve(sizeHint);
    writer.reused = reused;
    writer.reusedBytes = reusedBytes;
    writer.value(value, 0);
    return result(writer);
  } catch (error) {
    if (error === giveUp) return null;
    throw error;
  } finally {
    release(writer);
  }
}

/**
 * The arena the shared writer encodes into: results are views of it, so a small value is
 * written once and never copied (a copy plus a fresh array cost about a third of encoding
 * a webhook effect). A view keeps its whole arena alive, as slab views do (byte_slab.ts).
 */
let arena: Uint8Array = new Uint8Array(slabSize);
let arenaOffset = 0;
/** Below this much room left, the next encode starts a new arena. */
const arenaRoomMin = 512;

/** The shared writer, or a new one when a getter or proxy trap encodes while we encode. */
function acquire(scalar: ScalarEncoder): Writer {
  if (sharedBusy) return new Writer(scalar);
  const writer = (shared ??= new Writer(scalar));
  sharedBusy = true;
  if (arena.length - arenaOffset < arenaRoomMin) {
    arena = new Uint8Array(slabSize);
    arenaOffset = 0;
  }
  writer.bytes = arena;
  writer.inArena = true;
  writer.start = writer.position = arenaOffset;
  return writer;
}

function release(writer: Writer): void {
  writer.reused = null;
  writer.reusedBytes = null;
  if (writer !== shared) return;
  sharedBusy = false;
  writer.bytes = writer.scratch;
  writer.inArena = false;
  if (writer.scratch.length > bufferSizeKeep) writer.bytes = writer.scratch = new Uint8Array(4096);
}

function result(writer: Writer): Uint8Array {
  const start = writer.start;
  const size = writer.position - start;
  if (writer.inArena) {
    // Keep views 8-byte aligned, as the slab does.
    arenaOffset = (writer.position + 7) & ~7;
    return writer.bytes.subarray(start, writer.position);
  }
  if (size > bufferSizeKeep) {
    // A large value (a snapshot): hand the buffer over instead of copying megabytes; the
    // writer starts small again, as release() would make it anyway. Pages of the buffer
    // past `size` were never written and take no memory.
    const out = writer.bytes.subarray(start, writer.position);
    writer.bytes = writer.scratch = new Uint8Array(4096);
    return out;
  }
  const out = allocateBytes(size);
  const bytes = writer.bytes;
  // A loop beats subarray + set (a view object per call) only for the smallest sizes: a
  // byte loop into a slab view costs Node about 1.8 ns a byte (200 ns for 95 bytes, where
  // set takes 73 ns); Deno and Bun are within 20 ns either way.
  if (size <= copyLoopSizeMax) for (let i = 0; i < size; i++) out[i] = bytes[start + i]!;
  else out.set(bytes.subarray(start, writer.position));
  return out;
}
