/**
 * A replica's data dir: formatting one, and opening one (identity check, superblock,
 * journal recovery). Layout:
 *
 *     DIR/identity                       64 bytes, written once by format (last: its presence
 *                                        means the format finished)
 *     DIR/superblock                     4 copies × 512 bytes (see superblock.ts)
 *     DIR/journal/NNNNNNNNNNNNNNNN.segment  segment files (see segment.ts)
 *
 * Identity file, little-endian:
 *
 * | offset | size | field        | meaning                                  |
 * |-------:|-----:|--------------|------------------------------------------|
 * |      0 |   16 | checksum     | checksum of bytes 16..64                 |
 * |     16 |    8 | magic        | ASCII "CHRONON\n"                        |
 * |     24 |    4 | version      | data dir format version                  |
 * |     28 |    4 | replica      | replica index                            |
 * |     32 |    4 | replicaCount | replicas in the cluster                  |
 * |     36 |    4 | reserved     | zero                                     |
 * |     40 |   16 | cluster      | 128-bit cluster id                       |
 * |     56 |    8 | reserved     | zero                                     |
 *
 * Opening checks everything that could make it write into the wrong place BEFORE anything
 * is written: a foreign or newer data dir is refused with nothing changed.
 * @module
 */
import { checksum, checksumEqual } from "../codec/checksum.ts";
import { useNativeChecksum } from "./native_checksum.ts";
import { assert } from "../assert.ts";
import type { Disk } from "./disk.ts";
import { DiskError } from "./disk.ts";
import {
  AlreadyFormattedError, ClusterMismatchError, DataDirError, FormatVersionError, NotFormattedError,
} from "./errors.ts";
import { formatClusterId } from "./cluster_id.ts";
import { Journal } from "./journal.ts";
import type { JournalOptions } from "./journal.ts";
import type { RecoveryResult } from "./recovery.ts";
import { Superblock } from "./superblock.ts";
import type { SuperblockReport } from "./superblock.ts";
import { encodeSegmentHeader, segmentName } from "./segment.ts";
import { rootEntry } from "../codec/entry_header.ts";

/** The data dir format this code writes and reads. */
export const dataDirFormatVersion = 1;
/** Size of the identity file. */
export const identitySize = 64;
/** Most replicas a cluster may have. */
export const replicaCountMax = 16;

const magic = new TextEncoder().encode("CHRONON\n");

/** Who a data dir belongs to. */
export interface Identity {
  readonly cluster: Uint8Array;
  readonly replica: number;
  readonly replicaCount: number;
}

/** Encodes the identity file. */
export function encodeIdentity(identity: Identity): Uint8Array {
  assert(identity.cluster.length === 16, "cluster must be 16 bytes");
  const bytes = new Uint8Array(identitySize);
  const view = new DataView(bytes.buffer);
  bytes.set(magic, 16);
  view.setUint32(24, dataDirFormatVersion, true);
  view.setUint32(28, identity.replica, true);
  view.setUint32(32, identity.replicaCount, true);
  bytes.set(identity.cluster, 40);
  bytes.set(checksum(bytes.subarray(16)), 0);
  return bytes;
}

