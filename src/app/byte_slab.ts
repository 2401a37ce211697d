/**
 * Small byte arrays carved out of shared 8 KiB slabs.
 *
 * A Uint8Array with its own off-heap ArrayBuffer costs about 320–350 ns to make in V8,
 * plus a finalizer for the garbage collector: more than encoding a webhook effect. A
 * view into a shared slab costs 25–45 ns. Node's own Buffer pool makes the same trade: a
 * view keeps its whole slab alive, so a long-lived small value can pin up to `slabSize`
 * bytes (at worst, one pinned slab per live value).
 *
 * Which arrays are cheap to make fresh depends on the runtime (measured on these
 * machines, ns per `new Uint8Array(n)` / per slab view):
 *
 * | runtime | n ≤ 64 | n = 300 | n = 1000 | view |
 * |---|---|---|---|---|
 * | Node 20 (V8 11) | 24 (on the V8 heap) | 318 | 318 | 31 |
 * | Deno 2 (V8 15) | 316–358 (never on the heap) | 323 | 323 | 25 |
 * | Bun (JSC) | 8–9 | 23 | 71 | 44 |
 *
 * so arrays up to {@link freshSizeMax} bytes are made fresh and the rest, up to
 * {@link slabRequestSizeMax}, are views.
 *
 * Views always carry their own byteOffset: read them through `byteOffset`/`subarray`,
 * never through `.buffer` from offset 0.
 * @module
 */

/** Bytes per slab (the size of Node's Buffer pool). */
export const slabSize = 8 * 1024;
/** Larger requests get an array of their own (they would waste too much of a slab). */
export const slabRequestSizeMax = 1024;

/** The running runtime's size up to which a fresh array is cheaper than a view (see above). */
export const freshSizeMax: number = "Bun" in globalThis ? 512 : "Deno" in globalThis ? 0 : 64;

let slab = new ArrayBuffer(slabSize);
let slabOffset = 0;

/** A new Uint8Array of `size` zero bytes, in a slab when it is small (see the module comment). */
export function allocateBytes(size: number): Uint8Array {
  // Cheap fresh arrays (see the table) and large ones take their own buffer.
  if (size <= freshSizeMax || size > slabRequestSizeMax) return new Uint8Array(size);
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
