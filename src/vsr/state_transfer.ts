/**
 * State transfer: assembling a peer's latest checkpoint from `checkpoint_chunk` messages,
 * in order, and checking the whole blob against the checksum the peer announced. Pure
 * bookkeeping: the replica asks for chunks and installs the result.
 * @module
 */
import { assert } from "../assert.ts";
import { checksum, checksumEqual } from "../codec/checksum.ts";

/** A `checkpoint_chunk` as the transfer needs it. */
export interface CheckpointChunk {
  readonly op: number;
  readonly checksum: Uint8Array;
  readonly size: number;
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** What a chunk did to the transfer. */
export type ChunkOutcome =
  | { readonly kind: "ignored" }
  | { readonly kind: "more" }
  | { readonly kind: "complete"; readonly blob: Uint8Array }
  | { readonly kind: "corrupt" };

/** One transfer from one peer. The peer may move to a newer checkpoint mid-way: it restarts. */
export class CheckpointTransfer {
  #op: number;
  #checksum: Uint8Array = new Uint8Array(16);
  #size = 0;
  #chunks: Uint8Array[] = [];
  #received = 0;

  /**
   * @param from the peer that announced the checkpoint
   * @param op the op of the checkpoint it announced
   */
  constructor(readonly from: number, op: number) {
    assert(Number.isSafeInteger(op) && op > 0, "a transfer is of a checkpoint above op 0");
    this.#op = op;
  }

  /** The op of the checkpoint being assembled. */
  get op(): number {
    return this.#op;
  }

  /** Bytes received so far: the offset of the next chunk to ask for. */
  get received(): number {
    return this.#received;
  }

  /** Takes a chunk from `from`; out-of-order and oversized chunks are ignored. */
  accept(chunk: CheckpointChunk): ChunkOutcome {
    if (chunk.op !== this.#op || !checksumEqual(chunk.checksum, this.#checksum)) {
      // A different checkpoint (the peer took a newer one): start over from its first chunk.
      if (chunk.offset !== 0) return { kind: "ignored" };
      this.#op = chunk.op;
      this.#checksum = chunk.checksum;
      this.#size = chunk.size;
      this.#chunks = [];
      this.#received = 0;
    }
    if (chunk.offset !== this.#received || this.#received + chunk.bytes.length > this.#size) return { kind: "ignored" };
    this.#chunks.push(chunk.bytes);
    this.#received += chunk.bytes.length;
    if (this.#received < this.#size) return { kind: "more" };
    const blob = new Uint8Array(this.#size);
    let offset = 0;
    for (const part of this.#chunks) {
      blob.set(part, offset);
      offset += part.length;
    }
    this.#chunks = [];
    return checksumEqual(checksum(blob), this.#checksum) ? { kind: "complete", blob } : { kind: "corrupt" };
  }
}
