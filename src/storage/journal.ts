/**
 * The journal: a hash-chained log of entries in segment files, with group commit.
 *
 * Group commit: `append` checks the entry chains after the last one queued, puts it in a
 * bounded queue and returns a promise. One writer loop takes up to `batchEntriesMax`
 * entries / `batchBytesMax` bytes from the queue, writes them with ONE Disk write call
 * followed by one barrier (`sync: true`), then resolves their promises: an append resolves
 * only once its entry is durable. Appends that arrive while a batch is in flight form the
 * next batch. A full queue makes `append` wait (FIFO, so op order is kept): memory stays
 * bounded however fast callers append.
 *
 * A failed write or sync fails the journal for good (after a failed fdatasync Linux may
 * have dropped the dirty pages, so nothing written since the last good sync can be
 * trusted): every pending and later append rejects with JournalError, and the process must
 * restart and recover.
 * @module
 */
import { checksumEqual, checksumHex } from "../codec/checksum.ts";
import {
  decodeHeader, entryFormatVersion, entryHeaderSize, rootEntry, verifyBody, verifyHeader,
} from "../codec/entry_header.ts";
import type { EntryHeader } from "../codec/entry_header.ts";
import { assert, assertCount } from "../assert.ts";
import type { Disk } from "./disk.ts";
import { JournalError } from "./errors.ts";
import type { FaultKind, OpLocation } from "./op_index.ts";
import { recoverJournal } from "./recovery.ts";
import type { JournalFault, RecoveryResult, SegmentState } from "./recovery.ts";
import { encodeSegmentHeader, segmentHeaderSize, segmentName, segmentSizeLimitDefault } from "./segment.ts";

/** Most entries in one batch (one write call + one barrier). */
export const batchEntriesMaxDefault = 1024;
/** Most bytes in one batch. */
export const batchBytesMaxDefault = 4 * 1024 * 1024;
/** Most entries waiting in the queue (including the batch in flight). */
export const queueEntriesMaxDefault = 8192;
/** Most bytes waiting in the queue. */
export const queueBytesMaxDefault = 64 * 1024 * 1024;

/** Options for {@link Journal.open}. */
export interface JournalOptions {
  readonly cluster: Uint8Array;
  /** The superblock's commit, read when needed (recovery, truncateAfter). */
  readonly commit: () => number;
  /**
   * The superblock's checkpoint op (default 0): ops at or below it are covered by a durable
   * checkpoint and need not be in the journal (released, or never written when the
   * checkpoint came by state transfer).
   */
  readonly checkpointOp?: () => number;
  /** Open for inspection only: no truncation of a torn tail, no appends. */
  readonly readOnly?: boolean;
  /** Size past which a new segment is started. */
  readonly segmentSizeLimit?: number;
  readonly batchEntriesMax?: number;
  readonly batchBytesMax?: number;
  readonly queueEntriesMax?: number;
  readonly queueBytesMax?: number;
  /** Recovery progress, in bytes. */
  readonly progress?: (bytesDone: number, bytesTotal: number) => void;
}

/** The result of {@link Journal.read}: the entry, or the fault that keeps it from being read. */
export type ReadResult =
  | { readonly ok: true; readonly header: Uint8Array; readonly body: Uint8Array }
  | { readonly ok: false; readonly fault: JournalFault };

/** A segment as `chronon inspect` shows it. */
export interface SegmentInfo {
  readonly path: string;
  readonly number: number;
  readonly firstOp: number;
  /** Last op held (firstOp - 1 when empty). */
  readonly lastOp: number;
  readonly bytes: number;
}

/**
 * Entries that will be written together: appends join the open batch until it is full or
 * the writer takes it. All its appenders share one promise (no per-entry promise or
 * object: at 150k appends/s the garbage collector is the bottleneck otherwise).
 */
