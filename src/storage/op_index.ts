/**
 * The journal's in-memory index: for every op from opMin to opHead, where its entry lives
 * (segment number, byte offset, entry size) and whether it is faulty. Typed arrays, so an
 * index of millions of ops costs 21 bytes each and no objects.
 * @module
 */
import { assert, assertCount } from "../assert.ts";

/** Why an op cannot be read. "none" means it is fine. */
export type FaultKind =
  | "none"
  | "header" // the entry header fails its checksum (or bytes there are not a header of this op)
  | "body" // the header is valid but the body is short or fails its checksum
  | "chain" // header and body valid, but the link to the neighbouring op does not hold
  | "gap" // no bytes for this op: the ops around it skip it
  | "missing"; // the op is at or below the commit but its bytes were cut short

const kinds: readonly FaultKind[] = ["none", "header", "body", "chain", "gap", "missing"];

/** Position of one op. offset/size are -1 when not known (e.g. after a corrupt header). */
export interface OpLocation {
  readonly segment: number;
  readonly offset: number;
  readonly size: number;
  readonly fault: FaultKind;
}

/** Index of ops [opMin, opMin + count). */
export class OpIndex {
  /** First op held. */
  opMin = 1;
  #count = 0;
  #start = 0; // index of opMin inside the arrays (released ops are dropped lazily)
  #segment = new Float64Array(1024);
  #offset = new Float64Array(1024);
  #size = new Int32Array(1024);
  #fault = new Uint8Array(1024);

  /** Number of ops held. */
  get count(): number {
    return this.#count;
  }

  /** Last op held (opMin - 1 when empty). */
  get opMax(): number {
    return this.opMin + this.#count - 1;
  }

  /** Appends the location of op opMax + 1. */
  push(location: OpLocation): void {
    assertCount(location.segment, "segment");
    if (this.#start + this.#count === this.#size.length) this.#grow();
    const i = this.#start + this.#count;
    this.#segment[i] = location.segment;
    this.#offset[i] = location.offset;
    this.#size[i] = location.size;
    this.#fault[i] = kinds.indexOf(location.fault);
    this.#count++;
  }

  /** Appends a valid entry of op opMax + 1 (the append hot path: no location object). */
  pushValid(segment: number, offset: number, size: number): void {
    if (this.#start + this.#count === this.#size.length) this.#grow();
    const i = this.#start + this.#count;
    this.#segment[i] = segment;
    this.#offset[i] = offset;
    this.#size[i] = size;
    this.#fault[i] = 0;
    this.#count++;
  }

  /** Location of `op`, which must be held. */
  get(op: number): OpLocation {
    const i = this.#slot(op);
    return {
      segment: this.#segment[i]!,
      offset: this.#offset[i]!,
      size: this.#size[i]!,
      fault: kinds[this.#fault[i]!]!,
    };
  }

  /** True when `op` is held. */
  has(op: number): boolean {
    return op >= this.opMin && op <= this.opMax;
  }

  /** Replaces the location of a held op. */
  set(op: number, location: OpLocation): void {
    const i = this.#slot(op);
    this.#segment[i] = location.segment;
    this.#offset[i] = location.offset;
    this.#size[i] = location.size;
    this.#fault[i] = kinds.indexOf(location.fault);
  }

  /** Forgets every op above `op`. */
  truncateAfter(op: number): void {
    assert(op >= this.opMin - 1, "truncate within the index");
    if (op < this.opMax) this.#count = op - this.opMin + 1;
  }

  /** Forgets every op below `op`. */
  releaseBefore(op: number): void {
    if (op <= this.opMin) return;
    const drop = Math.min(op - this.opMin, this.#count);
    this.#start += drop;
    this.#count -= drop;
    this.opMin += drop;
    if (this.#count === 0) this.opMin = op;
  }

  /** Sets opMin of an empty index. */
  reset(opMin: number): void {
    assertCount(opMin, "opMin");
    this.#count = 0;
    this.#start = 0;
    this.opMin = opMin;
  }

  /** Every faulty op, in order. */
  faultyOps(): number[] {
    const out: number[] = [];
    for (let k = 0; k < this.#count; k++) if (this.#fault[this.#start + k] !== 0) out.push(this.opMin + k);
    return out;
  }

  #slot(op: number): number {
    assert(this.has(op), `op ${op} not in index [${this.opMin}, ${this.opMax}]`);
    return this.#start + (op - this.opMin);
  }

  #grow(): void {
    const capacity = Math.max(1024, this.#count * 2);
    const move = <T extends Float64Array | Int32Array | Uint8Array>(from: T, to: T): T => {
      to.set(from.subarray(this.#start, this.#start + this.#count));
      return to;
    };
    this.#segment = move(this.#segment, new Float64Array(capacity));
    this.#offset = move(this.#offset, new Float64Array(capacity));
    this.#size = move(this.#size, new Int32Array(capacity));
    this.#fault = move(this.#fault, new Uint8Array(capacity));
    this.#start = 0;
  }
}
