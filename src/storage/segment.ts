/**
 * Segment files: the journal is a sequence of append-only files `journal/NNNNNNNNNNNNNNNN.segment`
 * (segment number, 16 decimal digits), each a 128-byte segment header followed by entries
 * (128-byte entry header + body) back to back, in op order.
 *
 * Segment header, little-endian:
 *
 * | offset | size | field         | meaning                                          |
 * |-------:|-----:|---------------|--------------------------------------------------|
 * |      0 |   16 | checksum      | checksum of bytes 16..128                        |
 * |     16 |    8 | magic         | ASCII "CHRNSEG\n"                                |
 * |     24 |    4 | version       | segment format version ({@link segmentFormatVersion}) |
 * |     28 |    4 | reserved      | zero                                             |
 * |     32 |   16 | cluster       | 128-bit cluster id                               |
 * |     48 |    8 | segment       | segment number (u64), equal to the file name     |
 * |     56 |    8 | firstOp       | op of the first entry the segment holds          |
 * |     64 |   16 | parent        | checksum of the header of op firstOp − 1 (the    |
 * |        |      |               | root entry's for op 1); zero when not recorded   |
 * |     80 |    4 | flags         | bit 0 "base": the journal starts here, every     |
 * |        |      |               | lower-numbered segment is void (see journal.ts   |
 * |        |      |               | resetAfterCheckpoint); other bits zero           |
 * |     84 |   44 | reserved      | zero                                             |
 *
 * Version 1 (written before `parent` and `flags` existed) had zero from offset 64 on; it
 * is still read, as a segment with no recorded parent and no flags.
 * @module
 */
import { checksum, checksumEqual } from "../codec/checksum.ts";
import { assert, assertCount } from "../assert.ts";

/** Size of the segment header in bytes. */
export const segmentHeaderSize = 128;
/** The segment format this code writes (and the newest it reads). */
export const segmentFormatVersion = 2;
/** The oldest segment format this code reads (1: no parent, no flags). */
export const segmentFormatVersionMin = 1;

/** Flag bit: the journal starts at this segment; lower-numbered segments are void. */
const flagBase = 1;
/** Default size past which the journal starts a new segment (64 MiB). */
export const segmentSizeLimitDefault = 64 * 1024 * 1024;

const magic = new TextEncoder().encode("CHRNSEG\n");

/** The fields of a segment header. */
export interface SegmentHeader {
  readonly cluster: Uint8Array;
  readonly segment: number;
  readonly firstOp: number;
  /** Checksum of op firstOp − 1's header, or null when not recorded (version 1, or unknown). */
  readonly parent: Uint8Array | null;
  /** True when the journal starts here and every lower-numbered segment is void. */
  readonly base: boolean;
  readonly version: number;
}

/** What {@link encodeSegmentHeader} takes: `parent` and `base` may be left out. */
export interface SegmentHeaderInit {
  readonly cluster: Uint8Array;
  readonly segment: number;
  readonly firstOp: number;
  /** Checksum of op firstOp − 1's header; omitted or null: not recorded (zero). */
  readonly parent?: Uint8Array | null;
  readonly base?: boolean;
}

/** Why a segment header cannot be used. "version" and "cluster" are operating errors. */
export type SegmentHeaderProblem = "short" | "checksum" | "magic" | "reserved" | "version";

/** File name of segment `n`. */
export function segmentName(n: number): string {
  assertCount(n, "segment number");
  return `${String(n).padStart(16, "0")}.segment`;
}

/** The segment number a file name encodes, or null when the name is not a segment's. */
export function parseSegmentName(name: string): number | null {
  const match = /^(\d{16})\.segment$/.exec(name);
  return match === null ? null : Number(match[1]);
}

/** Encodes a segment header. */
export function encodeSegmentHeader(header: SegmentHeaderInit): Uint8Array {
  assert(header.cluster.length === 16, "cluster must be 16 bytes");
  assertCount(header.segment, "segment number");
  assertCount(header.firstOp, "first op");
  const parent = header.parent ?? null;
  assert(parent === null || parent.length >= 16, "parent checksum must be 16 bytes");
  const bytes = new Uint8Array(segmentHeaderSize);
  const view = new DataView(bytes.buffer);
  bytes.set(magic, 16);
  view.setUint32(24, segmentFormatVersion, true);
  bytes.set(header.cluster, 32);
  view.setBigUint64(48, BigInt(header.segment), true);
  view.setBigUint64(56, BigInt(header.firstOp), true);
  if (parent !== null) bytes.set(parent.subarray(0, 16), 64);
  view.setUint32(80, header.base === true ? flagBase : 0, true);
  bytes.set(checksum(bytes.subarray(16)), 0);
  return bytes;
}

/** Decodes a segment header, or names what is wrong with it. */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | SegmentHeaderProblem {
  if (bytes.length < segmentHeaderSize) return "short";
  const header = bytes.subarray(0, segmentHeaderSize);
  if (!checksumEqual(checksum(header.subarray(16)), header.subarray(0, 16))) return "checksum";
  if (!checksumEqual(header.subarray(16, 24), magic)) return "magic";
  const view = new DataView(header.buffer, header.byteOffset, segmentHeaderSize);
  const version = view.getUint32(24, true);
  if (version < segmentFormatVersionMin || version > segmentFormatVersion) return "version";
  if (view.getUint32(28, true) !== 0) return "reserved";
  const reservedFrom = version === 1 ? 64 : 84;
  for (let i = reservedFrom; i < segmentHeaderSize; i++) if (header[i] !== 0) return "reserved";
  const flags = version === 1 ? 0 : view.getUint32(80, true);
  if ((flags & ~flagBase) !== 0) return "reserved";
  const segment = Number(view.getBigUint64(48, true));
  const firstOp = Number(view.getBigUint64(56, true));
  if (!Number.isSafeInteger(segment) || !Number.isSafeInteger(firstOp)) return "reserved";
  const parentBytes = header.subarray(64, 80);
  const parent = parentBytes.some((b) => b !== 0) ? parentBytes.slice() : null;
  if ((flags & flagBase) !== 0 && (parent === null || firstOp < 1)) return "reserved"; // a base names where it chains from
  return { cluster: header.slice(32, 48), segment, firstOp, parent, base: (flags & flagBase) !== 0, version };
}

/** The version field of a segment header whose checksum holds (for a clear version error). */
export function segmentHeaderVersion(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, segmentHeaderSize).getUint32(24, true);
}
