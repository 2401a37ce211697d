/**
 * The fixed 128-byte header of a log entry, shared by the journal (on disk), the replica
 * (in prepares) and the network (on the wire). Little-endian throughout.
 *
 * | offset | size | field          | meaning                                                   |
 * |-------:|-----:|----------------|-----------------------------------------------------------|
 * |      0 |   16 | checksum       | checksum of bytes 16..128 of this header                  |
 * |     16 |   16 | checksumBody   | checksum of the body                                      |
 * |     32 |   16 | parent         | checksum (header) of the entry at op - 1: the hash chain  |
 * |     48 |   16 | cluster        | 128-bit cluster id                                        |
 * |     64 |   16 | client         | 128-bit client (session) id; zero for internal operations |
 * |     80 |    8 | op             | position in the log (u64, safe integer)                   |
 * |     88 |    8 | commit         | the primary's commit number when it prepared this entry   |
 * |     96 |    8 | timestamp      | the primary's clock in ms since the epoch, monotonic      |
 * |    104 |    4 | view           | the view in which the primary prepared it                 |
 * |    108 |    4 | request        | the client's request number in its session                |
 * |    112 |    4 | size           | body size in bytes                                        |
 * |    116 |    2 | operation      | what the body is (0..15 reserved for the replica)         |
 * |    118 |    1 | version        | header format version ({@link entryFormatVersion})        |
 * |    119 |    9 | reserved       | zero                                                      |
 *
 * The header checksum covers the body checksum and the parent, so one 16-byte value pins
 * the entry, its body and every entry before it.
 * @module
 */
import { checksum, checksumEqual, checksumMatches, checksumSize } from "./checksum.ts";
import { assert, assertCount } from "../assert.ts";

/** Size of an entry header in bytes. */
export const entryHeaderSize = 128;
/** The header format this code writes and reads. */
export const entryFormatVersion = 1;
/** Largest body an entry may carry (1 MiB): bounds messages, batches and reads. */
export const entryBodySizeMax = 1024 * 1024;

/** A decoded entry header. 128-bit values are 16-byte arrays. */
export interface EntryHeader {
  readonly checksum: Uint8Array;
  readonly checksumBody: Uint8Array;
  readonly parent: Uint8Array;
  readonly cluster: Uint8Array;
  readonly client: Uint8Array;
  readonly op: number;
  readonly commit: number;
  readonly timestamp: number;
  readonly view: number;
  readonly request: number;
  readonly size: number;
  readonly operation: number;
  readonly version: number;
}

/** The fields a writer chooses; the checksums are computed by {@link encodeEntry}. */
export type EntryFields = Omit<EntryHeader, "checksum" | "checksumBody" | "size" | "version">;

/** Why a header could not be trusted. */
export type HeaderProblem =
  | "short"
  | "checksum"
  | "version"
  | "reserved"
  | "size";

const zero16 = new Uint8Array(16);

