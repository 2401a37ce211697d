/**
 * Reads a segment file front to back in large chunks with one chunk read ahead, so that
 * the disk (or the page-cache copy) works while recovery hashes the previous chunk: 1 GiB
 * in a few seconds needs both. Hands out views of byte ranges; a range that straddles two
 * chunks is copied into a buffer of its own.
 * @module
 */
import { assert } from "../assert.ts";
import type { DiskFile } from "./disk.ts";
import { entryBodySizeMax, entryHeaderSize } from "../codec/entry_header.ts";

/** Default chunk size: 8 MiB, several times the largest entry. */
export const readChunkSizeDefault = 8 * 1024 * 1024;

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

  constructor(file: DiskFile, fileSize: number, chunkSize = readChunkSizeDefault) {
    assert(chunkSize >= 2 * (entryHeaderSize + entryBodySizeMax), "a chunk holds at least two largest entries");
    this.file = file;
    this.fileSize = fileSize;
    this.#chunkSize = chunkSize;
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
      // Not sequential (a resync jumped ahead): start the stream again at `offset`.
      this.#current = { start: offset, bytes: await this.#read(offset) };
    }
    const next = this.#current.start + this.#current.bytes.length;
    this.#ahead = next < this.fileSize && this.#current.bytes.length > 0 ? { start: next, bytes: this.#read(next) } : null;
    if (ahead !== null && this.#ahead?.start !== ahead.start) ahead.bytes.catch(() => {}); // an abandoned read-ahead
  }

  async #read(offset: number): Promise<Uint8Array> {
    const bytes = await this.file.read(offset, Math.min(this.#chunkSize, this.fileSize - offset));
    this.bytesRead += bytes.length;
    return bytes;
  }
}
