/**
 * The simulator's only source of randomness: sfc32 (Chris Doty-Humphrey's small fast
 * chaotic generator) over 32-bit integers, seeded through splitmix32 so that nearby seeds
 * give unrelated streams. Every choice a run makes (delays, losses, crashes, faults,
 * client operations) is drawn from a {@link Prng} derived from the run's seed, so a seed
 * replays a run exactly. Never Math.random, never a clock.
 * @module
 */
import { assert } from "../assert.ts";

/** One step of splitmix32: a well-mixed 32-bit value from a 32-bit state. */
function splitmix32(state: number): number {
  let z = (state + 0x9e37_79b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A seeded pseudo-random number generator with the helpers the simulator needs. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /**
   * @param seed any safe integer; the high and low 32 bits both enter the state.
   * @example
   * const prng = new Prng(42);
   * const delayTicks = prng.int(10); // 0..9, the same on every run with seed 42
   */
  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), `seed must be a safe integer, got ${seed}`);
    const low = seed >>> 0;
    const high = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.a = splitmix32(low);
    this.b = splitmix32(this.a ^ high);
    this.c = splitmix32(this.b ^ 0x5bd1_e995);
    this.d = 1;
    // Warm up: the first outputs of sfc32 still carry the seed's structure.
    for (let i = 0; i < 12; i++) this.next32();
  }

  /** The next uniform 32-bit unsigned integer. */
  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next32() / 0x1_0000_0000;
  }

  /** A uniform integer in [0, limit); `limit` ≥ 1 and at most 2^32. */
  int(limit: number): number {
    assert(Number.isSafeInteger(limit) && limit >= 1 && limit <= 0x1_0000_0000, `int limit ${limit}`);
    return Math.floor(this.float() * limit);
  }

  /** A uniform integer in [min, max] (both inclusive). */
  range(min: number, max: number): number {
    assert(max >= min, `range ${min}..${max}`);
    return min + this.int(max - min + 1);
  }

  /** True with probability `p` (0 ≤ p ≤ 1); draws nothing when p is 0 or 1, so off is free. */
  chance(p: number): boolean {
    assert(p >= 0 && p <= 1, `probability ${p}`);
    if (p === 0) return false;
    if (p === 1) return true;
    return this.float() < p;
  }

  /** One element of a non-empty array, uniformly. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, "pick from an empty array");
    return items[this.int(items.length)]!;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }

  /** An exponentially distributed integer with the given mean, capped at `max`. */
  exponential(mean: number, max: number): number {
    assert(mean >= 0 && max >= 0, "exponential mean and max are non-negative");
    if (mean === 0) return 0;
    const sample = Math.floor(-Math.log(1 - this.float()) * mean);
    return Math.min(sample, max);
  }

  /**
   * A new generator whose stream depends on this one's next output and on `label`, so
   * that adding draws to one part of the simulation (say the clients) does not shift
   * another part's stream (say the network) more than necessary.
   */
  fork(label: number): Prng {
    return new Prng(this.next32() * 0x1_0000 + (label & 0xffff));
  }
}
