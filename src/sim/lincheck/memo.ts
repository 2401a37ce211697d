/**
 * Lowe's memoization: the set of (linearized operations, model state) pairs the search
 * has already reached. Reaching a pair twice means the subtree below it was (or is being)
 * explored, so the search skips it. The set of operations is a bitset carrying an
 * incrementally kept 32-bit hash (XOR of one mixed value per member), so a lookup costs a
 * map probe plus the model's state hash, not a pass over the bitset.
 * @module
 */
import { assert } from "../../assert.ts";

/** Mixes an integer into 32 well-spread bits (murmur3's finalizer). */
function mix32(x: number): number {
  let h = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a over a string's UTF-16 code units. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A set of operation indices below `size`, with an order-independent running hash. */
export class Bitset {
  readonly words: Uint32Array;
  readonly #mixes: Uint32Array;
  /** XOR of the mix of every member. */
  hash = 0;

  constructor(readonly size: number) {
    assert(Number.isSafeInteger(size) && size >= 0, "bitset size");
    this.words = new Uint32Array(Math.max(1, Math.ceil(size / 32)));
    this.#mixes = new Uint32Array(size);
    for (let i = 0; i < size; i++) this.#mixes[i] = mix32(i + 1);
  }

  /** Adds `i` (not a member). */
  add(i: number): void {
    const bit = 1 << (i & 31);
    assert((this.words[i >>> 5]! & bit) === 0, "bitset add of a member");
    this.words[i >>> 5]! |= bit;
    this.hash = (this.hash ^ this.#mixes[i]!) >>> 0;
  }

  /** Removes `i` (a member). */
  remove(i: number): void {
    const bit = 1 << (i & 31);
    assert((this.words[i >>> 5]! & bit) !== 0, "bitset remove of a non-member");
    this.words[i >>> 5]! &= ~bit;
    this.hash = (this.hash ^ this.#mixes[i]!) >>> 0;
  }
}

/**
 * The explored (bitset, state) pairs of one search, kept in flat typed arrays (a chained
 * hash table over an append-only pool of bitsets) so that recording a pair allocates
 * nothing per pair except when the pool doubles: real searches record up to millions.
 */
export class Memo<S> {
  readonly #wordCount: number;
  /** The bitsets recorded, `#wordCount` words each, pair `i` at `i * #wordCount`. */
  #pool: Uint32Array;
  /** The combined hash of pair `i`. */
  #hashes: Uint32Array;
  /** The next pair in pair `i`'s bucket, or -1. */
  #chain: Int32Array;
  /** The first pair of each bucket, or -1; its length is a power of two. */
  #buckets: Int32Array;
  readonly #states: S[] = [];
  /** Pairs stored. */
  size = 0;

  constructor(wordCount: number, private readonly equal: (a: S, b: S) => boolean) {
    assert(Number.isSafeInteger(wordCount) && wordCount > 0, "memo word count");
    this.#wordCount = wordCount;
    const capacity = 1024;
    this.#pool = new Uint32Array(capacity * wordCount);
    this.#hashes = new Uint32Array(capacity);
    this.#chain = new Int32Array(capacity);
    this.#buckets = new Int32Array(capacity).fill(-1);
  }

  /**
   * Records (`bits`, `state`) and answers true, or answers false when it was recorded
   * before. `stateHash` is the 32-bit hash of `state`.
   */
  add(bits: Bitset, state: S, stateHash: number): boolean {
    assert(bits.words.length === this.#wordCount, "memo bitset width");
    const hash = (bits.hash ^ Math.imul(stateHash, 0x9e3779b1)) >>> 0;
    const words = bits.words;
    const wordCount = this.#wordCount;
    for (let i = this.#buckets[hash & (this.#buckets.length - 1)]!; i !== -1; i = this.#chain[i]!) {
      if (this.#hashes[i] !== hash) continue;
      let same = true;
      for (let w = 0, at = i * wordCount; w < wordCount; w++, at++) {
        if (this.#pool[at] !== words[w]) {
          same = false;
          break;
        }
      }
      if (same && this.equal(this.#states[i]!, state)) return false;
    }
    if (this.size === this.#hashes.length) this.#grow();
    const i = this.size++;
    this.#pool.set(words, i * wordCount);
    this.#hashes[i] = hash;
    this.#states[i] = state;
    const bucket = hash & (this.#buckets.length - 1);
    this.#chain[i] = this.#buckets[bucket]!;
    this.#buckets[bucket] = i;
    return true;
  }

  /** Doubles every array and rehashes the chains (load factor stays at most 1). */
  #grow(): void {
    const capacity = this.#hashes.length * 2;
    const pool = new Uint32Array(capacity * this.#wordCount);
    pool.set(this.#pool);
    this.#pool = pool;
    const hashes = new Uint32Array(capacity);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
    this.#chain = new Int32Array(capacity);
    this.#buckets = new Int32Array(capacity).fill(-1);
    for (let i = 0; i < this.size; i++) {
      const bucket = this.#hashes[i]! & (capacity - 1);
      this.#chain[i] = this.#buckets[bucket]!;
      this.#buckets[bucket] = i;
    }
  }
}