interface Batch {
  readonly firstOp: number;
  readonly headers: Uint8Array[];
  readonly bodies: Uint8Array[];
  bytes: number;
  /** Set when the writer takes the batch: nothing joins it after that. */
  sealed: boolean;
  readonly done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function newBatch(firstOp: number): Batch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { firstOp, headers: [], bodies: [], bytes: 0, sealed: false, done, resolve, reject };
}

/** Counters for benchmarks and tests. */
export interface JournalStats {
  /** Batches written (each one Disk write call + one barrier). */
  batches: number;
  /** Entries made durable. */
  entries: number;
}

/** True when bytes[offset..offset+16) equal expected[0..16). */
function sameBytes(bytes: Uint8Array, offset: number, expected: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (bytes[offset + i] !== expected[i]) return false;
  return true;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) + bytes[offset + 3]! * 0x100_0000;
}

function readU64(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset) + readU32(bytes, offset + 4) * 0x1_0000_0000;
}

/** The hash-chained, segmented, group-committed journal. See the module doc. */
export class Journal {
  readonly directory: string;
  /** Counters. */
  readonly stats: JournalStats = { batches: 0, entries: 0 };
  readonly #disk: Disk;
  readonly #options: JournalOptions;
  readonly #segmentSizeLimit: number;
  readonly #batchEntriesMax: number;
  readonly #batchBytesMax: number;
  readonly #queueEntriesMax: number;
  readonly #queueBytesMax: number;
  readonly #segments: SegmentState[];
  readonly #index: RecoveryResult["index"];
  readonly #opFaults: Map<number, JournalFault>;
  readonly #otherFaults: JournalFault[];
  readonly #root: EntryHeader;
  #headChecksum: Uint8Array | null;
  #queuedOp: number;
  #queuedChecksum: Uint8Array | null;
  /** Batches waiting for the writer, oldest first; the last one may still be open. */
  #queue: Batch[] = [];
  #queueEntries = 0;
  #queueBytes = 0;
  #waiters: (() => void)[] = [];
  #woken = 0;
  #pushedOp: number;
  #flushing: Promise<void> | null = null;
  #failed: JournalError | null = null;
  #closed = false;

