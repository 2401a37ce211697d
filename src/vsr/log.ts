/**
 * The replica's in-memory view of its log after the latest checkpoint: one slot per op
 * with the entry header, the body once known, whether it is on disk, and whether it is
 * *trusted* — known to belong to the log of the replica's current log view.
 *
 * Trust is what keeps a stale entry from an old view from ever being committed:
 * - entries from the primary of the current view (prepares, start_view headers) are trusted;
 * - an entry whose checksum equals the parent of a trusted entry above it is trusted (the
 *   hash chain, walked downwards);
 * - ops at or below the applied commit are trusted (the committed prefix is the same on
 *   every replica).
 * Chaining *upwards* from the committed prefix proves nothing: two views may prepare
 * different entries with the same parent.
 * @module
 */
import { assert } from "../assert.ts";
import { checksumEqual } from "../codec/checksum.ts";
import { decodeHeader, decodeHeaderLazy, type EntryHeader } from "../codec/entry_header.ts";

/** One op's entry as the replica knows it. */
export interface Slot {
  /** Encoded 128-byte header; the slot owns it and nothing may write to it. */
  readonly bytes: Uint8Array;
  /** Decoded header; its 128-bit fields are views of {@link bytes}, made when read. */
  readonly header: EntryHeader;
  /** The body, once read, received or repaired; null while missing. */
  body: Uint8Array | null;
  /** True once this exact entry is durable on this replica's disk. */
  durable: boolean;
  /** Storage action id of the write in flight for this slot, if any. */
  writeId: number | null;
  /** True when the entry is known to be in the log of the current log view. */
  trusted: boolean;
  /** True when this replica held the entry on disk and found it corrupt (never a nack). */
  faulty: boolean;
}

/** The log window: an anchor header (at the checkpoint op) and slots above it. */
export class LogWindow {
  /** Op of the anchor: the latest checkpoint (or 0, the root). */
  anchorOp: number;
  /** Header of the anchor entry. */
  anchor: EntryHeader;
  /** Encoded header of the anchor entry. */
  anchorBytes: Uint8Array;
  /** Highest op this replica has a (possibly untrusted) header for, ≥ anchorOp. */
  head: number;
  readonly #slots = new Map<number, Slot>();

  /** Creates a window anchored at `anchorBytes` (an entry header). */
  constructor(anchorBytes: Uint8Array) {
    this.anchor = decodeHeader(anchorBytes);
    this.anchorBytes = anchorBytes;
    this.anchorOp = this.anchor.op;
    this.head = this.anchorOp;
  }

  /** The slot at `op` (above the anchor), if any. */
  get(op: number): Slot | undefined {
    return this.#slots.get(op);
  }

  /** Checksum of the entry at `op` if known and trusted (the anchor counts). */
  trustedChecksum(op: number): Uint8Array | null {
    if (op === this.anchorOp) return this.anchor.checksum;
    const slot = this.#slots.get(op);
    return slot !== undefined && slot.trusted ? slot.header.checksum : null;
  }

  /**
   * True when `slot`'s parent is the checksum of the trusted entry (or the anchor) at the
   * op below it: the chain check of every commit, done on the bytes without a view.
   */
  chainsToTrusted(slot: Slot): boolean {
    const op = slot.header.op - 1;
    let below: Uint8Array;
    if (op === this.anchorOp) below = this.anchorBytes;
    else {
      const previous = this.#slots.get(op);
      if (previous === undefined || !previous.trusted) return false;
      below = previous.bytes;
    }
    const bytes = slot.bytes;
    for (let i = 0; i < 16; i++) if (bytes[32 + i] !== below[i]) return false;
    return true;
  }

  /** The checksum the entry at `op` must have: the parent of the trusted entry at op + 1. */
  expectedChecksum(op: number): Uint8Array | null {
    if (op <= this.anchorOp) return null;
    const above = this.#slots.get(op + 1);
    if (above !== undefined && above.trusted) return above.header.parent;
    return null;
  }

  /**
   * Puts a slot at `op` (replacing what was there). Takes `bytes` over: the caller must
   * never write to them again (the header's fields are views of them). `header`, when
   * given, must be `decodeHeaderLazy(bytes)`.
   */
  put(bytes: Uint8Array, body: Uint8Array | null, trusted: boolean, header: EntryHeader = decodeHeaderLazy(bytes)): Slot {
    // Neither copies nor views kept: the slot owns `bytes`, which nothing writes to again,
    // and the 128-bit fields are views made when read. Five copied fields cost five
    // ArrayBuffers per slot, and the window holds up to two checkpoint intervals of slots:
    // measured, they were the largest share of what a replica promoted under load.
    // (`header`: the caller's decodeHeaderLazy of `bytes`, when it already made one.)
    assert(header.op > this.anchorOp, "slots live above the anchor");
    const slot: Slot = { bytes, header, body, durable: false, writeId: null, trusted, faulty: false };
    this.#slots.set(header.op, slot);
    if (header.op > this.head) this.head = header.op;
    return slot;
  }

