/**
 * The checkpoint blob the replica persists and transfers: the op it covers, that op's
 * entry header (the anchor the log after it chains from), the state machine's snapshot and
 * the client table, as one CBOR map. Its checksum identifies it in state transfer.
 * @module
 */
import { decode as cborDecode } from "cborg";
import { entryHeaderSize, verifyHeader } from "../codec/entry_header.ts";
import { assert, assertCount } from "../assert.ts";
import { concatBytes } from "../codec/bytes.ts";

/** Format of the checkpoint blob. */
export const checkpointFormatVersion = 1;

/** The parts of a checkpoint. */
export interface CheckpointParts {
  readonly op: number;
  /** Entry header at `op` (the root entry's header for op 0). */
  readonly header: Uint8Array;
  readonly state: Uint8Array;
  readonly clients: Uint8Array;
}

/** A checkpoint blob that cannot be used (corrupt, foreign format). */
export class CheckpointError extends Error {
  override readonly name = "CheckpointError";
}

/**
 * A checkpoint blob as the pieces it is made of, in order: the state image is one of them,
 * never copied into a buffer of the blob's size (an 18 MB state cost 10–15 ms per copy into
 * fresh memory, on every replica at the same op). Storage writes the pieces with one
 * gathered write; state transfer reads ranges across them ({@link checkpointRange}).
 */
export type CheckpointImage = readonly Uint8Array[];

/** Encodes the parts as the pieces of one blob (see {@link CheckpointImage}). */
export function encodeCheckpointImage(parts: CheckpointParts): CheckpointImage {
  assertCount(parts.op, "checkpoint op");
  assert(parts.header.length === entryHeaderSize, "checkpoint anchor is one entry header");
  // The bytes cborg writes for { version, op, header, state, clients } (its canonical key
  // order: shorter keys first, then bytewise), assembled by hand so the state image, which
  // can be tens of megabytes, is one piece of its own.
  const head = (major: number, n: number): number[] => {
    if (n < 24) return [major | n];
    if (n < 0x100) return [major | 24, n];
    if (n < 0x1_0000) return [major | 25, n >>> 8, n & 0xff];
    if (n < 0x1_0000_0000) return [major | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
    const high = Math.floor(n / 0x1_0000_0000);
    const low = n >>> 0;
    return [major | 27, high >>> 24, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff, low >>> 24, (low >>> 16) & 0xff, (low >>> 8) & 0xff, low & 0xff];
  };
  const key = (name: string): number[] => [0x60 | name.length, ...Array.from(name, (c) => c.charCodeAt(0))];
  return [
    Uint8Array.from([0xa5, ...key("op"), ...head(0x00, parts.op), ...key("state"), ...head(0x40, parts.state.length)]),
    parts.state,
    Uint8Array.from([...key("header"), ...head(0x40, parts.header.length)]),
    parts.header,
    Uint8Array.from([...key("clients"), ...head(0x40, parts.clients.length)]),
    parts.clients,
    Uint8Array.from([...key("version"), ...head(0x00, checkpointFormatVersion)]),
  ];
}

/** Encodes the parts as one blob: the pieces of {@link encodeCheckpointImage}, joined. */
export function encodeCheckpoint(parts: CheckpointParts): Uint8Array {
  return concatBytes(encodeCheckpointImage(parts));
}

/** Bytes in a checkpoint image. */
export function checkpointSize(image: CheckpointImage): number {
  let size = 0;
  for (const piece of image) size += piece.length;
  return size;
}

/**
 * Bytes `[offset, offset + length)` of an image (clipped at its end): a view when the range
 * lies in one piece, else a copy of the range alone.
 */
export function checkpointRange(image: CheckpointImage, offset: number, length: number): Uint8Array {
  assertCount(offset, "checkpoint range offset");
  assertCount(length, "checkpoint range length");
  const end = Math.min(offset + length, checkpointSize(image));
  if (end <= offset) return new Uint8Array(0);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const piece of image) {
    const from = Math.max(offset, at);
    const to = Math.min(end, at + piece.length);
    if (from < to) out.push(piece.subarray(from - at, to - at));
    at += piece.length;
    if (at >= end) break;
  }
  return out.length === 1 ? out[0]! : concatBytes(out);
}

/** Decodes a blob from {@link encodeCheckpoint}; throws {@link CheckpointError} when malformed. */
export function decodeCheckpoint(bytes: Uint8Array): CheckpointParts {
  let value: Record<string, unknown>;
  try {
    value = cborDecode(bytes) as Record<string, unknown>;
  } catch (error) {
    throw new CheckpointError(`checkpoint is not CBOR: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null) throw new CheckpointError("checkpoint is not a map");
  if (value.version !== checkpointFormatVersion) throw new CheckpointError(`checkpoint version ${String(value.version)}`);
  const { op, header, state, clients } = value;
  if (typeof op !== "number" || !Number.isSafeInteger(op) || op < 0) throw new CheckpointError("checkpoint op");
  if (!(header instanceof Uint8Array) || verifyHeader(header) !== null) throw new CheckpointError("checkpoint anchor header");
  if (!(state instanceof Uint8Array) || !(clients instanceof Uint8Array)) throw new CheckpointError("checkpoint parts");
  return { op, header, state, clients };
}
