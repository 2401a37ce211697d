/**
 * Journal recovery: scans every segment, verifies every header, body and chain link from
 * the root entry (op 0) through the head, truncates a torn tail and names every fault by
 * op, file and offset so the replication layer can repair it from peers.
 *
 * Torn tail or corruption? A tear is what a crash leaves of an unacknowledged write: the
 * end of the LAST segment. Damage found while scanning is a tear only when all of these hold:
 *   1. it is in the last segment,
 *   2. no valid entry of this cluster follows it anywhere in that segment (a bad entry
 *      followed by a valid one is corruption: writes are appended in order, and a crash
 *      cannot produce a valid entry after a torn one),
 *   3. the first damaged op is above the superblock's commit (a committed op was durable
 *      on a quorum before it committed, and the superblock's commit is written after the
 *      journal's sync, so it can never be torn).
 * Otherwise it is corruption: the ops are marked faulty and kept (never truncated).
 * Known limit: a bit flip in the very last entry above the commit looks exactly like a
 * tear and is truncated; that entry was never committed, and VSR treats it like any other
 * uncommitted op a replica lacks.
 *
 * Decision table for one entry at a position (see docs/storage.md for the full table):
 *
 * | header | body | chain | position                  | action                           |
 * |--------|------|-------|---------------------------|----------------------------------|
 * | ok     | ok   | ok    | any                       | accept                           |
 * | ok     | ok   | bad   | any                       | fault "chain" on both ends       |
 * | ok     | bad  | –     | tail of last seg, > commit| truncate (torn tail)             |
 * | ok     | bad  | –     | otherwise                 | fault "body", keep scanning      |
 * | bad    | –    | –     | tail of last seg, > commit| truncate (torn tail)             |
 * | bad    | –    | –     | otherwise                 | fault "header" for the ops up to |
 * |        |      |       |                           | the next valid entry (resync)    |
 * | zero to the end of the file, under a block, the file a whole number of blocks: the zero
 *   padding of a direct file's last block write (Disk `direct`): the segment's data ends there |
 *
 * "Tail" includes an entry followed only by such padding.
 * @module
 */
import { checksumEqual } from "../codec/checksum.ts";
import {
  chainsAfter, decodeHeader, decodeHeaderView, entryFormatVersion, entryHeaderSize, rootEntry, verifyBody, verifyHeader,
} from "../codec/entry_header.ts";
import type { EntryHeader } from "../codec/entry_header.ts";
import { assert } from "../assert.ts";
import { directBlockBytes } from "./disk.ts";
import type { Disk, DiskFile } from "./disk.ts";
import { ClusterMismatchError, DataDirError, FormatVersionError } from "./errors.ts";
import { OpIndex } from "./op_index.ts";
import type { FaultKind } from "./op_index.ts";
import {
  decodeSegmentHeader, parseSegmentName, segmentName, segmentFormatVersion, segmentHeaderSize, segmentHeaderVersion,
} from "./segment.ts";
import { ChunkPool, readChunkSizeDefault, SegmentReader } from "./segment_reader.ts";

/** One fault found in the journal. `op` is -1 for damage not tied to an op (a segment header). */
export interface JournalFault {
  readonly op: number;
  readonly kind: Exclude<FaultKind, "none"> | "segment" | "garbage";
  readonly path: string;
  /** Byte offset in `path`, or -1 when not known (an op after a corrupt header, a gap). */
  readonly offset: number;
  readonly detail: string;
}

/** A segment file the journal holds open. */
export interface SegmentState {
  readonly number: number;
  readonly path: string;
  readonly file: DiskFile;
  firstOp: number;
  /** Bytes in use: where the next entry goes (for the last segment). */
  size: number;
  /** Checksum of op firstOp − 1's header as the segment header records it; null when not recorded. */
  parent: Uint8Array | null;
  /** Reads in flight; the file is closed only when none remain. */
  pins: number;
  released: boolean;
}

