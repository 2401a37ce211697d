/**
 * A CBOR encoder that can stop between any two entries of a large container and go on
 * later: the snapshot of a big state is written over several event-loop turns instead of
 * in one pause (65,536 kv keys: 18 MB and 45–60 ms on Node).
 *
 * It writes exactly the bytes of the fast path in value_encoder.ts (so, of cborg) for the
 * value as it was when the encoder was made, provided every write to the value since goes
 * through the state guard, which keeps each written container's pre-image first
 * (snapshot_preimage.ts): a container with a pre-image is encoded from it, any other one
 * as it is now. Shapes the fast path gives up on make {@link SnapshotEncoder.step} return
 * "gave_up"; the caller then encodes with the reference path from a materialized copy.
 *
 * Small values are encoded recursively in one go; a container of more than
 * `inlineNodesMax` nodes (or `inlineBytesMax` bytes) gets a frame on an explicit stack,
 * which is what lets the encoder stop.
 * @module
 */
import { encodeScalar, NestedEncoding } from "../app/value_codec.ts";
import { fastDepthMax, writeCborHead } from "../app/value_encoder.ts";
import { assert } from "../assert.ts";
import type { Preimage } from "./snapshot_preimage.ts";
import { absent } from "./snapshot_preimage.ts";
import { unguard } from "./state_guard.ts";

/** Nodes (containers and objects) encoded recursively before a value gets a frame. */
export const inlineNodesMax = 512;
/** Bytes written recursively before a value gets a frame (a step stops near its budget). */
export const inlineBytesMax = 64 * 1024;
/** Frames on the stack at most: one per nesting level, and the fast path stops at 256. */
const framesMax = fastDepthMax + 2;

const textEncoder = new TextEncoder();
const tooBig: unique symbol = Symbol("too big to inline");
const giveUp: unique symbol = Symbol("give up");

/** Bytes of the shortest head for argument n. */
function headWidth(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x1_0000 ? 3 : n < 0x1_0000_0000 ? 5 : 9;
}

/** One container being written: `next` writes its next entry, false when there is none. */
interface Frame {
  next(encoder: SnapshotEncoder): boolean;
  /** After the last entry (a nested byte string patches its head). */
  end(encoder: SnapshotEncoder): void;
}

/** What {@link SnapshotEncoder.step} reached. */
export type StepOutcome = "more" | "done" | "gave_up";

/**
 * The buffers encoders allocated, so that a job handed one back (a checkpoint's state
 * bytes the replica dropped) can tell it from bytes someone else may still share, such as
 * a view of the reference encoder's slab. Weak: it keeps no buffer alive.
 */
const encoderBuffers = new WeakSet<ArrayBufferLike>();

/** The whole buffer under `bytes` when an encoder allocated it (see {@link SnapshotEncoder}), else null. */
export function encoderBufferOf(bytes: Uint8Array): Uint8Array | null {
  return encoderBuffers.has(bytes.buffer) ? new Uint8Array(bytes.buffer) : null;
}

function encoderBuffer(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  encoderBuffers.add(bytes.buffer);
  return bytes;
}

/** Encodes one value incrementally; see the module comment. */
export class SnapshotEncoder {
  /** Output; positions are absolute, the buffer grows by doubling. */
  bytes: Uint8Array;
  position = 0;
  readonly preimages: ReadonlyMap<object, Preimage>;
  readonly #stack: Frame[] = [];
  #nodesLeft = 0;
  #inlineStart = 0;
  #outcome: StepOutcome = "more";

  /**
   * `sizeHint`: the expected size (the last snapshot's), reserved at once. `reuse`: a
   * buffer from {@link encoderBufferOf} that nobody reads any more, written over instead of
   * allocating one when it is large enough (its old bytes are never part of the output).
   */
  constructor(root: unknown, preimages: ReadonlyMap<object, Preimage>, sizeHint = 0, reuse: Uint8Array | null = null) {
    const size = Math.max(sizeHint, 64 * 1024);
    this.bytes = reuse !== null && reuse.length >= size ? reuse : encoderBuffer(size);
    this.preimages = preimages;
    this.#stack.push(new RootFrame(root));
  }

