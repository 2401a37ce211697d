/**
 * Short, actionable explanations of a search outcome: which operation missed its
 * deadline, what the deepest linearizable order looked like, and why each operation that
 * could have come next did not fit.
 * @module
 */
import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";

/** Operations listed at most in one explanation part (the rest are counted). */
export const explainOperationsMax = 5;

/** `client 2 read → nil [call 3, return 4]`. */
export function describeOperation<S, I, O>(model: Model<S, I, O>, operation: Operation<I, O>): string {
  const returned = operation.return === undefined ? "outcome unknown" : `return ${operation.return}`;
  return `client ${operation.client} ${model.describe(operation.input, operation.output)} [call ${operation.call}, ${returned}]`;
}

/** Lists up to {@link explainOperationsMax} operations, then how many more. */
export function listOperations<S, I, O>(model: Model<S, I, O>, operations: readonly Operation<I, O>[]): string {
  const shown = operations.slice(0, explainOperationsMax).map((o) => describeOperation(model, o));
  const more = operations.length - shown.length;
  return shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
}

/** What a violation looks like, for programs (the explanation is its prose form). */
export interface Violation<I, O> {
  /** The deepest linearizable order found, in order. */
  readonly prefix: readonly Operation<I, O>[];
  /** The model state after `prefix`, described. */
  readonly stateAfterPrefix: string;
  /** The operation that had returned, yet could not be linearized after `prefix`. */
  readonly deadline: Operation<I, O>;
  /** Operations that could come next whose output the model rejects after `prefix`. */
  readonly rejected: readonly Operation<I, O>[];
  /** Operations that fit after `prefix` but every order continuing with them failed later. */
  readonly deadEnds: readonly Operation<I, O>[];
}

/** The prose form of a violation. */
export function explainViolation<S, I, O>(model: Model<S, I, O>, violation: Violation<I, O>, where: string): string {
  const { prefix, deadline, rejected, deadEnds } = violation;
  const tail = prefix.slice(-3);
  const order = prefix.length === 0
    ? "no operation can be linearized first"
    : `the longest linearizable order found has ${prefix.length} operation(s) (ending: ${tail.map((o) => describeOperation(model, o)).join("; ")}), leaving ${violation.stateAfterPrefix}`;
  const parts = [`not linearizable${where}: ${order}`];
  parts.push(`Then ${describeOperation(model, deadline)} had returned but cannot be placed`);
  if (rejected.length > 0) parts.push(`Impossible next: ${listOperations(model, rejected)}`);
  if (deadEnds.length > 0) parts.push(`Possible next but leading to a dead end later: ${listOperations(model, deadEnds)}`);
  return parts.join(". ");
}
