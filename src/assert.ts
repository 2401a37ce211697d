/**
 * Assertions that stay on in production: a broken internal invariant stops the process
 * rather than letting it go on with corrupt state.
 * @module
 */

/** Thrown when an internal invariant does not hold: a bug in chronon, never bad input. */
export class AssertionFailed extends Error {
  override readonly name = "AssertionFailed";
}

/** Stops with AssertionFailed when `condition` is false. */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionFailed(message);
}

/** Asserts that `n` is a safe non-negative integer (ops, views, commits, sizes). */
export function assertCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new AssertionFailed(`${what} must be a non-negative safe integer, got ${n}`);
  }
}
