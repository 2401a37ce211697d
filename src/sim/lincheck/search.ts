/**
 * The search over one partition: Wing & Gong's depth-first search with Lowe's
 * memoization, laid out as in Porcupine.
 *
 * The walk goes along the entry list from its head. At a call, it tries the operation on
 * the current model state; when the model accepts and the (linearized set, new state)
 * pair is new, the operation is linearized: pushed on the stack, lifted out of the list,
 * and the walk restarts at the head. At a return whose operation is not linearized yet,
 * the order built so far cannot be extended past that return: the search pops the last
 * operation, puts it back, and tries the call after it.
 *
 * It succeeds when every operation that returned is linearized: operations of unknown
 * outcome left over can all be placed after everything else, which is the same as never.
 * @module
 */
import { assert } from "../../assert.ts";
import { buildEntries, lift, unlift } from "./entries.ts";
import type { Operation } from "./history.ts";
import { Bitset, hashString, Memo } from "./memo.ts";
import type { Model } from "./model.ts";

/** What the search over one partition found. */
export interface SearchOutcome<S> {
  readonly kind: "linearizable" | "not-linearizable" | "unknown";
  /** Steps taken (one per list entry visited). */
  readonly steps: number;
  /** Deepest order found, as operation indices in linearization order. */
  readonly prefix: readonly number[];
  /** The model state after `prefix`. */
  readonly prefixState: S;
  /** The operation whose return stopped the deepest order (the deadline it missed). */
  readonly deadline: number | undefined;
  /** The operations that could have come next after `prefix` (calls before that return). */
  readonly candidates: readonly number[];
}

/** Searches for a linearization of `operations`, for at most `stepsMax` steps. */
export function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  stepsMax: number,
): SearchOutcome<S> {
  assert(Number.isSafeInteger(stepsMax) && stepsMax >= 0, "stepsMax is a safe integer");
  const count = operations.length;
  const { head, calls } = buildEntries(operations.map((o) => o.call), operations.map((o) => o.return));
  const bits = new Bitset(count);
  const memo = new Memo<S>(bits.words.length, (a, b) => model.equal(a, b));
  const stackOp = new Int32Array(count);
  const stackState: S[] = [];
  const stackHash = new Uint32Array(count);
  let depth = 0;
  let state = model.init();
  // The current state's 32-bit hash, kept alongside it: most steps (reads) return the
  // same state, and then the model's hash need not be recomputed.
  let stateHash = hashString(model.hash(state));
  let returnedRemaining = 0;
  for (const op of operations) if (op.return !== undefined) returnedRemaining++;

  let steps = 0;
  let best: { prefix: number[]; state: S; deadline: number | undefined; candidates: number[] } = {
    prefix: [], state, deadline: undefined, candidates: [],
  };
  const outcome = (kind: SearchOutcome<S>["kind"]): SearchOutcome<S> => ({
    kind, steps, prefix: best.prefix, prefixState: best.state, deadline: best.deadline, candidates: best.candidates,
  });

  let entry = head.next;
  while (returnedRemaining > 0) {
    if (steps >= stepsMax) return outcome("unknown");
    steps++;
    // A return that is still in the list comes before every return of unknown outcome
    // (+∞), so the walk meets it before running off the end or reaching those.
    assert(entry !== null, "the walk ends at a pending return");
    if (entry.isCall) {
      const op = entry.op;
      const operation = operations[op]!;
      const result = model.step(state, operation.input, operation.output);
      if (result.ok) {
        const nextHash = result.state === state ? stateHash : hashString(model.hash(result.state));
        bits.add(op);
        if (memo.add(bits, result.state, nextHash)) {
          stackOp[depth] = op;
          stackState[depth] = state;
          stackHash[depth] = stateHash;
          depth++;
          state = result.state;
          stateHash = nextHash;
          lift(entry);
          if (operation.return !== undefined) returnedRemaining--;
          entry = head.next;
          continue;
        }
        bits.remove(op);
      }
      entry = entry.next;
      continue;
    }
    assert(entry.match === null && calls[entry.op]!.match === entry, "a return entry");
    if (depth > best.prefix.length || best.deadline === undefined) {
      const candidates: number[] = [];
      for (let e = head.next; e !== entry && e !== null; e = e.next) if (e.isCall) candidates.push(e.op);
      best = { prefix: Array.from(stackOp.subarray(0, depth)), state, deadline: entry.op, candidates };
    }
    if (depth === 0) return outcome("not-linearizable");
    depth--;
    const op = stackOp[depth]!;
    state = stackState[depth]!;
    stateHash = stackHash[depth]!;
    bits.remove(op);
    const call = calls[op]!;
    unlift(call);
    if (operations[op]!.return !== undefined) returnedRemaining++;
    entry = call.next;
  }
  best = { prefix: Array.from(stackOp.subarray(0, depth)), state, deadline: undefined, candidates: [] };
  return outcome("linearizable");
}
