/**
 * Small byte arrays carved out of shared 8 KiB slabs.
 *
 * A Uint8Array over 64 bytes gets its own off-heap ArrayBuffer in V8, and making one
 * costs about 350 ns plus a finalizer for the garbage collector: more than encoding a
 * webhook effect. A view into a shared slab costs about 30 ns. Node's own Buffer pool
 * makes the same trade: a view keeps its whole slab alive, so a long-lived small value
 * can pin up to `slabSize` bytes (at worst, one pinned slab per live value).
 *
 * Views always carry their own byteOffset: read them through `byteOffset`/`subarray`,
 * never through `.buffer` from offset 0.
 * @module
 */

/** Bytes per slab (the size of Node's Buffer pool). */
export const slabSize = 8 * 1024;
/** Larger requests get an array of their own (they would waste too much of a slab). */
export const slabRequestSizeMax = 1024;

let slab = new ArrayBuffer(slabSize);
let slabOffset = 0;

/** A new Uint8Array of `size` zero bytes, in a slab when it is small (see the module comment). */
export function allocateBytes(size: number): Uint8Array {
  // On-heap arrays (≤ 64 bytes) are as cheap as views; large ones take their own buffer.
  if (size <= 64 || size > slabRequestSizeMax) return new Uint8Array(size);
  if (slabOffset + size > slabSize) {
    slab = new ArrayBuffer(slabSize);
    slabOffset = 0;
  }
  const bytes = new Uint8Array(slab, slabOffset, size);
  // Keep views 8-byte aligned so a DataView over one is as fast as over a fresh array.
  slabOffset += (size + 7) & ~7;
  return bytes;
}

/** A copy of `source[start, end)` in slab memory (see {@link allocateBytes}). */
export function copyBytes(source: Uint8Array, start: number, end: number): Uint8Array {
  const bytes = allocateBytes(end - start);
  bytes.set(source.subarray(start, end));
  return bytes;
}