  /** The encoding, once {@link step} returned "done" (a view of the encoder's buffer). */
  result(): Uint8Array {
    assert(this.#outcome === "done", "the snapshot encoding is complete");
    return this.bytes.subarray(0, this.position);
  }

  /**
   * Writes about `budgetBytes` more (at least one entry; a value smaller than
   * `inlineBytesMax` is never split) and says whether the encoding is complete.
   */
  step(budgetBytes: number): StepOutcome {
    if (this.#outcome !== "more") return this.#outcome;
    const stop = this.position + Math.max(1, budgetBytes);
    const stack = this.#stack;
    try {
      while (stack.length > 0 && this.position < stop) {
        const frame = stack[stack.length - 1]!;
        if (!frame.next(this)) {
          stack.pop();
          frame.end(this);
        }
      }
    } catch (error) {
      if (error !== giveUp) throw error;
      this.#outcome = "gave_up";
      return this.#outcome;
    }
    if (stack.length === 0) this.#outcome = "done";
    return this.#outcome;
  }

  /** Writes `value` as an entry of the current frame: in one go, or as a frame of its own. */
  child(value: unknown, depth: number): void {
    if (typeof value !== "object" || value === null) {
      this.#scalar(value);
      return;
    }
    const mark = this.position;
    this.#nodesLeft = inlineNodesMax;
    this.#inlineStart = mark;
    try {
      this.#value(value, depth);
      return;
    } catch (error) {
      if (error !== tooBig) throw error;
    }
    this.position = mark;
    this.#pushFrame(value, depth);
  }

  #push(frame: Frame): void {
    if (this.#stack.length >= framesMax) throw giveUp;
    this.#stack.push(frame);
  }

  /** The frame for a container too big to write in one go (its head written first). */
  #pushFrame(value: object, depth: number): void {
    if (depth >= fastDepthMax) throw giveUp;
    if (value instanceof NestedEncoding) {
      this.#push(new NestedFrame(this, value.value, depth));
      return;
    }
    const target = unguard(value);
    const preimage = this.preimages.get(target);
    const proto: unknown = Object.getPrototypeOf(target);
    if (proto === Map.prototype && target instanceof Map) {
      const frame = new CollectionFrame(target, preimage, true, depth);
      this.head(0xc0, 259);
      this.head(0x80, frame.count * 2);
      this.#push(frame);
    } else if (proto === Set.prototype && target instanceof Set) {
      const frame = new CollectionFrame(target, preimage, false, depth);
      this.head(0xc0, 258);
      this.head(0x80, frame.count);
      this.#push(frame);
    } else if (proto === Array.prototype && Array.isArray(target)) {
      const frame = new ArrayFrame(target, preimage, depth);
      this.head(0x80, frame.length);
      this.#push(frame);
    } else if (proto === Object.prototype) {
      const frame = new ObjectFrame(target as Record<string, unknown>, preimage, depth);
      this.head(0xa0, frame.keys.length);
      this.#push(frame);
    } else throw giveUp;
  }

  /** Counts one node of a recursive write; too many (or too many bytes) make it a frame. */
  #node(): void {
    if (--this.#nodesLeft < 0 || this.position - this.#inlineStart > inlineBytesMax) throw tooBig;
  }

  /** A whole value, recursively (the fast path's rules, reading through pre-images). */
  #value(value: unknown, depth: number): void {
    if (typeof value !== "object" || value === null) {
      this.#scalar(value);
      return;
    }
    if (depth >= fastDepthMax) throw giveUp;
    if (value instanceof Uint8Array) {
      this.head(0x40, value.length);
      this.raw(value);
      return;
    }
    this.#node();
    if (value instanceof NestedEncoding) throw tooBig; // an app image: always a frame
    const target = unguard(value);
    const preimage = this.preimages.size === 0 ? undefined : this.preimages.get(target);
    const proto: unknown = Object.getPrototypeOf(target);
    if (proto === Object.prototype) {
      if (preimage !== undefined) {
        const { keys, values } = preimage as { keys: string[]; values: unknown[] };
        if (!plainKeys(keys, values)) throw giveUp;
        if (keys.length > inlineNodesMax) throw tooBig;
        this.head(0xa0, keys.length);
        for (let i = 0; i < keys.length; i++) {
          this.string(keys[i]!);
          this.#value(values[i], depth + 1);
        }
        return;
      }
      const record = target as Record<string, unknown>;
      if (record.constructor !== Object) throw giveUp;
      this.reserve(1);
      const headAt = this.position++;
      let count = 0;
      for (const key in record) {
        if (!Object.hasOwn(record, key)) throw giveUp;
        this.string(key);
        this.#value(record[key], depth + 1);
        count++;
      }
      if (count < 24) this.bytes[headAt] = 0xa0 | count;
      else this.#widenHead(headAt, 0xa0, count);
      return;
    }
    if (proto === Array.prototype && Array.isArray(target)) {
      const items = preimage !== undefined ? (preimage as { items: unknown[] }).items : target;
      const length = items.length;
      if (length > inlineNodesMax) throw tooBig;
      this.head(0x80, length);
      for (let i = 0; i < length; i++) this.#value(items[i], depth + 1);
      return;
    }
    if (proto === Map.prototype && target instanceof Map) {
      if (preimage !== undefined && preimage.kind === "map_changes") {
        if (preimage.size > inlineNodesMax) throw tooBig;
        this.head(0xc0, 259);
        this.head(0x80, preimage.size * 2);
        const changes = preimage.changes;
        let written = 0;
        for (const [key, item] of target) {
          let was: unknown = item;
          if (changes.has(key)) {
            was = changes.get(key);
            if (was === absent) continue;
          }
          this.#value(key, depth + 1);
          this.#value(was, depth + 1);
          written++;
        }
        assert(written === preimage.size, "a Map written only by set still holds every key of the op");
        return;
      }
      if (preimage !== undefined) {
        const items = (preimage as { items: unknown[] }).items;
        if (items.length > 2 * inlineNodesMax) throw tooBig;
        this.head(0xc0, 259);
        this.head(0x80, items.length);
        for (let i = 0; i < items.length; i++) this.#value(items[i], depth + 1);
        return;
      }
      if (target.size > inlineNodesMax) throw tooBig;
      this.head(0xc0, 259);
      this.head(0x80, target.size * 2);
      for (const [key, item] of target) {
        this.#value(key, depth + 1);
        this.#value(item, depth + 1);
      }
      return;
    }
    if (proto === Set.prototype && target instanceof Set) {
      const items = preimage !== undefined ? (preimage as { items: unknown[] }).items : null;
      const size = items !== null ? items.length : target.size;
      if (size > inlineNodesMax) throw tooBig;
      this.head(0xc0, 258);
      this.head(0x80, size);
      for (const item of items ?? target) this.#value(item, depth + 1);
      return;
    }
    throw giveUp;
  }

