/**
 * Joining byte arrays: journal batches, frames sent in one write, checkpoint blobs. One
 * copy into an array of the exact size.
 * @module
 */

/**
 * A new array holding `parts` one after another (each a Uint8Array or a list of byte
 * values).
 * @example
 * concatBytes([new Uint8Array([1, 2]), [3]]); // Uint8Array [1, 2, 3]
 */
export function concatBytes(parts: readonly (Uint8Array | readonly number[])[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const joined = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}
