/**
 * The checkpoint blob the replica persists and transfers: the op it covers, that op's
 * entry header (the anchor the log after it chains from), the state machine's snapshot and
 * the client table, as one CBOR map. Its checksum identifies it in state transfer.
 * @module
 */
import { decode as cborDecode, encode as cborEncode } from "cborg";
import { entryHeaderSize, verifyHeader } from "../codec/entry_header.ts";
import { assert, assertCount } from "../assert.ts";

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

/** Encodes the parts as one blob. */
export function encodeCheckpoint(parts: CheckpointParts): Uint8Array {
  assertCount(parts.op, "checkpoint op");
  assert(parts.header.length === entryHeaderSize, "checkpoint anchor is one entry header");
  return cborEncode({
    version: checkpointFormatVersion,
    op: parts.op,
    header: parts.header,
    state: parts.state,
    clients: parts.clients,
  });
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
