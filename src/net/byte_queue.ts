/**
 * Bytes received from a socket, kept as the chunks they arrived in, so that a frame split
 * over many reads is copied once when whole, never re-concatenated per read.
 * @module
 */
import { assert } from "../assert.ts";

/** A FIFO of bytes. */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  /** Unread bytes in total. */
  length = 0;

  /** Appends a chunk (kept by reference; the socket does not reuse it). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `size` bytes without removing them. */
  peek(size: number): Uint8Array {
    assert(size <= this.length, "peek within the queue");
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= size) return first.subarray(this.head, this.head + size);
    const out = new Uint8Array(size);
    let filled = 0;
    let offset = this.head;
    for (const chunk of this.chunks) {
      const take = Math.min(size - filled, chunk.length - offset);
      out.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset = 0;
      if (filled === size) break;
    }
    assert(filled === size, "peek filled");
    return out;
  }

  /** Removes and returns the first `size` bytes (a view into a chunk when they lie in one). */
  read(size: number): Uint8Array {
    const out = this.peek(size);
    this.skip(size);
    return out;
  }

  /**
   * Removes the first `size` bytes and returns them in a fresh buffer of exactly that
   * size (offset 0) that nothing else holds: bytes handed on to be kept cost one copy,
   * whether they lay in one chunk or spanned several.
   */
  readFresh(size: number): Uint8Array {
    assert(size <= this.length, "read within the queue");
    const out = new Uint8Array(size);
    let filled = 0;
    let offset = this.head;
    for (const chunk of this.chunks) {
      const take = Math.min(size - filled, chunk.length - offset);
      out.set(offset === 0 && take === chunk.length ? chunk : chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset = 0;
      if (filled === size) break;
    }
    assert(filled === size, "read filled");
    this.skip(size);
    return out;
  }

  private skip(size: number): void {
    let left = size;
    while (left > 0) {
      const first = this.chunks[0];
      assert(first !== undefined, "read within the queue");
      const available = first.length - this.head;
      if (available > left) {
        this.head += left;
        left = 0;
      } else {
        left -= available;
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.length -= size;
    assert(this.length >= 0, "queue length stays non-negative");
  }

  /** Drops everything. */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }
}
