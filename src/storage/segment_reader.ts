/**
 * Reads a segment file in large chunks (recovery reads 1 GiB in seconds only this way) and
 * hands out views of byte ranges, re-reading from the requested position when a range
 * crosses the end of the chunk.
 * @module
 */
import { assert } from "../assert.ts";
import type { DiskFile } from "./disk.ts";
import { entryBodySizeMax, entryHeaderSize } from "../codec/entry_header.ts";

/** Default chunk size: 8 MiB, several times the largest entry. */
export const readChunkSizeDefault = 8 * 1024 * 1024;

/** A chunked reader over one file of known size. */
export class SegmentReader {
  readonly file: DiskFile;
  readonly fileSize: number;
  readonly #chunkSize: number;
  #chunkStart = 0;
  #chunk: Uint8Array = new Uint8Array(0);
  /** Bytes read from the file so far (for progress lines). */
  bytesRead = 0;

  constructor(file: DiskFile, fileSize: number, chunkSize = readChunkSizeDefault) {
    assert(chunkSize >= 2 * (entryHeaderSize + entryBodySizeMax), "a chunk holds at least two largest entries");
    this.file = file;
    this.fileSize = fileSize;
    this.#chunkSize = chunkSize;
  }

  /** Bytes [offset, offset + length), or null when they run past the end of the file. */
  async view(offset: number, length: number): Promise<Uint8Array | null> {
    if (offset + length > this.fileSize) return null;
    const end = this.#chunkStart + this.#chunk.length;
    if (offset < this.#chunkStart || offset + length > end) {
      const size = Math.min(Math.max(this.#chunkSize, length), this.fileSize - offset);
      this.#chunk = await this.file.read(offset, size);
      this.bytesRead += this.#chunk.length;
      this.#chunkStart = offset;
      if (this.#chunk.length < length) return null; // the file shrank under us
    }
    const at = offset - this.#chunkStart;
    return this.#chunk.subarray(at, at + length);
  }

  /** The rest of the current chunk from `offset` on (at least `minimum` bytes when the file has them). */
  async window(offset: number, minimum: number): Promise<{ bytes: Uint8Array; start: number }> {
    const length = Math.min(Math.max(minimum, 1), this.fileSize - offset);
    await this.view(offset, length);
    const at = offset - this.#chunkStart;
    return { bytes: this.#chunk.subarray(at), start: offset };
  }
}
