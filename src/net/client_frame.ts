/**
 * Framing of the binary client protocol (src/api/client_port.ts, docs/api.md): every frame
 * is a u32 little-endian payload length followed by the payload. Shared by the server (the
 * client port) and the client library's binary transport.
 * @module
 */
import { assert } from "../assert.ts";

/** Bytes of the length prefix. */
export const framePrefixSize = 4;

/** Largest payload a length prefix can announce. */
export const framePayloadSizeMax = 0xffff_ffff;

/** One frame around `payload`. */
export function frameOf(payload: Uint8Array): Uint8Array {
  assert(payload.length <= framePayloadSizeMax, "payload fits the length prefix");
  const frame = new Uint8Array(framePrefixSize + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length, true);
  frame.set(payload, framePrefixSize);
  return frame;
}

/**
 * The frames around `payloads[0..count)`, one after another in one buffer: the payloads
 * of one turn (many requests, or many answers) cost one copy and one write together,
 * not a frame buffer each and then a join.
 * @example
 * framesOf([encodeValue([1, "a"]), encodeValue([2, "b"])], 2); // two frames, one buffer
 */
export function framesOf(payloads: readonly Uint8Array[], count: number): Uint8Array {
  assert(count >= 0 && count <= payloads.length, "count within the payloads");
  let size = 0;
  for (let i = 0; i < count; i++) {
    const length = payloads[i]!.length;
    assert(length <= framePayloadSizeMax, "payload fits the length prefix");
    size += framePrefixSize + length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const payload = payloads[i]!;
    const length = payload.length;
    out[at] = length;
    out[at + 1] = length >>> 8;
    out[at + 2] = length >>> 16;
    out[at + 3] = length >>> 24;
    out.set(payload, at + framePrefixSize);
    at += framePrefixSize + length;
  }
  return out;
}

/**
 * Splits a byte stream into frame payloads. Chunks are kept by reference and copied once
 * when a frame is whole; a frame larger than `payloadSizeMax` is reported, not buffered.
 */
export class FrameReader {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #length = 0;
  readonly #payloadSizeMax: number;

  /** A reader refusing payloads over `payloadSizeMax` bytes. */
  constructor(payloadSizeMax: number) {
    assert(Number.isSafeInteger(payloadSizeMax) && payloadSizeMax > 0, "payload size limit positive");
    this.#payloadSizeMax = payloadSizeMax;
  }

  /** Adds received bytes and returns the payloads now complete, or "oversized". */
  push(chunk: Uint8Array): Uint8Array[] | "oversized" {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.#length < framePrefixSize) return out;
      const prefix = this.#take(framePrefixSize, false);
      const size = prefix[0]! | (prefix[1]! << 8) | (prefix[2]! << 16) | (prefix[3]! * 0x1000000);
      if (size > this.#payloadSizeMax) return "oversized";
      if (this.#length < framePrefixSize + size) return out;
      this.#take(framePrefixSize, true);
      out.push(this.#take(size, true));
    }
  }

  /** The first `size` bytes (copied only when they span chunks); `consume` removes them. */
  #take(size: number, consume: boolean): Uint8Array {
    assert(size <= this.#length, "take within the buffered bytes");
    const first = this.#chunks[0];
    let out: Uint8Array;
    if (size === 0) out = new Uint8Array(0);
    else if (first !== undefined && first.length - this.#head >= size) out = first.subarray(this.#head, this.#head + size);
    else {
      out = new Uint8Array(size);
      let filled = 0;
      let offset = this.#head;
      for (const chunk of this.#chunks) {
        const n = Math.min(size - filled, chunk.length - offset);
        out.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset = 0;
        if (filled === size) break;
      }
    }
    if (consume) {
      let left = size;
      while (left > 0) {
        const chunk = this.#chunks[0]!;
        const available = chunk.length - this.#head;
        if (available > left) {
          this.#head += left;
          left = 0;
        } else {
          left -= available;
          this.#chunks.shift();
          this.#head = 0;
        }
      }
      this.#length -= size;
    }
    return out;
  }
}