function writeU64(view: DataView, offset: number, value: number): void {
  assertCount(value, "u64 field");
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

function readU64(view: DataView, offset: number): number {
  const low = view.getUint32(offset, true);
  const high = view.getUint32(offset + 4, true);
  // Values above 2^53 cannot be written by this code; treat them as corruption upstream.
  return high * 0x1_0000_0000 + low;
}

/**
 * Builds the header for `fields` and `body`, computing the body and header checksums.
 * @example
 * const header = encodeEntry({ ...fields, op: 1 }, body); // 128 bytes
 */
export function encodeEntry(fields: EntryFields, body: Uint8Array): Uint8Array {
  assert(body.length <= entryBodySizeMax, `entry body of ${body.length} bytes exceeds ${entryBodySizeMax}`);
  assert(fields.parent.length === checksumSize, "parent must be 16 bytes");
  assert(fields.cluster.length === 16, "cluster must be 16 bytes");
  assert(fields.client.length === 16, "client must be 16 bytes");
  assertCount(fields.view, "view");
  assert(fields.view <= 0xffff_ffff, "view fits u32");
  assert(fields.request >= 0 && fields.request <= 0xffff_ffff, "request fits u32");
  assert(fields.operation >= 0 && fields.operation <= 0xffff, "operation fits u16");
  const bytes = new Uint8Array(entryHeaderSize);
  const view = new DataView(bytes.buffer);
  bytes.set(checksum(body), 16);
  bytes.set(fields.parent, 32);
  bytes.set(fields.cluster, 48);
  bytes.set(fields.client, 64);
  writeU64(view, 80, fields.op);
  writeU64(view, 88, fields.commit);
  writeU64(view, 96, fields.timestamp);
  view.setUint32(104, fields.view, true);
  view.setUint32(108, fields.request, true);
  view.setUint32(112, body.length, true);
  view.setUint16(116, fields.operation, true);
  bytes[118] = entryFormatVersion;
  bytes.set(checksum(bytes.subarray(16)), 0);
  return bytes;
}

/**
 * Checks a header's own integrity (checksum, version, reserved bytes, size bound) without
 * decoding it. Returns null when it can be trusted.
 */
export function verifyHeader(bytes: Uint8Array): HeaderProblem | null {
  if (bytes.length < entryHeaderSize) return "short";
  // (Recovery calls this once per entry: no DataView, and no extra view when `bytes` is
  // exactly the header.)
  const header = bytes.length === entryHeaderSize ? bytes : bytes.subarray(0, entryHeaderSize);
  if (!checksumMatches(header.subarray(16), header, 0)) return "checksum";
  if (header[118] !== entryFormatVersion) return "version";
  for (let i = 119; i < entryHeaderSize; i++) if (header[i] !== 0) return "reserved";
  if (u32(header, 112) > entryBodySizeMax) return "size";
  if (u32(header, 84) > 0x1f_ffff || u32(header, 92) > 0x1f_ffff) return "size";
  if (u32(header, 100) > 0x1f_ffff) return "size";
  return null;
}

/** Little-endian u32 at `at` (without a DataView: this is on recovery's per-entry path). */
function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** Little-endian u64 below 2^53 at `at` (the header's op, commit and timestamp). */
function u64(bytes: Uint8Array, at: number): number {
  return u32(bytes, at + 4) * 0x1_0000_0000 + u32(bytes, at);
}

/** Decodes a header that {@link verifyHeader} accepted. Copies, so the source may be reused. */
export function decodeHeader(bytes: Uint8Array): EntryHeader {
  assert(bytes.length >= entryHeaderSize, "header needs 128 bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset, entryHeaderSize);
  return {
    checksum: bytes.slice(0, 16),
    checksumBody: bytes.slice(16, 32),
    parent: bytes.slice(32, 48),
    cluster: bytes.slice(48, 64),
    client: bytes.slice(64, 80),
    op: readU64(view, 80),
    commit: readU64(view, 88),
    timestamp: readU64(view, 96),
    view: view.getUint32(104, true),
    request: view.getUint32(108, true),
    size: view.getUint32(112, true),
    operation: view.getUint16(116, true),
    version: bytes[118]!,
  };
}

/**
 * Decodes a header that {@link verifyHeader} accepted WITHOUT copying: the 128-bit fields
 * are views into `bytes`, valid only as long as `bytes` is not overwritten. For scans
 * (recovery): five views cost less than five copies, each with its own ArrayBuffer, per
 * entry; the scan copies the little it keeps longer.
 */
export function decodeHeaderView(bytes: Uint8Array): EntryHeader {
  assert(bytes.length >= entryHeaderSize, "header needs 128 bytes");
  return {
    checksum: bytes.subarray(0, 16),
    checksumBody: bytes.subarray(16, 32),
    parent: bytes.subarray(32, 48),
    cluster: bytes.subarray(48, 64),
    client: bytes.subarray(64, 80),
    op: u64(bytes, 80),
    commit: u64(bytes, 88),
    timestamp: u64(bytes, 96),
    view: u32(bytes, 104),
    request: u32(bytes, 108),
    size: u32(bytes, 112),
    operation: bytes[116]! | (bytes[117]! << 8),
    version: bytes[118]!,
  };
}

/**
 * An {@link EntryHeader} over `bytes` whose 128-bit fields are made on each read (a view
 * of `bytes` per access) and whose numbers are decoded once: for headers held long (the
 * replica's log window), where five views per header would be five objects kept alive
 * (and promoted by the garbage collector) for every op in the window. `bytes` must never
 * be written again.
 */
class LazyEntryHeader implements EntryHeader {
  readonly #bytes: Uint8Array;
  readonly op: number;
  readonly commit: number;
  readonly timestamp: number;
  readonly view: number;
  readonly request: number;
  readonly size: number;
  readonly operation: number;
  readonly version: number;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.op = u64(bytes, 80);
    this.commit = u64(bytes, 88);
    this.timestamp = u64(bytes, 96);
    this.view = u32(bytes, 104);
    this.request = u32(bytes, 108);
    this.size = u32(bytes, 112);
    this.operation = bytes[116]! | (bytes[117]! << 8);
    this.version = bytes[118]!;
  }

  get checksum(): Uint8Array {
    return this.#bytes.subarray(0, 16);
  }
  get checksumBody(): Uint8Array {
    return this.#bytes.subarray(16, 32);
  }
  get parent(): Uint8Array {
    return this.#bytes.subarray(32, 48);
  }
  get cluster(): Uint8Array {
    return this.#bytes.subarray(48, 64);
  }
  get client(): Uint8Array {
    return this.#bytes.subarray(64, 80);
  }
}

/**
 * Decodes a header that {@link verifyHeader} accepted without copying and without making
 * its 128-bit fields up front (see {@link LazyEntryHeader}): `bytes` must never be
 * written again. Not a plain object: spread or compare it field by field.
 */
export function decodeHeaderLazy(bytes: Uint8Array): EntryHeader {
  assert(bytes.length >= entryHeaderSize, "header needs 128 bytes");
  return new LazyEntryHeader(bytes);
}

/** True when `body` is the body the header names (size and checksum). */
export function verifyBody(header: EntryHeader, body: Uint8Array): boolean {
  return body.length === header.size && checksumMatches(body, header.checksumBody);
}

/** True when `header` follows `previous` in the hash chain (op + 1 and parent link). */
export function chainsAfter(previous: EntryHeader, header: EntryHeader): boolean {
  return header.op === previous.op + 1 && checksumEqual(header.parent, previous.checksum);
}

/**
 * The root entry (op 0) of a cluster's log: identical on every replica of the cluster, so
 * the chain of op 1 is checkable everywhere. Empty body, parent zero, timestamp 0.
 */
export function rootEntry(cluster: Uint8Array): Uint8Array {
  return encodeEntry(
    { parent: zero16, cluster, client: zero16, op: 0, commit: 0, timestamp: 0, view: 0, request: 0, operation: 0 },
    new Uint8Array(0),
  );
}
