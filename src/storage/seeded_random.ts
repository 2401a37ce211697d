/**
 * A small seeded PRNG (mulberry32) for fault injection and crash tests: never Math.random,
 * so every failure replays from its seed.
 * @module
 */

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/**
 * Returns a deterministic PRNG for `seed` (any safe integer).
 * @example
 * const random = seededRandom(42);
 * const coin = random() < 0.5;
 */
export function seededRandom(seed: number): Random {
  let state = (seed ^ 0x9e37_79b9) >>> 0;
  return () => {
    state = (state + 0x6d2b_79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

/** A uniform integer in [0, limit). */
export function randomInt(random: Random, limit: number): number {
  return Math.floor(random() * limit);
}