  private constructor(disk: Disk, directory: string, options: JournalOptions, recovery: RecoveryResult) {
    this.#disk = disk;
    this.directory = directory;
    this.#options = options;
    this.#segmentSizeLimit = options.segmentSizeLimit ?? segmentSizeLimitDefault;
    this.#batchEntriesMax = options.batchEntriesMax ?? batchEntriesMaxDefault;
    this.#batchBytesMax = options.batchBytesMax ?? batchBytesMaxDefault;
    this.#queueEntriesMax = options.queueEntriesMax ?? queueEntriesMaxDefault;
    this.#queueBytesMax = options.queueBytesMax ?? queueBytesMaxDefault;
    assert(this.#batchEntriesMax >= 1 && this.#batchEntriesMax <= this.#queueEntriesMax, "batch fits the queue");
    assert(this.#batchBytesMax <= this.#queueBytesMax, "batch bytes fit the queue");
    this.#segments = recovery.segments;
    this.#index = recovery.index;
    this.#opFaults = recovery.opFaults;
    this.#otherFaults = recovery.otherFaults;
    this.#root = decodeHeader(rootEntry(options.cluster));
    this.#headChecksum = recovery.headChecksum;
    this.#queuedOp = this.#index.opMax;
    this.#pushedOp = this.#index.opMax;
    this.#queuedChecksum = recovery.headChecksum;
  }

  /**
   * Opens the journal in `directory` (the data dir's journal/), running recovery. Creates
   * the first segment when there is none (unless read-only).
   */
  static async open(disk: Disk, directory: string, options: JournalOptions): Promise<{ journal: Journal; recovery: RecoveryResult }> {
    const recovery = await recoverJournal(disk, directory, {
      cluster: options.cluster,
      commit: options.commit(),
      checkpointOp: options.checkpointOp?.() ?? 0,
      readOnly: options.readOnly ?? false,
      ...(options.progress === undefined ? {} : { progress: options.progress }),
    });
    const journal = new Journal(disk, directory, options, recovery);
    if (!(options.readOnly ?? false)) {
      const last = recovery.segments[recovery.segments.length - 1];
      if (last === undefined) {
        await journal.#createSegment(1, recovery.index.opMax + 1, recovery.headChecksum, false);
      } else if (last.size < segmentHeaderSize) {
        // The crash interrupted this segment's creation (or a reset's, before its base
        // header was durable: the old journal stands): give it its header again.
        last.firstOp = recovery.index.opMax + 1;
        last.parent = recovery.headChecksum;
        const header = encodeSegmentHeader({ cluster: options.cluster, segment: last.number, firstOp: last.firstOp, parent: last.parent });
        await last.file.write(0, [header], { sync: true });
        last.size = segmentHeaderSize;
      }
    }
    return { journal, recovery };
  }

  /** First op held (ops before it were released by a checkpoint). */
  get opMin(): number {
    return this.#index.opMin;
  }
  /** Last durable op (0 when the journal is empty). */
  get opHead(): number {
    return this.#index.opMax;
  }
  /** Checksum of the head entry's header (the root entry's when empty); null when the head is faulty. */
  get headChecksum(): Uint8Array | null {
    return this.#headChecksum;
  }

  /**
   * Checksum of the header of op opMin − 1, which the first op held chains from: the root
   * entry's when opMin is 1, else as the first segment's header records it (after
   * releaseBefore or resetAfterCheckpoint); null when not recorded (a version 1 segment).
   */
  get startChecksum(): Uint8Array | null {
    if (this.#index.opMin === 1) return this.#root.checksum;
    const first = this.#segments[0];
    return first !== undefined && first.firstOp === this.#index.opMin ? first.parent : null;
  }

  /** Every fault known: segment headers first, then ops in order. */
  faults(): JournalFault[] {
    const ops = [...this.#opFaults.values()].sort((a, b) => a.op - b.op);
    return [...this.#otherFaults, ...ops];
  }

  /** Ops that cannot be read until repaired. */
  faultyOps(): number[] {
    return this.#index.faultyOps();
  }

  /** Where `op` lives, for inspection and tests. */
  locate(op: number): OpLocation & { readonly path: string } {
    const location = this.#index.get(op);
    return { ...location, path: this.#segment(location.segment).path };
  }

  /** The segments, oldest first. */
  segments(): SegmentInfo[] {
    return this.#segments.map((segment, i) => {
      const next = this.#segments[i + 1];
      const lastOp = next === undefined || next.firstOp < 0 ? Math.max(this.opHead, segment.firstOp - 1) : next.firstOp - 1;
      const firstOp = segment.firstOp >= 0 ? segment.firstOp : lastOp + 1; // unknown: header lost, no entry
      return { path: segment.path, number: segment.number, firstOp, lastOp, bytes: segment.size };
    });
  }

  /**
   * Appends an entry (a 128-byte header from encodeEntry and its body); resolves once it is
   * durable. Entries must be appended in op order, each chaining after the previous one.
   * The journal keeps references to both buffers until then: do not change them.
   */
  append(header: Uint8Array, body: Uint8Array): Promise<void> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    assert(!this.#closed, "append after close");
    assert(!(this.#options.readOnly ?? false), "append to a read-only journal");
    // Cheap in-place checks of what must hold (op, chain link, cluster, size, version):
    // the header checksum itself was computed by encodeEntry and is verified again on every
    // read and by recovery; recomputing it here cost a third of an append's CPU. Messages
    // are built only on failure (this is the hot path).
    assert(header.length === entryHeaderSize, "header is 128 bytes");
    const op = readU64(header, 80);
    if (op !== this.#queuedOp + 1) assert(false, `append op ${op} must follow op ${this.#queuedOp}`);
    const parent = this.#queuedChecksum;
    assert(parent !== null, "cannot append after a faulty head: repair it first");
    if (!sameBytes(header, 32, parent)) assert(false, `op ${op} does not chain after op ${this.#queuedOp}`);
    assert(sameBytes(header, 48, this.#options.cluster), "entry of another cluster");
    assert(readU32(header, 112) === body.length, "body size matches the header");
    assert(header[118] === entryFormatVersion, "header of this format version");
    this.#queuedOp = op;
    this.#queuedChecksum = header; // its first 16 bytes: sameBytes reads only those
    const size = entryHeaderSize + body.length;
    if (this.#mustWait(size)) return this.#appendAfterWait(op, header, body, size);
    return this.#enqueue(op, header, body, size);
  }

  async #appendAfterWait(op: number, header: Uint8Array, body: Uint8Array, size: number): Promise<void> {
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#woken--;
    if (this.#failed !== null) throw this.#failed;
    return await this.#enqueue(op, header, body, size);
  }

  #enqueue(op: number, header: Uint8Array, body: Uint8Array, size: number): Promise<void> {
    if (op !== this.#pushedOp + 1) assert(false, "queue keeps op order");
    this.#pushedOp = op;
    let batch = this.#queue[this.#queue.length - 1];
    if (
      batch === undefined || batch.sealed || batch.headers.length >= this.#batchEntriesMax ||
      (batch.bytes > 0 && batch.bytes + size > this.#batchBytesMax)
    ) {
      batch = newBatch(op);
      this.#queue.push(batch);
    }
    batch.headers.push(header);
    batch.bodies.push(body);
    batch.bytes += size;
    this.#queueEntries++;
    this.#queueBytes += size;
    if (this.#flushing === null) this.#flushing = this.#flush();
    return batch.done;
  }

  #mustWait(size: number): boolean {
    if (this.#waiters.length > 0 || this.#woken > 0) return true;
    const entries = this.#queueEntries;
    return entries >= this.#queueEntriesMax || (entries > 0 && this.#queueBytes + size > this.#queueBytesMax);
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failed === null) {
        // Let every appender that is ready (continuations of the batch just resolved, which
        // run as microtasks) join this batch before it is cut: one macrotask hop per batch.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.#queue[0]!;
        batch.sealed = true;
        try {
          await this.#writeBatch(batch);
        } catch (error) {
          this.#fail(error);
          return;
        }
        this.#queue.shift();
        this.#queueEntries -= batch.headers.length;
        this.#queueBytes -= batch.bytes;
        batch.resolve();
        this.#wake();
      }
    } finally {
      this.#flushing = null;
    }
  }

  /** Lets waiting appenders in, oldest first, as far as the queue has room. */
  #wake(): void {
    let room = this.#queueEntriesMax - this.#queueEntries - this.#woken;
    while (room > 0 && this.#waiters.length > 0) {
      this.#woken++;
      room--;
      this.#waiters.shift()!();
    }
  }

  #fail(error: unknown): void {
    const detail = error instanceof Error ? error.message : String(error);
    this.#failed = new JournalError(this.directory, `a journal write failed (${detail}); restart to recover`);
    for (const batch of this.#queue) batch.reject(this.#failed);
    this.#queue = [];
    this.#queueEntries = 0;
    this.#queueBytes = 0;
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#woken += waiters.length;
    for (const wake of waiters) wake();
  }

  async #writeBatch(batch: Batch): Promise<void> {
    let segment = this.#segments[this.#segments.length - 1]!;
    assert(batch.firstOp === this.opHead + 1, "batches are written in op order");
    if (segment.size > segmentHeaderSize && segment.size + batch.bytes > this.#segmentSizeLimit) {
      // A direct file may end in up to a block of zero padding: a closed segment is cut to
      // its last entry (once per segment), so only the last one can have it.
      await segment.file.truncate(segment.size);
      segment = await this.#createSegment(segment.number + 1, batch.firstOp, batch.headers[0]!.subarray(32, 48), false);
    }
    const buffers: Uint8Array[] = [];
    const count = batch.headers.length;
    for (let i = 0; i < count; i++) {
      buffers.push(batch.headers[i]!);
      if (batch.bodies[i]!.length > 0) buffers.push(batch.bodies[i]!);
    }
    const start = segment.size;
    await segment.file.write(start, buffers, { sync: true });
    let offset = start;
    for (let i = 0; i < count; i++) {
      const size = entryHeaderSize + batch.bodies[i]!.length;
      this.#index.pushValid(segment.number, offset, size);
      offset += size;
    }
    assert(offset === start + batch.bytes, "batch size adds up");
    segment.size = offset;
    this.#headChecksum = batch.headers[count - 1]!.slice(0, 16);
    this.stats.batches++;
    this.stats.entries += count;
  }

  /**
   * Creates segment `number` holding ops from `firstOp` on, whose header records `parent`
   * (op firstOp − 1's checksum; null: unknown) and, with `base`, that the journal starts
   * there. Durable (file, header and directory entry) when it resolves.
   */
  async #createSegment(number: number, firstOp: number, parent: Uint8Array | null, base: boolean): Promise<SegmentState> {
    const path = `${this.directory}/${segmentName(number)}`;
    const file = await this.#disk.open(path, { create: true, direct: true });
    const recorded = parent === null ? null : parent.slice(0, 16);
    await file.write(0, [encodeSegmentHeader({ cluster: this.#options.cluster, segment: number, firstOp, parent: recorded, base })], { sync: true });
    await this.#disk.syncDirectory(this.directory);
    const segment: SegmentState = { number, path, file, firstOp, size: segmentHeaderSize, parent: recorded, pins: 0, released: false };
    this.#segments.push(segment);
    return segment;
  }

  /** Resolves once every queued append has been written (or failed). */
  async drain(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
  }

  /** Reads and verifies the entry at `op`. A checksum failure marks the op faulty. */
  async read(op: number): Promise<ReadResult> {
    assert(this.#index.has(op), `read of op ${op} outside [${this.opMin}, ${this.opHead}]`);
    const location = this.#index.get(op);
    if (location.fault !== "none") return { ok: false, fault: this.#opFaults.get(op)! };
    const segment = this.#segment(location.segment);
    const bytes = await this.#readPinned(segment, location.offset, location.size);
    const problem = bytes.length < entryHeaderSize ? "short" : verifyHeader(bytes);
    let kind: FaultKind = "none";
    if (problem !== null) kind = "header";
    else {
      const header = decodeHeader(bytes);
      if (header.op !== op || header.size + entryHeaderSize !== location.size) kind = "header";
      else if (!verifyBody(header, bytes.subarray(entryHeaderSize))) kind = "body";
    }
    if (kind !== "none") {
      const fault: JournalFault = { op, kind, path: segment.path, offset: location.offset, detail: `${kind} of op ${op} failed verification on read` };
      this.#index.set(op, { ...location, fault: kind });
      this.#opFaults.set(op, fault);
      return { ok: false, fault };
    }
    return { ok: true, header: bytes.subarray(0, entryHeaderSize), body: bytes.subarray(entryHeaderSize) };
  }

  /** The verified header bytes at `op`, or null when the op is faulty. */
  async headerAt(op: number): Promise<Uint8Array | null> {
    if (op === 0) return rootEntry(this.#options.cluster);
    const result = await this.read(op);
    return result.ok ? result.header : null;
  }

  async #readPinned(segment: SegmentState, offset: number, length: number): Promise<Uint8Array> {
    segment.pins++;
    try {
      return await segment.file.read(offset, length);
    } finally {
      segment.pins--;
      if (segment.released && segment.pins === 0) await segment.file.close();
    }
  }

  #segment(number: number): SegmentState {
    // Segment numbers increase along the list (consecutive unless a file went missing).
    let low = 0;
    let high = this.#segments.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const segment = this.#segments[middle]!;
      if (segment.number === number) return segment;
      if (segment.number < number) low = middle + 1;
      else high = middle - 1;
    }
    throw new Error(`unreachable: segment ${number} is not held`);
  }

  /**
   * Discards every op above `op` (a divergent uncommitted suffix at a view change). Never
   * at or below the superblock's commit. No append may be in flight.
   */
  async truncateAfter(op: number): Promise<void> {
    assertCount(op, "truncate op");
    assert(!(this.#options.readOnly ?? false), "truncate of a read-only journal");
    const commit = this.#options.commit();
    assert(op >= commit, `truncateAfter(${op}) would discard committed ops (commit ${commit})`);
    assert(this.#flushing === null && this.#queue.length === 0, "truncateAfter with appends in flight");
    if (op >= this.opHead) return;
    assert(op >= this.opMin - 1, `truncateAfter(${op}) below the released prefix (first op held ${this.opMin})`);
    const next = this.#index.get(op + 1);
    let segment = this.#segment(next.segment);
    let cut = next.offset;
    if (cut < 0) {
      const own = this.#index.get(op);
      if (own.offset < 0 || own.size < 0) throw new JournalError(this.directory, `cannot truncate after op ${op}: where op ${op + 1} starts is unknown`);
      segment = this.#segment(own.segment);
      cut = own.offset + own.size;
    }
    if (segment.firstOp === op + 1) cut = segmentHeaderSize;
    const later = this.#segments.filter((s) => s.number > segment.number);
    for (const drop of later) await this.#dropSegment(drop);
    this.#segments.splice(this.#segments.length - later.length, later.length);
    if (later.length > 0) await this.#disk.syncDirectory(this.directory);
    await segment.file.truncate(cut);
    segment.size = cut;
    this.#index.truncateAfter(op);
    for (const faultOp of [...this.#opFaults.keys()]) if (faultOp > op) this.#opFaults.delete(faultOp);
    this.#headChecksum = op === this.opMin - 1 ? this.startChecksum : await this.#checksumAt(op);
    this.#queuedOp = op;
    this.#pushedOp = op;
    this.#queuedChecksum = this.#headChecksum;
  }

  async #checksumAt(op: number): Promise<Uint8Array | null> {
    const header = await this.headerAt(op);
    return header === null ? null : header.slice(0, 16);
  }

  async #dropSegment(segment: SegmentState): Promise<void> {
    segment.released = true;
    await this.#disk.remove(segment.path);
    if (segment.pins === 0) await segment.file.close();
    for (let i = this.#otherFaults.length - 1; i >= 0; i--) {
      if (this.#otherFaults[i]!.path === segment.path) this.#otherFaults.splice(i, 1);
    }
  }

  /**
   * Deletes whole segment files that hold only ops below `op` (after a checkpoint covers
   * them). The last segment is always kept; files are removed, never rewritten or renamed.
   */
  async releaseBefore(op: number): Promise<void> {
    assertCount(op, "release op");
    assert(!(this.#options.readOnly ?? false), "release in a read-only journal");
    let count = 0;
    while (count < this.#segments.length - 1 && this.#segments[count + 1]!.firstOp <= op) count++;
    if (count === 0) return;
    const dropped = this.#segments.splice(0, count);
    for (const segment of dropped) await this.#dropSegment(segment);
    await this.#disk.syncDirectory(this.directory);
    const opMin = this.#segments[0]!.firstOp;
    this.#index.releaseBefore(opMin);
    for (const faultOp of [...this.#opFaults.keys()]) if (faultOp < opMin) this.#opFaults.delete(faultOp);
  }

  /**
   * Starts the journal over after a checkpoint at `op` whose entry's header checksum is
   * `checksum` (state transfer: the replica fell behind its peers' checkpoint). Everything
   * held is discarded — all of it is older than the checkpoint or divergent and
   * uncommitted — and the next append must be op + 1 with parent `checksum`.
   *
   * Durable when it resolves, and atomic across a crash: it first creates a new segment
   * (the next number) whose header records op + 1, `checksum` and the flag "base", syncs
   * it and the directory — the commit point: recovery treats every segment before the
   * newest base as void — and only then removes the old segment files (never rewriting
   * one; a file with a read in flight is closed after the read). A crash before the base
   * header is durable leaves the old journal (an empty or headerless last segment is
   * given an ordinary header at open); after it, the new one.
   *
   * Never discards a committed op the checkpoint does not cover: the superblock's commit
   * must be at most `op`. No append may be in flight. A failure of any step fails the
   * journal (like a failed append): the process restarts and recovers the durable state.
   */
  async resetAfterCheckpoint(op: number, checksum: Uint8Array): Promise<void> {
    assertCount(op, "checkpoint op");
    assert(!(this.#options.readOnly ?? false), "reset of a read-only journal");
    assert(checksum.length === 16 && checksum.some((b) => b !== 0), "checkpoint entry checksum must be 16 bytes, not all zero");
    const commit = this.#options.commit();
    assert(commit <= op, `resetAfterCheckpoint(${op}) would discard committed ops above it (commit ${commit})`);
    assert(this.#flushing === null && this.#queue.length === 0 && this.#waiters.length === 0, "resetAfterCheckpoint with appends in flight");
    if (this.#failed !== null) throw this.#failed;
    const start = checksum.slice();
    const last = this.#segments[this.#segments.length - 1];
    const number = (last === undefined ? 0 : last.number) + 1;
    try {
      await this.#createSegment(number, op + 1, start, true);
      while (this.#segments.length > 1) {
        await this.#dropSegment(this.#segments[0]!);
        this.#segments.shift();
      }
      if (last !== undefined) await this.#disk.syncDirectory(this.directory);
    } catch (error) {
      // Which state is durable is unknown here: refuse further appends until a restart
      // lets recovery decide (an append to the old state could be voided by the base).
      this.#fail(error);
      throw this.#failed!;
    }
    this.#index.reset(op + 1);
    this.#opFaults.clear();
    this.#otherFaults.length = 0;
    this.#headChecksum = start;
    this.#queuedOp = op;
    this.#pushedOp = op;
    this.#queuedChecksum = start;
  }

  /**
   * Overwrites faulty `op` in place with a verified copy (from a peer): checks its checksums,
   * its chain against valid neighbours and that it fits the slot the original occupied,
   * then writes and syncs. Throws JournalError when the copy cannot be placed.
   */
  async repair(op: number, header: Uint8Array, body: Uint8Array): Promise<void> {
    assert(!(this.#options.readOnly ?? false), "repair in a read-only journal");
    assert(this.#flushing === null || op < this.opHead, "repair does not race appends at the head");
    const refuse = (why: string) => new JournalError(this.directory, `repair of op ${op} refused: ${why}`);
    if (!this.#index.has(op) || this.#index.get(op).fault === "none") throw refuse("the op is not faulty");
    if (verifyHeader(header) !== null) throw refuse("the copy's header fails verification");
    const decoded = decodeHeader(header);
    if (decoded.op !== op) throw refuse(`the copy is of op ${decoded.op}`);
    if (!checksumEqual(decoded.cluster, this.#options.cluster)) throw refuse("the copy is of another cluster");
    if (!verifyBody(decoded, body)) throw refuse("the copy's body fails its checksum");
    const previous = await this.#validNeighbour(op - 1);
    if (previous !== null && !checksumEqual(decoded.parent, previous.checksum)) {
      throw refuse(`the copy does not chain after op ${op - 1} (${checksumHex(previous.checksum)})`);
    }
    const following = await this.#validNeighbour(op + 1);
    if (following !== null && !checksumEqual(following.parent, decoded.checksum)) {
      throw refuse(`op ${op + 1} does not chain after the copy`);
    }
    const location = this.#index.get(op);
    let segmentNumber = location.segment;
    let offset = location.offset;
    if (offset < 0 && this.#index.has(op - 1)) {
      const before = this.#index.get(op - 1);
      if (before.offset >= 0 && before.size >= 0) {
        segmentNumber = before.segment;
        offset = before.offset + before.size;
      }
    }
    if (offset < 0) throw refuse("where the op belongs is unknown (repair the ops before it first, or transfer state)");
    const segment = this.#segment(segmentNumber);
    const size = entryHeaderSize + body.length;
    let slotEnd = location.offset >= 0 && location.size >= 0 ? location.offset + location.size : -1;
    let limit = Number.POSITIVE_INFINITY;
    for (let later = op + 1; later <= this.opHead; later++) {
      const next = this.#index.get(later);
      if (next.segment !== segmentNumber) break;
      if (next.offset >= 0) {
        if (later === op + 1) slotEnd = next.offset;
        limit = next.offset;
        break;
      }
    }
    if (slotEnd >= 0 && offset + size !== slotEnd) throw refuse(`the copy is ${size} bytes but the slot holds ${slotEnd - offset}`);
    if (offset + size > limit) throw refuse(`the copy (${size} bytes) would overwrite the next entry at offset ${limit}`);
    await segment.file.write(offset, [header, body], { sync: true });
    segment.size = Math.max(segment.size, offset + size);
    this.#index.set(op, { segment: segmentNumber, offset, size, fault: "none" });
    this.#opFaults.delete(op);
    if (this.#index.has(op + 1)) {
      const next = this.#index.get(op + 1);
      if (next.offset < 0 && next.segment === segmentNumber) this.#index.set(op + 1, { ...next, offset: offset + size });
    }
    if (op === this.opHead) {
      this.#headChecksum = decoded.checksum;
      if (this.#queuedOp === op) this.#queuedChecksum = decoded.checksum;
    }
    for (const neighbour of [op - 1, op + 1]) await this.#recheckChain(neighbour);
  }

  /** The header of `op` when it is held and not faulty (the root entry for op 0), else null. */
  async #validNeighbour(op: number): Promise<EntryHeader | null> {
    if (op === 0) return this.#root;
    if (op === this.opMin - 1) {
      const start = this.startChecksum;
      return start === null ? null : { ...this.#root, op, checksum: start };
    }
    if (!this.#index.has(op) || this.#index.get(op).fault !== "none") return null;
    const bytes = await this.headerAt(op);
    return bytes === null ? null : decodeHeader(bytes);
  }

  /** An op faulty only for its chain link becomes valid again once both links hold. */
  async #recheckChain(op: number): Promise<void> {
    if (!this.#index.has(op)) return;
    const location = this.#index.get(op);
    if (location.fault !== "chain") return;
    this.#index.set(op, { ...location, fault: "none" });
    const result = await this.read(op);
    const before = await this.#validNeighbour(op - 1);
    const after = await this.#validNeighbour(op + 1);
    const header = result.ok ? decodeHeader(result.header) : null;
    const linked = header !== null &&
      (before === null || checksumEqual(header.parent, before.checksum)) &&
      (after === null || checksumEqual(after.parent, header.checksum));
    if (linked) this.#opFaults.delete(op);
    else if (result.ok) this.#index.set(op, { ...location, fault: "chain" });
  }

  /** Waits for appends in flight, then closes every segment file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.drain();
    this.#closed = true;
    for (const segment of this.#segments) if (segment.pins === 0) await segment.file.close();
  }
}
