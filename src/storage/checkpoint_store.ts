/**
 * Checkpoint files: a replica's application state, outbox and client table at one op,
 * written atomically next to the journal.
 *
 * Each checkpoint is a new file `checkpoint-<op, 16 digits>.chk`, never renamed or
 * rewritten: it is written, synced, its directory entry synced, and only then is the
 * checkpoint before the previous one removed. A crash at any point leaves the latest
 * complete checkpoint (and the one before it) intact; a torn or corrupt file is named and
 * skipped in favour of the older one.
 *
 * File layout (little-endian):
 *
 * | offset | size | field                                        |
 * |-------:|-----:|----------------------------------------------|
 * |      0 |    8 | magic "CHRNCHK1"                             |
 * |      8 |   16 | checksum of bytes 24..64 (the header)        |
 * |     24 |   16 | cluster id                                   |
 * |     40 |    8 | op covered (u64)                             |
 * |     48 |    8 | body size (u64)                              |
 * |     56 |    4 | format version                               |
 * |     60 |    4 | reserved, zero                               |
 * |     64 |   16 | checksum of the body                         |
 * |     80 |    … | body                                         |
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { assert, assertCount } from "../assert.ts";
import { checksum, checksumEqual, checksumSize } from "../codec/checksum.ts";
import type { Disk } from "./disk.ts";

const magic = new TextEncoder().encode("CHRNCHK1");
const headerSize = 80;
/** Checkpoint file format version written by this code. */
export const checkpointFormatVersion = 1;
/** Largest checkpoint body accepted (1 GiB): bounds the memory a restore can demand. */
export const checkpointSizeMax = 1024 * 1024 * 1024;
/** Checkpoints kept on disk: the newest and the one before it, in case the newest is damaged. */
export const checkpointsKept = 2;

const namePattern = /^checkpoint-(\d{16})\.chk$/;

/** A checkpoint read back from disk. */
export interface StoredCheckpoint {
  readonly op: number;
  readonly bytes: Uint8Array;
  readonly path: string;
}

/** A checkpoint file that could not be trusted, and why. */
export interface CheckpointFault {
  readonly path: string;
  readonly reason: string;
}

/** The name of the file for a checkpoint at `op`. */
export function checkpointFileName(op: number): string {
  assertCount(op, "checkpoint op");
  return `checkpoint-${String(op).padStart(16, "0")}.chk`;
}

/** Bytes hashed per event-loop turn by {@link checksumInSlices}. */
const hashSliceSize = 1024 * 1024;

/**
 * `checksum(bytes)` (of the pieces joined, when given pieces), hashed a megabyte per event-loop turn: a checkpoint of tens of
 * megabytes would otherwise hold the replica for tens of milliseconds (about 20 ms for
 * 18 MB here) while it has requests to answer.
 */
