/**
 * The linearizability checker's entry point. The model may split the history into
 * independent parts (per key); each is searched on its own ({@link searchPartition}),
 * in key order, sharing one step budget. A history is linearizable exactly when every
 * part is; the first part that is not decides the verdict, and a part whose search ran
 * out of budget makes the answer `unknown` unless another part is a definite violation.
 *
 * There is no clock inside: the budget is counted in search steps, so the same history
 * gets the same answer on every machine and runtime.
 * @module
 */
import { assert } from "../../assert.ts";
import { explainViolation } from "./explain.ts";
import type { Violation } from "./explain.ts";
import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";
import { searchPartition } from "./search.ts";

/** The verdict on a history. */
export type CheckKind = "linearizable" | "not-linearizable" | "unknown";

/** The checker's answer. */
export interface CheckResult<I = unknown, O = unknown> {
  readonly kind: CheckKind;
  /** True exactly when `kind` is `"linearizable"`. */
  readonly ok: boolean;
  /** One paragraph a person can act on. */
  readonly explanation: string;
  /** The partition (key) that is not linearizable, or that ran out of budget, when the model partitions. */
  readonly partition?: string;
  /** For `not-linearizable`: the evidence. */
  readonly violation?: Violation<I, O>;
  /** Search steps taken over all partitions. */
  readonly steps: number;
  /** Operations checked (failed ones are not in a history). */
  readonly operationCount: number;
  /** Parts the history was split into. */
  readonly partitionCount: number;
}

/** Options of {@link check}. */
export interface CheckOptions {
  /** Search steps allowed over the whole history before answering `unknown`. */
  readonly stepsMax?: number;
}

/**
 * Default step budget: a few seconds of search on this project's machines (about
 * 10–30 M steps a second), far above what real histories need (the slowest Jepsen etcd
 * history in the test data takes about 0.2 M).
 */
export const checkStepsMaxDefault = 50_000_000;

/**
 * Checks `operations` against `model`.
 *
 * @example
 * ```ts
 * const result = check(casRegister, operationsFromEvents(events));
 * if (!result.ok) console.log(result.kind, result.explanation);
 * ```
 */
export function check<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  const stepsMax = options.stepsMax ?? checkStepsMaxDefault;
  assert(Number.isSafeInteger(stepsMax) && stepsMax >= 0, "stepsMax is a non-negative safe integer");
  const parts = model.partition?.(operations) ?? new Map([["", [...operations]]]);
  const keys = [...parts.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const operationCount = operations.length;
  const partitionCount = parts.size;
  const partitioned = model.partition !== undefined;
  const label = (key: string) => (partitioned ? ` for key ${JSON.stringify(key)}` : "");
  let steps = 0;
  let unknownKey: string | undefined;
  for (const key of keys) {
    const part = parts.get(key)!;
    const outcome = searchPartition(model, part, stepsMax - steps);
    steps += outcome.steps;
    assert(steps <= stepsMax, "the search stays within its budget");
    if (outcome.kind === "unknown") {
      unknownKey ??= key;
      continue;
    }
    if (outcome.kind === "linearizable") continue;
    assert(outcome.deadline !== undefined, "a violation has a deadline");
    const deadline = part[outcome.deadline]!;
    const rejected: Operation<I, O>[] = [];
    const deadEnds: Operation<I, O>[] = [];
    for (const index of outcome.candidates) {
      const candidate = part[index]!;
      if (model.step(outcome.prefixState, candidate.input, candidate.output).ok) deadEnds.push(candidate);
      else rejected.push(candidate);
    }
    const violation: Violation<I, O> = {
      prefix: outcome.prefix.map((index) => part[index]!),
      stateAfterPrefix: model.describeState?.(outcome.prefixState) ?? `state ${model.hash(outcome.prefixState)}`,
      deadline,
      rejected,
      deadEnds,
    };
    return {
      kind: "not-linearizable",
      ok: false,
      explanation: explainViolation(model, violation, label(key)),
      ...(partitioned ? { partition: key } : {}),
      violation,
      steps,
      operationCount,
      partitionCount,
    };
  }
  if (unknownKey !== undefined) {
    return {
      kind: "unknown",
      ok: false,
      explanation: `unknown: the search${label(unknownKey)} gave up after ${steps} steps over the whole history (budget ${stepsMax}); raise the step budget or shorten the history`,
      ...(partitioned ? { partition: unknownKey } : {}),
      steps,
      operationCount,
      partitionCount,
    };
  }
  return {
    kind: "linearizable",
    ok: true,
    explanation: `linearizable: ${operationCount} operation(s) in ${partitionCount} partition(s) fit one sequential order consistent with real time`,
    steps,
    operationCount,
    partitionCount,
  };
}
