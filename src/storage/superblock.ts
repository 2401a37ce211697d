/**
 * The superblock: the replica's small durable state (who it is, the view, the commit, the
 * checkpoint), kept as {@link superblockCopyCount} copies in the file `superblock`. Every
 * write bumps a sequence number and writes copies 0-1, syncs, then copies 2-3, syncs: a
 * crash tears at most one half, so at least two copies of either the old or the new state
 * survive. Reading takes the valid copy with the highest sequence; invalid copies are
 * reported and outvoted, never trusted.
 *
 * Copy layout (512 bytes each, copy i at offset i × 512), little-endian:
 *
 * | offset | size | field              | meaning                                        |
 * |-------:|-----:|--------------------|------------------------------------------------|
 * |      0 |   16 | checksum           | checksum of bytes 16..512                      |
 * |     16 |    8 | magic              | ASCII "CHRNSUPR"                               |
 * |     24 |    4 | version            | superblock format version                      |
 * |     28 |    4 | copy               | index of this copy (catches misdirected writes)|
 * |     32 |    8 | sequence           | bumped by every write                          |
 * |     40 |   16 | cluster            | 128-bit cluster id                             |
 * |     56 |    4 | replica            | this replica's index                           |
 * |     60 |    4 | replicaCount       | replicas in the cluster                        |
 * |     64 |    8 | view               | current view                                   |
 * |     72 |    8 | logView            | last view in which the replica's status was normal |
 * |     80 |    8 | commit             | highest committed op                           |
 * |     88 |    8 | checkpointOp       | op covered by the latest checkpoint            |
 * |     96 |   16 | checkpointChecksum | checksum of the latest checkpoint              |
 * |    112 |  400 | reserved           | zero                                           |
 * @module
 */
import { checksum, checksumEqual } from "../codec/checksum.ts";
import { assert, assertCount } from "../assert.ts";
import type { Disk, DiskFile } from "./disk.ts";
import { CorruptSuperblockError, FormatVersionError } from "./errors.ts";

/** Number of copies of the superblock. */
export const superblockCopyCount = 4;
/** Size of one copy in bytes (one sector). */
export const superblockCopySize = 512;
/** The superblock format this code writes and reads. */
export const superblockFormatVersion = 1;

const magic = new TextEncoder().encode("CHRNSUPR");

/** The replica state the superblock holds. */
export interface SuperblockState {
  readonly cluster: Uint8Array;
  readonly replica: number;
  readonly replicaCount: number;
  readonly view: number;
  readonly logView: number;
  readonly commit: number;
  readonly checkpointOp: number;
  readonly checkpointChecksum: Uint8Array;
}

/** Why a copy was not used. */
export type SuperblockCopyProblem = "short" | "checksum" | "magic" | "copy" | "reserved" | "version";

/** What reading the copies found. */
export interface SuperblockReport {
  /** The sequence of the copy chosen. */
  readonly sequence: number;
  /** Copies that were not valid, with why. */
  readonly badCopies: readonly { readonly copy: number; readonly problem: SuperblockCopyProblem }[];
  /** Valid copies with a lower sequence than the chosen one (an interrupted write). */
  readonly staleCopies: readonly number[];
}

function writeU64(view: DataView, offset: number, value: number): void {
  assertCount(value, "superblock field");
  view.setBigUint64(offset, BigInt(value), true);
}

/** Encodes copy `copy` of `state` at `sequence`. */
export function encodeSuperblockCopy(state: SuperblockState, sequence: number, copy: number): Uint8Array {
  assert(state.cluster.length === 16, "cluster must be 16 bytes");
  assert(state.checkpointChecksum.length === 16, "checkpoint checksum must be 16 bytes");
  assert(state.replica < state.replicaCount, "replica index below replica count");
  assert(state.logView <= state.view, "log view at most view");
  assert(state.checkpointOp <= state.commit, "checkpoint at most commit");
  const bytes = new Uint8Array(superblockCopySize);
  const view = new DataView(bytes.buffer);
  bytes.set(magic, 16);
  view.setUint32(24, superblockFormatVersion, true);
  view.setUint32(28, copy, true);
  writeU64(view, 32, sequence);
  bytes.set(state.cluster, 40);
  view.setUint32(56, state.replica, true);
  view.setUint32(60, state.replicaCount, true);
  writeU64(view, 64, state.view);
  writeU64(view, 72, state.logView);
  writeU64(view, 80, state.commit);
  writeU64(view, 88, state.checkpointOp);
  bytes.set(state.checkpointChecksum, 96);
  bytes.set(checksum(bytes.subarray(16)), 0);
  return bytes;
}