/** What recovery found. */
export interface RecoveryResult {
  readonly segments: SegmentState[];
  readonly index: OpIndex;
  /** Faults tied to an op, by op. */
  readonly opFaults: Map<number, JournalFault>;
  /** Faults not tied to an op (segment headers, garbage between entries). */
  readonly otherFaults: JournalFault[];
  /** Checksum of the head entry's header, or null when the head op is faulty without a header. */
  readonly headChecksum: Uint8Array | null;
  /** The torn tail that was (or, read-only, would be) truncated. */
  readonly tornTail: { readonly path: string; readonly offset: number; readonly bytes: number } | null;
  /**
   * Segments before the newest base segment (a reset after a checkpoint that a crash
   * interrupted before it removed them): void, removed (read-only: would be removed).
   */
  readonly discarded: readonly string[];
  readonly bytesScanned: number;
}

/** Options for {@link recoverJournal}. */
export interface RecoveryOptions {
  readonly cluster: Uint8Array;
  /** The superblock's commit: ops at or below it can never be a torn tail. */
  readonly commit: number;
  /**
   * The superblock's checkpoint op (default 0). When it lies past the journal's last op
   * (a state transfer, before the log continued after it), the committed ops the journal
   * lacks are absent, not faulty: nothing after the checkpoint was ever written here.
   */
  readonly checkpointOp?: number;
  /** Report a torn tail without truncating it (chronon inspect). */
  readonly readOnly: boolean;
  readonly chunkSize?: number;
  /** Called now and then with bytes scanned so far and in total. */
  readonly progress?: (bytesDone: number, bytesTotal: number) => void;
}

interface Damage {
  readonly op: number | null; // first op the damaged bytes should hold, if known
  readonly segment: SegmentState;
  readonly offset: number;
  readonly kind: "header" | "body";
  readonly detail: string;
}

/** Scans and verifies the journal in `directory` (see the module doc for the rules). */
export async function recoverJournal(disk: Disk, directory: string, options: RecoveryOptions): Promise<RecoveryResult> {
  const names = await disk.list(directory);
  const numbers: number[] = [];
  for (const name of names) {
    const n = parseSegmentName(name);
    if (n === null) throw new DataDirError(`${directory}/${name}`, "unexpected file in the journal directory (only NNNNNNNNNNNNNNNN.segment files belong there)");
    numbers.push(n);
  }
  numbers.sort((a, b) => a - b);
  const scan = new Scan(disk, directory, options);
  try {
    await scan.run(numbers);
  } catch (error) {
    for (const segment of scan.segments) await segment.file.close();
    throw error;
  }
  return scan.result();
}

class Scan {
  readonly segments: SegmentState[] = [];
  readonly index = new OpIndex();
  readonly opFaults = new Map<number, JournalFault>();
  readonly otherFaults: JournalFault[] = [];
  readonly discarded: string[] = [];
  tornTail: RecoveryResult["tornTail"] = null;
  bytesScanned = 0;
  readonly #disk: Disk;
  readonly #directory: string;
  readonly #options: RecoveryOptions;
  readonly #root: EntryHeader;
  #expected: number | null = null;
  #previous: EntryHeader | null = null;
  /** Storage for #previous (see #keep): op and checksum only; the other fields are the root's. */
  readonly #kept: { -readonly [K in keyof EntryHeader]: EntryHeader[K] }[];
  #keptNext = 0;
  #damage: Damage | null = null;
  #bytesTotal = 0;
  /** Chunk buffers reused by every segment's reader (header views into them are short-lived). */
  readonly #chunkPool: ChunkPool;

  constructor(disk: Disk, directory: string, options: RecoveryOptions) {
    this.#disk = disk;
    this.#directory = directory;
    this.#options = options;
    this.#root = decodeHeader(rootEntry(options.cluster));
    this.#chunkPool = new ChunkPool(options.chunkSize ?? readChunkSizeDefault);
    this.#kept = [{ ...this.#root, checksum: new Uint8Array(16) }, { ...this.#root, checksum: new Uint8Array(16) }];
  }