  #scalar(value: unknown): void {
    switch (typeof value) {
      case "string":
        this.string(value);
        return;
      case "number":
        if (Number.isSafeInteger(value)) {
          // -0 is a safe integer and `>= 0`: written as 0, like the other paths.
          if (value >= 0) this.head(0x00, value);
          else this.head(0x20, -1 - value);
        } else this.raw(encodeScalar(value));
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
        this.raw(encodeScalar(value));
        return;
      case "object":
        assert(value === null, "a scalar");
        this.reserve(1);
        this.bytes[this.position++] = 0xf6;
        return;
      default:
        // Functions and symbols: the reference path decides (it refuses them).
        throw giveUp;
    }
  }

  reserve(size: number): void {
    const needed = this.position + size;
    if (needed <= this.bytes.length) return;
    let length = this.bytes.length * 2;
    while (length < needed) length *= 2;
    const grown = encoderBuffer(length);
    grown.set(this.bytes.subarray(0, this.position));
    this.bytes = grown;
  }

  /** Major type `major` (shifted) with argument n (0 ≤ n ≤ 2^53), shortest form. */
  head(major: number, n: number): void {
    this.reserve(9);
    this.position = writeCborHead(this.bytes, this.position, major, n);
  }

  /** Rewrites the one-byte head at `at` as the longer head for n ≥ 24, moving what follows. */
  #widenHead(at: number, major: number, n: number): void {
    const end = this.position;
    const width = headWidth(n);
    this.reserve(width - 1);
    this.bytes.copyWithin(at + width, at + 1, end);
    this.position = at;
    this.head(major, n);
    assert(this.position === at + width, "a widened head has its width");
    this.position = end + width - 1;
  }

  raw(chunk: Uint8Array): void {
    this.reserve(chunk.length);
    this.bytes.set(chunk, this.position);
    this.position += chunk.length;
  }

  /** A text string, as value_encoder.ts writes it (lone surrogates become U+FFFD). */
  string(text: string): void {
    const length = text.length;
    const start = this.position;
    // Optimistic ASCII: one byte per UTF-16 unit read means every unit was ASCII.
    this.head(0x60, length);
    this.reserve(length);
    const p = this.position;
    if (length < 16) {
      const bytes = this.bytes;
      let i = 0;
      for (; i < length; i++) {
        const unit = text.charCodeAt(i);
        if (unit >= 0x80) break;
        bytes[p + i] = unit;
      }
      if (i === length) {
        this.position = p + length;
        return;
      }
    } else {
      const { read, written } = textEncoder.encodeInto(text, this.bytes.subarray(p, p + length));
      if (read === length && written === length) {
        this.position = p + length;
        return;
      }
    }
    this.position = start;
    const encoded = textEncoder.encode(text);
    this.head(0x60, encoded.length);
    this.raw(encoded);
  }
}