function decodeIdentity(path: string, bytes: Uint8Array): Identity {
  if (bytes.length < 24 || !checksumEqual(bytes.subarray(16, 24), magic)) {
    throw new DataDirError(path, "not a chronon identity file (bad magic): this is not a chronon data dir");
  }
  if (bytes.length !== identitySize) throw new DataDirError(path, `identity file is ${bytes.length} bytes, expected ${identitySize}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, identitySize);
  if (!checksumEqual(checksum(bytes.subarray(16)), bytes.subarray(0, 16))) {
    throw new DataDirError(path, "identity file fails its checksum (corrupt)");
  }
  const version = view.getUint32(24, true);
  if (version > dataDirFormatVersion) {
    throw new FormatVersionError(path, `data dir format version ${version} is newer than ${dataDirFormatVersion}, which this chronon reads; upgrade chronon`);
  }
  if (version !== dataDirFormatVersion) throw new DataDirError(path, `unknown data dir format version ${version}`);
  return { replica: view.getUint32(28, true), replicaCount: view.getUint32(32, true), cluster: bytes.slice(40, 56) };
}

/** Creates a data dir at `path`; refuses when anything is already there. */
export async function formatDataDir(disk: Disk, path: string, identity: Identity): Promise<void> {
  if (!Number.isInteger(identity.replicaCount) || identity.replicaCount < 1 || identity.replicaCount > replicaCountMax) {
    throw new RangeError(`replica count must be 1..${replicaCountMax}, got ${identity.replicaCount}`);
  }
  if (!Number.isInteger(identity.replica) || identity.replica < 0 || identity.replica >= identity.replicaCount) {
    throw new RangeError(`replica index must be 0..${identity.replicaCount - 1}, got ${identity.replica}`);
  }
  if (await disk.exists(path)) {
    let names: string[];
    try {
      names = await disk.list(path);
    } catch {
      throw new AlreadyFormattedError(path, "exists and is not a directory; refusing to overwrite it");
    }
    if (names.includes("identity")) throw new AlreadyFormattedError(path, "is already a chronon data dir; refusing to overwrite it");
    if (names.length > 0) throw new AlreadyFormattedError(path, `is not empty (${names.slice(0, 3).join(", ")}…); refusing to format it`);
  }
  await disk.mkdir(`${path}/journal`);
  const superblock = await Superblock.create(disk, `${path}/superblock`, {
    cluster: identity.cluster,
    replica: identity.replica,
    replicaCount: identity.replicaCount,
    view: 0,
    logView: 0,
    commit: 0,
    checkpointOp: 0,
    checkpointChecksum: new Uint8Array(16),
  });
  await superblock.close();
  const segment = await disk.open(`${path}/journal/${segmentName(1)}`, { create: true, direct: true });
  const parent = rootEntry(identity.cluster).subarray(0, 16);
  await segment.write(0, [encodeSegmentHeader({ cluster: identity.cluster, segment: 1, firstOp: 1, parent })], { sync: true });
  await segment.close();
  await disk.syncDirectory(`${path}/journal`);
  await disk.syncDirectory(path);
  const file = await disk.open(`${path}/identity`, { create: true });
  await file.write(0, [encodeIdentity(identity)], { sync: true });
  await file.close();
  await disk.syncDirectory(path);
}

/** Options for {@link openDataDir}. */
export interface OpenOptions extends Omit<JournalOptions, "cluster" | "commit"> {
  /** When given, the data dir must belong to this cluster. */
  readonly cluster?: Uint8Array;
}

/** An open data dir. */
export interface DataDir {
  readonly path: string;
  readonly identity: Identity;
  readonly superblock: Superblock;
  readonly superblockReport: SuperblockReport;
  readonly journal: Journal;
  readonly recovery: RecoveryResult;
  /** Closes the journal and the superblock. */
  close(): Promise<void>;
}

/** Reads the identity of the data dir at `path`, with the checks described in the module doc. */
export async function readIdentity(disk: Disk, path: string): Promise<Identity> {
  if (!(await disk.exists(path))) throw new NotFormattedError(path, "no data dir here; create one with `chronon format`");
  let names: string[];
  try {
    names = await disk.list(path);
  } catch (error) {
    if (error instanceof DiskError && error.code === "ENOTDIR") throw new DataDirError(path, "is a file, not a chronon data dir");
    throw error;
  }
  if (!names.includes("identity")) {
    if (names.length === 0) throw new NotFormattedError(path, "empty directory; create a data dir with `chronon format`");
    if (names.every((n) => n === "superblock" || n === "journal")) {
      throw new NotFormattedError(path, "a format did not finish (no identity file); remove the directory and format again");
    }
    throw new DataDirError(path, `not a chronon data dir (no identity file; holds ${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""})`);
  }
  const file = await disk.open(`${path}/identity`, { create: false });
  try {
    return decodeIdentity(`${path}/identity`, await file.read(0, identitySize + 1));
  } finally {
    await file.close();
  }
}

/**
 * Opens a data dir: identity, superblock (best copy), journal recovery. With
 * `options.readOnly` nothing is written (a torn tail is reported, not truncated).
 */
export async function openDataDir(disk: Disk, path: string, options: OpenOptions = {}): Promise<DataDir> {
  await useNativeChecksum(); // recovery hashes the whole journal: the fastest SHA-256 here
  const identity = await readIdentity(disk, path);
  if (options.cluster !== undefined && !checksumEqual(options.cluster, identity.cluster)) {
    throw new ClusterMismatchError(path, `belongs to cluster ${formatClusterId(identity.cluster)}, not ${formatClusterId(options.cluster)}`);
  }
  const { superblock, report } = await Superblock.open(disk, `${path}/superblock`);
  try {
    const state = superblock.state;
    if (!checksumEqual(state.cluster, identity.cluster) || state.replica !== identity.replica || state.replicaCount !== identity.replicaCount) {
      throw new DataDirError(`${path}/superblock`, "superblock does not match the identity file (cluster or replica differ)");
    }
    const { journal, recovery } = await Journal.open(disk, `${path}/journal`, {
      ...options,
      cluster: identity.cluster,
      commit: () => superblock.state.commit,
      checkpointOp: () => superblock.state.checkpointOp,
    });
    return {
      path,
      identity,
      superblock,
      superblockReport: report,
      journal,
      recovery,
      async close() {
        await journal.close();
        await superblock.close();
      },
    };
  } catch (error) {
    await superblock.close();
    throw error;
  }
}