  async run(numbers: number[]): Promise<void> {
    const files: { n: number; path: string; file: DiskFile; size: number }[] = [];
    for (const n of numbers) {
      const path = `${this.#directory}/${segmentName(n)}`;
      const file = await this.#disk.open(path, { create: false, direct: true });
      const size = await file.size();
      files.push({ n, path, file, size });
    }
    // A base segment (resetAfterCheckpoint) voids every segment before it: a reset removes
    // them after the base is durable, and a crash may have left some behind.
    const base = await this.#lastBase(files);
    const voided = files.splice(0, base);
    for (const { file } of voided) await file.close();
    for (const { size } of files) this.#bytesTotal += size;
    for (let i = 0; i < files.length; i++) {
      const { n, path, file, size } = files[i]!;
      const segment: SegmentState = { number: n, path, file, firstOp: -1, size, parent: null, pins: 0, released: false };
      this.segments.push(segment);
      await this.#scanSegment(segment, size, i === files.length - 1);
    }
    await this.#finish();
    this.#options.progress?.(this.#bytesTotal, this.#bytesTotal); // the last line: done
    // Removed only once everything else checked out: a refused data dir stays untouched.
    for (const { path } of voided) {
      this.discarded.push(path);
      if (!this.#options.readOnly) await this.#disk.remove(path);
    }
    if (voided.length > 0 && !this.#options.readOnly) await this.#disk.syncDirectory(this.#directory);
  }

  /** Index in `files` of the newest segment whose valid header of this cluster is a base; 0 when none. */
  async #lastBase(files: readonly { n: number; file: DiskFile; size: number }[]): Promise<number> {
    for (let i = files.length - 1; i > 0; i--) {
      const { n, file, size } = files[i]!;
      if (size < segmentHeaderSize) continue;
      const decoded = decodeSegmentHeader(await file.read(0, segmentHeaderSize));
      if (typeof decoded === "string" || !decoded.base || decoded.segment !== n) continue;
      if (checksumEqual(decoded.cluster, this.#options.cluster)) return i;
    }
    return 0;
  }

  result(): RecoveryResult {
    let headChecksum: Uint8Array | null = null;
    if (this.index.count === 0 && this.index.opMin === 1) {
      headChecksum = this.#root.checksum;
    } else if (this.#previous !== null && this.#previous.op === this.index.opMax) {
      // (With no entry held, #previous is the recorded start of the journal, if any.)
      // A copy: the scan's headers are views into read chunks (keep neither them nor the chunk).
      headChecksum = this.#previous.checksum.slice();
    }
    return {
      segments: this.segments,
      index: this.index,
      opFaults: this.opFaults,
      otherFaults: this.otherFaults,
      headChecksum,
      tornTail: this.tornTail,
      discarded: this.discarded,
      bytesScanned: this.bytesScanned,
    };
  }

  #fault(fault: JournalFault, segment: number, size: number): void {
    assert(fault.op >= 0, "op fault has an op");
    const kind = fault.kind === "segment" || fault.kind === "garbage" ? "header" : fault.kind;
    if (this.index.has(fault.op)) {
      const old = this.index.get(fault.op);
      this.index.set(fault.op, { ...old, fault: kind });
    } else {
      assert(fault.op === this.index.opMax + 1, `fault for op ${fault.op} out of order`);
      this.index.push({ segment, offset: fault.offset, size, fault: kind });
    }
    if (!this.opFaults.has(fault.op)) this.opFaults.set(fault.op, fault);
  }

  /**
   * The first op seen fixes where the index starts. Op 1 chains to the root entry; a later
   * first op to the parent its segment header records (after releaseBefore or a reset),
   * when recorded (version 1 segments do not: the chain is then checked from that op on).
   */
  #begin(op: number, parent: Uint8Array | null = null): void {
    if (this.#expected !== null) return;
    this.#expected = op;
    this.index.reset(op);
    this.#previous = op === 1 ? this.#root : parent === null ? null : { ...this.#root, op: op - 1, checksum: parent };
  }

  async #scanSegment(segment: SegmentState, fileSize: number, last: boolean): Promise<void> {
    const reader = new SegmentReader(segment.file, fileSize, this.#chunkPool.chunkSize, this.#chunkPool);
    try {
      await this.#scanSegmentWith(reader, segment, fileSize, last);
    } finally {
      await reader.settle();
    }
  }

  async #scanSegmentWith(reader: SegmentReader, segment: SegmentState, fileSize: number, last: boolean): Promise<void> {
    const headerBytes = await reader.view(0, segmentHeaderSize);
    const decoded = decodeSegmentHeader(headerBytes ?? new Uint8Array(0));
    let headerOk = false;
    if (typeof decoded === "string") {
      if (decoded === "version" && headerBytes !== null && segmentHeaderVersion(headerBytes) > segmentFormatVersion) {
        throw new FormatVersionError(segment.path, `segment format version ${segmentHeaderVersion(headerBytes)} is newer than ${segmentFormatVersion}, which this chronon reads; upgrade chronon`);
      }
      this.otherFaults.push({ op: -1, kind: "segment", path: segment.path, offset: 0, detail: `segment header: ${decoded}` });
    } else {
      if (!checksumEqual(decoded.cluster, this.#options.cluster)) {
        throw new ClusterMismatchError(segment.path, "segment belongs to another cluster");
      }
      if (decoded.segment !== segment.number) {
        this.otherFaults.push({ op: -1, kind: "segment", path: segment.path, offset: 0, detail: `segment header names segment ${decoded.segment}` });
      } else {
        headerOk = true;
        segment.firstOp = decoded.firstOp;
        segment.parent = decoded.parent;
        this.#atFirstOp(segment, decoded.firstOp, decoded.parent);
      }
    }
    let position = Math.min(segmentHeaderSize, fileSize);
    let dataEnd = fileSize;
    while (position < fileSize) {
      this.#progress(position);
      const bytes = reader.viewNow(position, entryHeaderSize) ?? await reader.view(position, entryHeaderSize);
      const problem = bytes === null ? "short" : verifyHeader(bytes);
      // Views, not copies: the chunk stays intact while this entry is handled (the reader
      // moves at most one chunk on for its body); #accept copies what outlives it.
      const header = problem === null ? decodeHeaderView(bytes!) : null;
      if (header === null && await this.#isPadding(reader, position, fileSize)) {
        dataEnd = position;
        break;
      }
      if (header === null || !this.#plausible(header)) {
        position = await this.#resync(reader, segment, position, "header", `entry header: ${problem ?? "not the next op of this cluster"}`);
        continue;
      }
      const size = entryHeaderSize + header.size;
      const body = reader.viewNow(position + entryHeaderSize, header.size) ?? await reader.view(position + entryHeaderSize, header.size);
      if (body === null) {
        position = await this.#resync(reader, segment, position, "body", `body of op ${header.op} cut short at end of file`);
        continue;
      }
      if (segment.firstOp < 0) segment.firstOp = header.op;
      const bodyOk = verifyBody(header, body);
      // A torn last write: its entry ends the file, or only a direct file's padding follows.
      if (!bodyOk && last && header.op > this.#options.commit && (position + size === fileSize || await this.#isPadding(reader, position + size, fileSize))) {
        this.#begin(header.op);
        this.#resolveDamage(header.op);
        if (header.op > this.#expected!) this.#gap(segment, header.op);
        this.bytesScanned += reader.bytesRead;
        await this.#tear(segment, position, size);
        return;
      }
      this.#accept(segment, header, position, size, bodyOk);
      position += size;
    }
    const damage = this.#damage;
    const ownDamage = damage === null || (damage.segment === segment && (damage.op ?? this.index.opMax + 1) > this.#options.commit);
    if (!headerOk && segment.firstOp < 0 && last && ownDamage) {
      // A segment whose creation the crash interrupted: no valid header, no valid entry.
      // Journal.open gives it its header again.
      const at = this.otherFaults.findIndex((f) => f.path === segment.path && f.kind === "segment");
      if (at >= 0) this.otherFaults.splice(at, 1);
      this.#damage = null;
      await this.#tear(segment, 0, fileSize);
    }
    if (this.tornTail === null) segment.size = dataEnd;
    this.bytesScanned += reader.bytesRead;
  }

  /**
   * True when the bytes from `position` to the end of the file are the zero padding a
   * direct file's last block write leaves (Disk `direct`): fewer than a block, all zero,
   * and the file ends on a block boundary. Anything else is left to the torn-tail and
   * fault rules.
   */
  async #isPadding(reader: SegmentReader, position: number, fileSize: number): Promise<boolean> {
    const rest = fileSize - position;
    if (fileSize % directBlockBytes !== 0 || rest <= 0 || rest >= directBlockBytes) return false;
    const bytes = await reader.view(position, rest);
    if (bytes === null) return false;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
    return true;
  }

  /** A valid header is plausible here when it is of this cluster and not behind the scan. */
  #plausible(header: EntryHeader): boolean {
    if (!checksumEqual(header.cluster, this.#options.cluster)) return false;
    if (this.#expected !== null && header.op < this.#expected) return false;
    return true;
  }

  #atFirstOp(segment: SegmentState, firstOp: number, parent: Uint8Array | null): void {
    if (this.#expected === null) {
      this.#begin(firstOp, parent);
      return;
    }
    this.#resolveDamage(firstOp);
    if (firstOp > this.#expected) this.#gap(segment, firstOp);
  }

  /** Ops expected..op-1 have no bytes at all. */
  #gap(segment: SegmentState, op: number): void {
    assert(this.#expected !== null, "gap after a first op");
    for (let missing = this.#expected; missing < op; missing++) {
      this.#fault({ op: missing, kind: "gap", path: segment.path, offset: -1, detail: `op ${missing} is missing: the log skips from op ${this.#expected - 1} to op ${op}` }, segment.number, -1);
    }
    this.#expected = op;
    this.#previous = null;
  }

  /** Damaged bytes end where a valid entry of `op` starts: name the ops they held. */
  #resolveDamage(op: number): void {
    const damage = this.#damage;
    if (damage === null) return;
    this.#damage = null;
    const first = damage.op ?? op;
    if (first >= op) {
      this.otherFaults.push({ op: -1, kind: "garbage", path: damage.segment.path, offset: damage.offset, detail: `unreadable bytes before op ${op}: ${damage.detail}` });
      return;
    }
    for (let bad = first; bad < op; bad++) {
      const known = bad === first;
      this.#fault({
        op: bad,
        kind: damage.kind,
        path: damage.segment.path,
        offset: known ? damage.offset : -1,
        detail: known ? damage.detail : `op ${bad} lies in unreadable bytes after ${damage.segment.path}:${damage.offset}`,
      }, damage.segment.number, -1);
    }
    this.#expected = op;
    this.#previous = null;
  }

  #accept(segment: SegmentState, header: EntryHeader, offset: number, size: number, bodyOk: boolean): void {
    this.#begin(header.op);
    this.#resolveDamage(header.op);
    if (header.op > this.#expected!) this.#gap(segment, header.op);
    let kind: FaultKind = bodyOk ? "none" : "body";
    const previous = this.#previous;
    if (previous !== null && !chainsAfter(previous, header)) {
      if (kind === "none") kind = "chain";
      if (previous.op >= this.index.opMin && this.index.get(previous.op).fault === "none") {
        this.#fault({ op: previous.op, kind: "chain", path: segment.path, offset: this.index.get(previous.op).offset, detail: `op ${header.op} does not chain after it` }, segment.number, -1);
      }
    }
    if (kind === "none") this.index.pushValid(segment.number, offset, size);
    else this.index.push({ segment: segment.number, offset, size, fault: kind });
    if (kind !== "none") {
      const detail = kind === "body" ? `body of op ${header.op} fails its checksum` : `op ${header.op} does not chain after op ${header.op - 1}`;
      this.opFaults.set(header.op, { op: header.op, kind, path: segment.path, offset, detail });
    }
    this.#previous = this.#keep(header);
    this.#expected = header.op + 1;
  }

  /**
   * The previous entry as the chain check needs it (op and checksum), in memory of the
   * scan's own: `header` is a view into a chunk buffer that the reader will reuse. Two
   * records in turn, so the one being replaced is never the one being written.
   */
  #keep(header: EntryHeader): EntryHeader {
    const record = this.#kept[this.#keptNext]!;
    this.#keptNext ^= 1;
    record.checksum.set(header.checksum);
    record.op = header.op;
    return record;
  }

  /**
   * Bytes at `offset` are not a valid entry: look for the next valid entry header of this
   * cluster in the segment (cheap pre-filter on version, reserved and cluster bytes, then
   * the checksum). Returns where scanning continues.
   */
  async #resync(reader: SegmentReader, segment: SegmentState, offset: number, kind: "header" | "body", detail: string): Promise<number> {
    if (this.#damage === null) this.#damage = { op: this.#expected, segment, offset, kind, detail };
    const cluster = this.#options.cluster;
    let position = offset + 1;
    // (bytes is re-read per window; `cluster[0]` is a cheap pre-filter before the checksum.)
    while (position + entryHeaderSize <= reader.fileSize) {
      const { bytes, start } = await reader.window(position);
      if (bytes.length < entryHeaderSize) {
        // A header could straddle this chunk and the next: look at those bytes on their own.
        const straddle = await reader.view(position, entryHeaderSize);
        if (straddle !== null && this.#candidate(straddle)) return position;
        position++;
        continue;
      }
      const limit = bytes.length - entryHeaderSize;
      for (let at = 0; at <= limit; at++) {
        if (bytes[at + 118] !== entryFormatVersion || bytes[at + 127] !== 0 || bytes[at + 48] !== cluster[0]) continue;
        if (this.#candidate(bytes.subarray(at, at + entryHeaderSize))) return start + at;
      }
      position = start + limit + 1;
    }
    return reader.fileSize;
  }

  /** True when `bytes` are a valid entry header of this cluster that the scan could accept next. */
  #candidate(bytes: Uint8Array): boolean {
    if (!checksumEqual(bytes.subarray(48, 64), this.#options.cluster) || verifyHeader(bytes) !== null) return false;
    return this.#plausible(decodeHeader(bytes));
  }

  async #finish(): Promise<void> {
    const damage = this.#damage;
    const commit = this.#options.commit;
    const last = this.segments[this.segments.length - 1];
    if (damage !== null) {
      this.#damage = null;
      const first = damage.op ?? this.index.opMax + 1;
      if (damage.segment === last && first > commit) {
        await this.#tear(damage.segment, damage.offset, damage.segment.size - damage.offset);
      } else {
        this.#damage = damage;
        this.#resolveDamage(Math.max(first, commit) + 1);
      }
    }
    // A checkpoint past the journal's end came by state transfer: nothing after it was ever
    // written here (the journal restarts after the checkpoint on the first append), so the
    // ops up to the commit are absent, not faulty.
    const checkpointPastEnd = (this.#options.checkpointOp ?? 0) > this.index.opMax;
    if (this.tornTail === null && this.index.count > 0 && this.index.opMax < commit && last !== undefined && !checkpointPastEnd) {
      for (let op = this.index.opMax + 1; op <= commit; op++) {
        this.#fault({ op, kind: "missing", path: last.path, offset: -1, detail: `op ${op} is committed but the journal ends at op ${this.index.opMax}` }, last.number, -1);
      }
    }
  }

  async #tear(segment: SegmentState, offset: number, bytes: number): Promise<void> {
    this.tornTail = { path: segment.path, offset, bytes };
    segment.size = offset;
    if (this.#options.readOnly) return;
    if (offset === 0 || (offset <= segmentHeaderSize && segment.firstOp < 0)) {
      // Nothing of this segment survived: remove it rather than keep a headerless file.
      await segment.file.truncate(0);
      return;
    }
    await segment.file.truncate(offset);
  }

  /** Reports the bytes verified so far: earlier segments plus `position` in this one. */
  #progress(position: number): void {
    const progress = this.#options.progress;
    if (progress === undefined) return;
    // (Not the bytes read: the read-ahead runs up to a chunk in front of the scan.)
    progress(Math.min(this.bytesScanned + position, this.#bytesTotal), this.#bytesTotal);
  }
}
