/**
 * The deterministic PRNG behind `ctx.random()`: sfc32 seeded from the 128-bit checksum of
 * the entry being applied (plus the position of a sub-event within it), so every replica
 * draws the same numbers for the same entry and no two entries share a sequence.
 * @module
 */

/** A source of uniform numbers in [0, 1). */
export type RandomSource = () => number;

/**
 * Returns a PRNG seeded from `seed` (16 bytes or more; the first 16 are used) and a small
 * `stream` number that separates sub-events applied by one entry.
 * @example
 * const random = seededFromChecksum(entry.checksum, 0);
 * const roll = Math.floor(random() * 6) + 1;
 */
export function seededFromChecksum(seed: Uint8Array, stream: number): RandomSource {
  if (seed.length < 16) throw new RangeError("seed must hold at least 16 bytes");
  const view = new DataView(seed.buffer, seed.byteOffset, 16);
  let a = view.getUint32(0, true);
  let b = view.getUint32(4, true);
  let c = view.getUint32(8, true) ^ Math.imul(stream, 0x9e37_79b9);
  let d = view.getUint32(12, true);
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  // Mix the seed before the first draw so nearby seeds give unrelated sequences.
  for (let i = 0; i < 12; i++) next();
  return () => next() / 0x1_0000_0000;
}