/** True when an object pre-image encodes on the fast path (no own `constructor` but Object). */
function plainKeys(keys: string[], values: unknown[]): boolean {
  const at = keys.indexOf("constructor");
  return at < 0 || values[at] === Object;
}

/** The top: one value. */
class RootFrame implements Frame {
  #value: unknown;
  #written = false;
  constructor(value: unknown) {
    this.#value = value;
  }
  next(encoder: SnapshotEncoder): boolean {
    if (this.#written) return false;
    this.#written = true;
    const value = this.#value;
    this.#value = undefined;
    encoder.child(value, 0);
    return true;
  }
  end(): void {}
}

/**
 * A value written as a byte string holding its encoding (the app image inside the
 * snapshot): the head is reserved at 5 bytes and moved if the size needs another width,
 * as value_encoder.ts does.
 */
class NestedFrame implements Frame {
  readonly #headAt: number;
  readonly #start: number;
  readonly #depth: number;
  #inner: unknown;
  #written = false;
  constructor(encoder: SnapshotEncoder, inner: unknown, depth: number) {
    encoder.reserve(5);
    this.#headAt = encoder.position;
    encoder.position += 5;
    this.#start = encoder.position;
    this.#inner = inner;
    this.#depth = depth;
  }
  next(encoder: SnapshotEncoder): boolean {
    if (this.#written) return false;
    this.#written = true;
    const inner = this.#inner;
    this.#inner = undefined;
    encoder.child(inner, this.#depth + 1);
    return true;
  }
  end(encoder: SnapshotEncoder): void {
    const end = encoder.position;
    const size = end - this.#start;
    const width = headWidth(size);
    encoder.reserve(9);
    if (width !== 5) encoder.bytes.copyWithin(this.#headAt + width, this.#start, end);
    encoder.position = this.#headAt;
    encoder.head(0x40, size);
    assert(encoder.position === this.#headAt + width, "a nested head has its width");
    encoder.position = this.#headAt + width + size;
  }
}

/** An array: its elements by index, from its pre-image once it has one. */
class ArrayFrame implements Frame {
  readonly length: number;
  #items: unknown[] | null;
  #index = 0;
  constructor(readonly target: unknown[], preimage: Preimage | undefined, readonly depth: number) {
    this.#items = preimage !== undefined ? (preimage as { items: unknown[] }).items : null;
    this.length = this.#items !== null ? this.#items.length : target.length;
  }
  next(encoder: SnapshotEncoder): boolean {
    const i = this.#index;
    if (i >= this.length) return false;
    this.#index = i + 1;
    // Not written before this frame began (else it would have a pre-image then): until a
    // write comes, the live array is the array at the snapshot's op.
    if (this.#items === null) {
      const preimage = encoder.preimages.get(this.target);
      if (preimage !== undefined) this.#items = (preimage as { items: unknown[] }).items;
    }
    encoder.child(this.#items !== null ? this.#items[i] : this.target[i], this.depth + 1);
    return true;
  }
  end(): void {}
}

/** A plain object: its keys as they were when the frame began, values by index. */
class ObjectFrame implements Frame {
  readonly keys: string[];
  #values: unknown[] | null;
  #index = 0;
  constructor(readonly target: Record<string, unknown>, preimage: Preimage | undefined, readonly depth: number) {
    if (preimage !== undefined) {
      const { keys, values } = preimage as { keys: string[]; values: unknown[] };
      if (!plainKeys(keys, values)) throw giveUp;
      this.keys = keys;
      this.#values = values;
    } else {
      if (target.constructor !== Object) throw giveUp;
      // for-in order is Object.keys order plus inherited keys, which the fast path refuses.
      for (const key in target) if (!Object.hasOwn(target, key)) throw giveUp;
      this.keys = Object.keys(target);
      this.#values = null;
    }
  }
  next(encoder: SnapshotEncoder): boolean {
    const i = this.#index;
    if (i >= this.keys.length) return false;
    this.#index = i + 1;
    if (this.#values === null) {
      const preimage = encoder.preimages.get(this.target);
      if (preimage !== undefined) this.#values = (preimage as { values: unknown[] }).values;
    }
    const key = this.keys[i]!;
    encoder.string(key);
    encoder.child(this.#values !== null ? this.#values[i] : this.target[key], this.depth + 1);
    return true;
  }
  end(): void {}
}

/**
 * A Map or a Set: live through its iterator until written; a Map written only by `set`
 * still live, with the changed values put back and the new keys skipped; then from its
 * full pre-image. In every mode the entries written so far are the first ones of the op.
 */
class CollectionFrame implements Frame {
  readonly count: number;
  #items: unknown[] | null = null;
  #changes: Map<unknown, unknown> | null = null;
  #iterator: Iterator<unknown> | null = null;
  /** Entries (Map) or members (Set) written. */
  #index = 0;
  constructor(readonly target: Map<unknown, unknown> | Set<unknown>, preimage: Preimage | undefined, readonly isMap: boolean, readonly depth: number) {
    if (preimage === undefined || preimage.kind === "map_changes") {
      this.#iterator = isMap ? (target as Map<unknown, unknown>).entries() : (target as Set<unknown>).values();
      this.#changes = preimage !== undefined ? preimage.changes : null;
      this.count = preimage !== undefined ? preimage.size : target.size;
    } else {
      this.#items = (preimage as { items: unknown[] }).items;
      this.count = isMap ? this.#items.length / 2 : this.#items.length;
    }
  }
  next(encoder: SnapshotEncoder): boolean {
    const i = this.#index;
    if (i >= this.count) return false;
    this.#index = i + 1;
    if (this.#items === null) {
      const preimage = encoder.preimages.get(this.target);
      if (preimage !== undefined && preimage.kind !== "map_changes") {
        this.#items = (preimage as { items: unknown[] }).items;
        this.#iterator = null;
        this.#changes = null;
      } else if (preimage !== undefined) this.#changes = preimage.changes;
    }
    const items = this.#items;
    if (items !== null) {
      if (this.isMap) {
        encoder.child(items[2 * i], this.depth + 1);
        encoder.child(items[2 * i + 1], this.depth + 1);
      } else encoder.child(items[i], this.depth + 1);
      return true;
    }
    const iterator = this.#iterator!;
    if (!this.isMap) {
      const step = iterator.next();
      assert(step.done !== true, "an unwritten Set has the members it had");
      encoder.child(step.value, this.depth + 1);
      return true;
    }
    const changes = this.#changes;
    for (;;) {
      const step = iterator.next();
      assert(step.done !== true, "a Map written only by set holds every key of the op");
      const [key, value] = step.value as [unknown, unknown];
      let was: unknown = value;
      if (changes !== null && changes.has(key)) {
        was = changes.get(key);
        // Set after the op. (New keys follow every key of the op, so the count ends the
        // frame first; skipped all the same, the bytes must not rest on that.)
        if (was === absent) continue;
      }
      encoder.child(key, this.depth + 1);
      encoder.child(was, this.depth + 1);
      return true;
    }
  }
  end(): void {}
}