/** Decodes copy `copy`, or names what is wrong with it. */
export function decodeSuperblockCopy(
  bytes: Uint8Array,
  copy: number,
): { state: SuperblockState; sequence: number; version: number } | SuperblockCopyProblem {
  if (bytes.length < superblockCopySize) return "short";
  if (!checksumEqual(checksum(bytes.subarray(16, superblockCopySize)), bytes.subarray(0, 16))) return "checksum";
  if (!checksumEqual(bytes.subarray(16, 24), magic)) return "magic";
  const view = new DataView(bytes.buffer, bytes.byteOffset, superblockCopySize);
  const version = view.getUint32(24, true);
  if (view.getUint32(28, true) !== copy) return "copy";
  for (let i = 112; i < superblockCopySize; i++) if (bytes[i] !== 0) return "reserved";
  const u64 = (offset: number) => Number(view.getBigUint64(offset, true));
  const state: SuperblockState = {
    cluster: bytes.slice(40, 56),
    replica: view.getUint32(56, true),
    replicaCount: view.getUint32(60, true),
    view: u64(64),
    logView: u64(72),
    commit: u64(80),
    checkpointOp: u64(88),
    checkpointChecksum: bytes.slice(96, 112),
  };
  const sequence = u64(32);
  for (const n of [sequence, state.view, state.logView, state.commit, state.checkpointOp]) {
    if (!Number.isSafeInteger(n)) return "reserved";
  }
  return { state, sequence, version };
}

/** The superblock of one data dir: the chosen state, and writes of new states. */
export class Superblock {
  /** The current durable state. */
  get state(): SuperblockState {
    return this.#state;
  }
  /** Sequence of the current state. */
  get sequence(): number {
    return this.#sequence;
  }
  readonly #file: DiskFile;
  #state: SuperblockState;
  #sequence: number;
  #writing = false;

  private constructor(file: DiskFile, state: SuperblockState, sequence: number) {
    this.#file = file;
    this.#state = state;
    this.#sequence = sequence;
  }

  /** Creates the superblock file with `state` at sequence 1 (format only). */
  static async create(disk: Disk, path: string, state: SuperblockState): Promise<Superblock> {
    const file = await disk.open(path, { create: true });
    const superblock = new Superblock(file, state, 0);
    await superblock.write(state);
    return superblock;
  }

  /** Reads the copies and picks the valid one with the highest sequence. */
  static async open(disk: Disk, path: string): Promise<{ superblock: Superblock; report: SuperblockReport }> {
    const file = await disk.open(path, { create: false });
    try {
      const bytes = await file.read(0, superblockCopyCount * superblockCopySize);
      const result = chooseSuperblockCopy(path, bytes);
      return { superblock: new Superblock(file, result.state, result.report.sequence), report: result.report };
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /** Durably replaces the state (every copy, in two synced halves). Not re-entrant. */
  async write(state: SuperblockState): Promise<void> {
    assert(!this.#writing, "superblock writes must not overlap");
    assert(state.view >= this.#state.view, "view never goes back");
    assert(state.commit >= this.#state.commit || this.#sequence === 0, "commit never goes back");
    assert(checksumEqual(state.cluster, this.#state.cluster), "cluster never changes");
    this.#writing = true;
    try {
      const sequence = this.#sequence + 1;
      const half = superblockCopyCount / 2;
      const copies: Uint8Array[] = [];
      for (let copy = 0; copy < superblockCopyCount; copy++) copies.push(encodeSuperblockCopy(state, sequence, copy));
      await this.#file.write(0, copies.slice(0, half), { sync: true });
      await this.#file.write(half * superblockCopySize, copies.slice(half), { sync: true });
      this.#state = state;
      this.#sequence = sequence;
    } finally {
      this.#writing = false;
    }
  }

  /** Closes the file. */
  close(): Promise<void> {
    return this.#file.close();
  }
}

/** Picks the valid copy with the highest sequence from the file's bytes (pure, for tests). */
export function chooseSuperblockCopy(
  path: string,
  bytes: Uint8Array,
): { state: SuperblockState; report: SuperblockReport } {
  const badCopies: { copy: number; problem: SuperblockCopyProblem }[] = [];
  const valid: { copy: number; state: SuperblockState; sequence: number }[] = [];
  for (let copy = 0; copy < superblockCopyCount; copy++) {
    const decoded = decodeSuperblockCopy(bytes.subarray(copy * superblockCopySize, (copy + 1) * superblockCopySize), copy);
    if (typeof decoded === "string") {
      badCopies.push({ copy, problem: decoded });
      continue;
    }
    if (decoded.version > superblockFormatVersion) {
      throw new FormatVersionError(path, `superblock format version ${decoded.version} is newer than ${superblockFormatVersion}, which this chronon reads; upgrade chronon`);
    }
    if (decoded.version !== superblockFormatVersion) {
      badCopies.push({ copy, problem: "version" });
      continue;
    }
    valid.push({ copy, state: decoded.state, sequence: decoded.sequence });
  }
  if (valid.length === 0) {
    const problems = badCopies.map((b) => `copy ${b.copy}: ${b.problem}`).join(", ");
    throw new CorruptSuperblockError(path, `no valid superblock copy (${problems}); restore this replica from its peers`);
  }
  let best = valid[0]!;
  for (const candidate of valid) if (candidate.sequence > best.sequence) best = candidate;
  const staleCopies = valid.filter((v) => v.sequence < best.sequence).map((v) => v.copy);
  return { state: best.state, report: { sequence: best.sequence, badCopies, staleCopies } };
}
