/**
 * The sequential specification the checker tests a history against. A model is pure
 * data and functions: no clock, no I/O, and `step` must not mutate the state it is given
 * (the search keeps old states to backtrack to).
 * @module
 */
import type { Operation } from "./history.ts";

/** What {@link Model.step} answers: whether the output is possible, and the next state. */
export interface StepResult<S> {
  /** False when `output` cannot be what `input` returns in this state. */
  readonly ok: boolean;
  /** The state after the operation (meaningful only when `ok`). */
  readonly state: S;
}

/**
 * A sequential object with states `S`, operation inputs `I` and outputs `O`.
 *
 * @example
 * ```ts
 * const counter: Model<number, "inc" | "get", number> = {
 *   name: "counter",
 *   init: () => 0,
 *   step: (s, i, o) => i === "inc" ? { ok: true, state: s + 1 } : { ok: o === undefined || o === s, state: s },
 *   equal: (a, b) => a === b,
 *   hash: (s) => String(s),
 *   describe: (i, o) => `${i} → ${o ?? "?"}`,
 * };
 * ```
 */
export interface Model<S, I, O> {
  /** Name for messages. */
  readonly name: string;
  /** The state before any operation. */
  init(): S;
  /**
   * Applies `input` to `state`, given that it returned `output`. An `output` of undefined
   * means the outcome is unknown: any result is possible, so the step must accept it in
   * every state (a cas that cannot succeed here simply leaves the state unchanged).
   */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /** True when two states are the same (memoization). */
  equal(a: S, b: S): boolean;
  /** A string that is equal for equal states (memoization; collisions are resolved by `equal`). */
  hash(state: S): string;
  /**
   * Splits a history into independent sub-histories (for instance one per key), each
   * checked on its own; a history is linearizable exactly when every part is
   * (P-compositionality). Absent: the history is one part.
   */
  partition?(operations: readonly Operation<I, O>[]): Map<string, Operation<I, O>[]>;
  /** One operation, for explanations: `read → 3`, `cas 1→2 (outcome unknown)`. */
  describe(input: I, output: O | undefined): string;
  /** One state, for explanations. Absent: the state's hash is shown. */
  describeState?(state: S): string;
}

/** Partitions a history by `input.key`; used by the key-value models. */
export function partitionByKey<I extends { readonly key: string }, O>(
  operations: readonly Operation<I, O>[],
): Map<string, Operation<I, O>[]> {
  const parts = new Map<string, Operation<I, O>[]>();
  for (const operation of operations) {
    const list = parts.get(operation.input.key);
    if (list === undefined) parts.set(operation.input.key, [operation]);
    else list.push(operation);
  }
  return parts;
}