export async function checksumInSlices(bytes: Uint8Array | readonly Uint8Array[]): Promise<Uint8Array> {
  const pieces = bytes instanceof Uint8Array ? [bytes] : bytes;
  let size = 0;
  for (const piece of pieces) size += piece.length;
  if (size <= hashSliceSize) return checksum(...pieces);
  const hash = createHash("sha256");
  let sinceTurn = 0;
  for (const piece of pieces) {
    for (let at = 0; at < piece.length; at += hashSliceSize) {
      const slice = piece.subarray(at, Math.min(piece.length, at + hashSliceSize));
      hash.update(slice);
      sinceTurn += slice.length;
      if (sinceTurn >= hashSliceSize) {
        sinceTurn = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
  return new Uint8Array(hash.digest().subarray(0, checksumSize));
}

function encodeHeader(cluster: Uint8Array, op: number, bodySize: number, bodyChecksum: Uint8Array): Uint8Array {
  assert(cluster.length === 16, "cluster id is 16 bytes");
  const header = new Uint8Array(headerSize);
  const view = new DataView(header.buffer);
  header.set(magic, 0);
  header.set(cluster, 24);
  view.setUint32(40, op >>> 0, true);
  view.setUint32(44, Math.floor(op / 2 ** 32), true);
  view.setUint32(48, bodySize >>> 0, true);
  view.setUint32(52, Math.floor(bodySize / 2 ** 32), true);
  view.setUint32(56, checkpointFormatVersion, true);
  header.set(bodyChecksum, 64);
  header.set(checksum(header.subarray(24, 64)), 8);
  return header;
}

/** Reads and writes checkpoint files in one directory of a data dir. */
export class CheckpointStore {
  readonly #disk: Disk;
  readonly #directory: string;
  readonly #cluster: Uint8Array;

  /** A store for `cluster`'s checkpoints in `directory` on `disk`. */
  constructor(disk: Disk, directory: string, cluster: Uint8Array) {
    assert(cluster.length === 16, "cluster id is 16 bytes");
    this.#disk = disk;
    this.#directory = directory;
    this.#cluster = cluster;
  }

  /** Ops of the checkpoint files present, oldest first (valid or not). */
  async list(): Promise<number[]> {
    if (!(await this.#disk.exists(this.#directory))) return [];
    const ops: number[] = [];
    for (const name of await this.#disk.list(this.#directory)) {
      const match = namePattern.exec(name);
      if (match !== null) ops.push(Number(match[1]));
    }
    return ops.sort((a, b) => a - b);
  }

  /**
   * Writes the checkpoint for `op` (one blob, or its pieces in order) durably, then removes all but the newest
   * {@link checkpointsKept}. Resolves once the new file and its directory entry are synced.
   */
  async write(op: number, body: Uint8Array | readonly Uint8Array[]): Promise<string> {
    assertCount(op, "checkpoint op");
    const pieces = body instanceof Uint8Array ? [body] : body;
    let size = 0;
    for (const piece of pieces) size += piece.length;
    assert(size <= checkpointSizeMax, `checkpoint of ${size} bytes exceeds ${checkpointSizeMax}`);
    await this.#disk.mkdir(this.#directory);
    const path = join(this.#directory, checkpointFileName(op));
    const file = await this.#disk.open(path, { create: true });
    try {
      await file.truncate(0);
      await file.write(0, [encodeHeader(this.#cluster, op, size, await checksumInSlices(pieces)), ...pieces], { sync: true });
    } finally {
      await file.close();
    }
    await this.#disk.syncDirectory(this.#directory);
    const ops = await this.list();
    const stale = ops.filter((other) => other < op).slice(0, Math.max(0, ops.length - checkpointsKept));
    for (const old of stale) await this.#disk.remove(join(this.#directory, checkpointFileName(old)));
    if (stale.length > 0) await this.#disk.syncDirectory(this.#directory);
    return path;
  }

  /** Reads and verifies the checkpoint at `op`; returns the reason it cannot be trusted instead. */
  async read(op: number): Promise<StoredCheckpoint | CheckpointFault> {
    const path = join(this.#directory, checkpointFileName(op));
    const file = await this.#disk.open(path, { create: false });
    try {
      const header = await file.read(0, headerSize);
      if (header.length < headerSize) return { path, reason: "torn: shorter than its header" };
      if (!checksumEqual(header.subarray(0, 8), magic)) return { path, reason: "not a chronon checkpoint (bad magic)" };
      if (!checksumEqual(checksum(header.subarray(24, 64)), header.subarray(8, 24))) {
        return { path, reason: "header checksum mismatch" };
      }
      const view = new DataView(header.buffer, header.byteOffset, headerSize);
      const version = view.getUint32(56, true);
      if (version !== checkpointFormatVersion) return { path, reason: `format version ${version}, this build reads ${checkpointFormatVersion}` };
      if (!checksumEqual(header.subarray(24, 40), this.#cluster)) return { path, reason: "belongs to another cluster" };
      const headerOp = view.getUint32(40, true) + view.getUint32(44, true) * 2 ** 32;
      if (headerOp !== op) return { path, reason: `header names op ${headerOp}, file name op ${op}` };
      const size = view.getUint32(48, true) + view.getUint32(52, true) * 2 ** 32;
      if (size > checkpointSizeMax) return { path, reason: `body size ${size} exceeds ${checkpointSizeMax}` };
      const body = await file.read(headerSize, size);
      if (body.length < size) return { path, reason: `torn: body has ${body.length} of ${size} bytes` };
      if (!checksumEqual(checksum(body), header.subarray(64, 80))) return { path, reason: "body checksum mismatch" };
      return { op, bytes: body, path };
    } finally {
      await file.close();
    }
  }

  /**
   * The newest checkpoint that verifies, with the faults of any newer ones that did not;
   * `latest` is null when there is none.
   */
  async latest(): Promise<{ latest: StoredCheckpoint | null; faults: CheckpointFault[] }> {
    const faults: CheckpointFault[] = [];
    const ops = await this.list();
    for (let i = ops.length - 1; i >= 0; i--) {
      const result = await this.read(ops[i]!);
      if ("bytes" in result) return { latest: result, faults };
      faults.push(result);
    }
    return { latest: null, faults };
  }
}
