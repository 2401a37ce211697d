/**
 * Reads a segment file front to back in large chunks with one chunk read ahead, so that
 * the disk (or the page-cache copy) works while recovery hashes the previous chunk: 1 GiB
 * in a few seconds needs both. Hands out views of byte ranges; a range that straddles two
 * chunks is copied into a buffer of its own.
 *
 * With a {@link ChunkPool} (and a DiskFile that has `readInto`), chunks are read into three
 * buffers used in turn instead of fresh memory: faulting in a fresh 8 MiB buffer per chunk
 * cost about 4 ms, 0.5 s per GiB, more than the read itself. A view then stays valid
 * until the reader has moved TWO chunks past it (the chunk before the current one is
 * never overwritten; a jump that restarts the stream may reuse any buffer): callers copy
 * whatever they keep longer.
 * @module
 */
import { assert } from "../assert.ts";
import type { DiskFile } from "./disk.ts";
import { entryBodySizeMax, entryHeaderSize } from "../codec/entry_header.ts";

/** Default chunk size: 8 MiB, several times the largest entry. */
export const readChunkSizeDefault = 8 * 1024 * 1024;

/**
 * Three chunk buffers handed out in turn, shared by the readers of one scan (one reader at
 * a time). A buffer is reused by the third read after the one that filled it: by then the
 * reader has the chunk after it as its current one, and the read into it has settled.
 */
export class ChunkPool {
  readonly chunkSize: number;
  readonly #buffers: Uint8Array[] = [];
  #next = 0;

  constructor(chunkSize = readChunkSizeDefault) {
    assert(chunkSize >= 2 * (entryHeaderSize + entryBodySizeMax), "a chunk holds at least two largest entries");
    this.chunkSize = chunkSize;
  }

  /** The next buffer in turn, of `size` ≤ chunkSize bytes. */
  take(size: number): Uint8Array {
    assert(size <= this.chunkSize, "chunk larger than the pool's buffers");
    const index = this.#next;
    this.#next = (this.#next + 1) % 3;
    const buffer = this.#buffers[index] ?? new Uint8Array(this.chunkSize);
    this.#buffers[index] = buffer;
    return buffer.subarray(0, size);
  }
}

interface Chunk {
  readonly start: number;
  readonly bytes: Uint8Array;
}

/** A sequential chunked reader over one file of known size. */
export class SegmentReader {
  readonly file: DiskFile;
  readonly fileSize: number;
  readonly #chunkSize: number;
  #current: Chunk = { start: 0, bytes: new Uint8Array(0) };
  #ahead: { readonly start: number; readonly bytes: Promise<Uint8Array> } | null = null;
  /** Bytes read from the file so far (for progress lines). */
  bytesRead = 0;

  readonly #pool: ChunkPool | null;

  /** With `pool`, chunks go into its buffers (when the file has `readInto`). */
  constructor(file: DiskFile, fileSize: number, chunkSize = readChunkSizeDefault, pool: ChunkPool | null = null) {
    assert(chunkSize >= 2 * (entryHeaderSize + entryBodySizeMax), "a chunk holds at least two largest entries");
    assert(pool === null || pool.chunkSize === chunkSize, "pool of another chunk size");
    this.file = file;
    this.fileSize = fileSize;
    this.#chunkSize = chunkSize;
    this.#pool = file.readInto === undefined ? null : pool;
  }

  /** Waits for a read-ahead still in flight (before the pool's buffers serve another reader). */
  async settle(): Promise<void> {
    const ahead = this.#ahead;
    this.#ahead = null;
    if (ahead !== null) await ahead.bytes.catch(() => undefined);
  }

  /**
   * The hot path: bytes [offset, offset + length) when the current chunk holds them all,
   * without a promise; undefined when {@link view} must be awaited instead.
   */
  viewNow(offset: number, length: number): Uint8Array | undefined {
    const at = offset - this.#current.start;
    if (at < 0 || at + length > this.#current.bytes.length) return undefined;
    return this.#current.bytes.subarray(at, at + length);
  }

  /** Bytes [offset, offset + length), or null when they run past the end of the file. */
  async view(offset: number, length: number): Promise<Uint8Array | null> {
    if (offset + length > this.fileSize) return null;
    await this.#reach(offset);
    const current = this.#current;
    const at = offset - current.start;
    if (at + length <= current.bytes.length) return current.bytes.subarray(at, at + length);
    // Straddles chunks: copy the pieces into one buffer.
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      await this.#reach(offset + filled);
      const chunk = this.#current;
      const from = offset + filled - chunk.start;
      const piece = chunk.bytes.subarray(from, Math.min(chunk.bytes.length, from + length - filled));
      if (piece.length === 0) return null; // the file shrank under us
      out.set(piece, filled);
      filled += piece.length;
    }
    return out;
  }

  /**
   * The current chunk from `offset` on, for scanning byte by byte (resync after damage);
   * `start` is the file offset of `bytes[0]`.
   */
  async window(offset: number): Promise<{ bytes: Uint8Array; start: number }> {
    await this.#reach(offset);
    const at = offset - this.#current.start;
    return { bytes: this.#current.bytes.subarray(at), start: offset };
  }

  /** Makes the current chunk the one holding `offset`, reading ahead the one after it. */
  async #reach(offset: number): Promise<void> {
    const current = this.#current;
    if (offset >= current.start && offset < current.start + current.bytes.length) return;
    const ahead = this.#ahead;
    if (ahead !== null && offset >= ahead.start && offset < ahead.start + this.#chunkSize) {
      this.#current = { start: ahead.start, bytes: await ahead.bytes };
    } else {
      // Not sequential (a resync jumped ahead): start the stream again at `offset`, once
      // the abandoned read-ahead settled (its buffer may come round again).
      if (ahead !== null) await ahead.bytes.catch(() => undefined);
      this.#ahead = null;
      this.#current = { start: offset, bytes: await this.#read(offset) };
    }
    const next = this.#current.start + this.#current.bytes.length;
    this.#ahead = next < this.fileSize && this.#current.bytes.length > 0 ? { start: next, bytes: this.#read(next) } : null;
  }

  async #read(offset: number): Promise<Uint8Array> {
    const length = Math.min(this.#chunkSize, this.fileSize - offset);
    let bytes: Uint8Array;
    if (this.#pool !== null && this.file.readInto !== undefined) {
      const target = this.#pool.take(length);
      bytes = target.subarray(0, await this.file.readInto(offset, target));
    } else {
      bytes = await this.file.read(offset, length);
    }
    this.bytesRead += bytes.length;
    return bytes;
  }
}