  /** Removes the slot at `op` only (a stale entry below trusted ones). */
  remove(op: number): void {
    this.#slots.delete(op);
    if (op === this.head) this.#lowerHead();
  }

  /** Removes every slot at or above `op`. */
  truncateFrom(op: number): void {
    assert(op > this.anchorOp, "never truncate the anchor");
    for (const key of [...this.#slots.keys()]) if (key >= op) this.#slots.delete(key);
    if (this.head >= op) this.#lowerHead();
  }

  #lowerHead(): void {
    let head = this.anchorOp;
    for (const key of this.#slots.keys()) if (key > head) head = key;
    this.head = head;
  }

  /** Marks every slot above `op` untrusted (a new view's log is being installed). */
  distrustAbove(op: number): void {
    for (const [key, slot] of this.#slots) if (key > op) slot.trusted = false;
  }

  /**
   * From a trusted slot at `op`, walks down the chain: untrusted slots that match the
   * expected checksum become trusted; the first that does not is removed (a stale entry
   * from an old view, to be repaired). Stops at `floor`, at a gap or at the anchor.
   * Returns the removed op, or null.
   */
  walkDown(op: number, floor: number): number | null {
    let above = this.#slots.get(op);
    assert(above === undefined || above.trusted, "walk down from a trusted slot");
    for (let k = op - 1; above !== undefined && k > Math.max(floor, this.anchorOp); k--) {
      const slot = this.#slots.get(k);
      if (slot === undefined) return null;
      if (!checksumEqual(slot.header.checksum, above.header.parent)) {
        this.remove(k);
        return k;
      }
      // A slot already trusted that chains here was checked when it became trusted: stop,
      // or every entry a catching-up replica accepts would walk the whole window again
      // (quadratic; it blocked a restarted replica's event loop for minutes in the demo).
      if (slot.trusted) return null;
      slot.trusted = true;
      above = slot;
    }
    return null;
  }

  /** Moves the anchor up to `op` (a durable checkpoint), dropping the slots at or below it. */
  advanceAnchor(anchorBytes: Uint8Array): void {
    const anchor = decodeHeader(anchorBytes);
    assert(anchor.op >= this.anchorOp, "the anchor only moves up");
    // Slots live only above the anchor: the ops released are exactly (old anchor, new anchor].
    for (let op = this.anchorOp + 1; op <= anchor.op; op++) this.#slots.delete(op);
    this.anchor = anchor;
    this.anchorBytes = anchorBytes;
    this.anchorOp = anchor.op;
    if (this.head < anchor.op) this.head = anchor.op;
  }

    /**
   * Headers of every trusted slot from the head down to `floor` (inclusive, so the
   * receiver can anchor the chain), skipping slots that are missing or untrusted, at most
   * `countMax`, ascending. A hole in this replica's log does not hide the trusted headers
   * below it: a peer can still verify its own copies there against them.
   */
  trustedHeaders(floor: number, countMax: number): Uint8Array[] {
    const headers: Uint8Array[] = [];
    for (let op = this.head; op >= this.anchorOp && headers.length < countMax; op--) {
      if (op === this.anchorOp) {
        if (op > 0) headers.push(this.anchorBytes);
        break;
      }
      const slot = this.#slots.get(op);
      if (slot !== undefined && slot.trusted) headers.push(slot.bytes);
      if (op <= floor) break;
    }
    return headers.reverse();
  }

/**
   * Trusted headers from the head down to `floor` (inclusive), ascending, at most `countMax`;
   * stops at a gap or an untrusted slot; the anchor's header when the head is the anchor.
   */
  trustedSuffix(floor: number, countMax: number): Uint8Array[] {
    const headers: Uint8Array[] = [];
    for (let op = this.head; op >= this.anchorOp && headers.length < countMax; op--) {
      if (op === this.anchorOp) {
        if (op > 0) headers.push(this.anchorBytes);
        break;
      }
      const slot = this.#slots.get(op);
      if (slot === undefined || !slot.trusted) break;
      headers.push(slot.bytes);
      if (op <= floor) break;
    }
    return headers.reverse();
  }

  /** Ops above the anchor that have a slot, ascending. */
  ops(): number[] {
    return [...this.#slots.keys()].sort((a, b) => a - b);
  }

  /** Number of slots held (the memory bound is checked by the replica). */
  get size(): number {
    return this.#slots.size;
  }
}
