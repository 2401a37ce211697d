/**
 * The linearizability checker: Wing & Gong's search with Lowe's memoization, as Porcupine
 * does it. Calls and returns are laid out in time order in a linked list; the search
 * repeatedly picks an operation whose call is before every pending return, applies it to
 * the model, and lifts it out of the list; when a return is reached before its call was
 * linearized, it backtracks. A (set of linearized operations, model state) pair already
 * explored is never explored again, which keeps real histories fast.
 *
 * The history is split by the model's partition (per key) first: a history is
 * linearizable exactly when every part is (P-compositionality).
 *
 * No clock inside: the search has a step budget, and a history that exhausts it is
 * reported as `unknown` rather than hanging.
 * @module
 */
import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";

/** The checker's answer. */
export interface CheckResult {
  readonly verdict: "linearizable" | "not-linearizable" | "unknown";
  /** One or two sentences a person can act on. */
  readonly explanation: string;
  /** The partition (key) that failed, when the model partitions. */
  readonly partition?: string;
  /** Search steps taken, over all partitions. */
  readonly steps: number;
}

/** Options of {@link check}. */
export interface CheckOptions {
  /** Search steps allowed over the whole history before answering `unknown`. */
  readonly stepsMax?: number;
}

/** Default step budget: generous for real histories, bounded for pathological ones. */
export const checkStepsMaxDefault = 50_000_000;

interface Entry {
  readonly id: number;
  readonly isCall: boolean;
  readonly time: number;
  /** For a call: its return entry. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

interface PartResult {
  ok: boolean | null;
  steps: number;
  /** Deepest linearized prefix found, and the first operations that could not follow it. */
  best: number[];
  stuck: number[];
}

function checkPart<S, I, O>(model: Model<S, I, O>, operations: readonly Operation<I, O>[], stepsMax: number): PartResult {
  const n = operations.length;
  const entries: Entry[] = [];
  for (let id = 0; id < n; id++) {
    const op = operations[id]!;
    const call: Entry = { id, isCall: true, time: op.call, match: null, prev: null, next: null };
    const ret: Entry = { id, isCall: false, time: op.return, match: null, prev: null, next: null };
    call.match = ret;
    entries.push(call, ret);
  }
  // Time order; at equal times calls go first (they overlap the returns at that instant).
  entries.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Entry = { id: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const entry of entries) {
    entry.prev = last;
    last.next = entry;
    last = entry;
  }

  const lift = (call: Entry) => {
    call.prev!.next = call.next;
    if (call.next !== null) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next !== null) ret.next.prev = ret.prev;
  };
  const unlift = (call: Entry) => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next !== null) ret.next.prev = ret;
    call.prev!.next = call;
    if (call.next !== null) call.next.prev = call;
  };

  const words = Math.ceil(n / 32) || 1;
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const stack: { entry: Entry; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  let best: number[] = [];
  let stuck: number[] = [];

  while (head.next !== null) {
    if (++steps > stepsMax) return { ok: null, steps, best, stuck };
    if (entry === null) return { ok: false, steps, best, stuck }; // cannot happen: a return ends every path
    if (entry.isCall) {
      const op = operations[entry.id]!;
      const next = model.step(state, op.input, op.output);
      if (next !== null) {
        linearized[entry.id >> 5]! |= 1 << (entry.id & 31);
        const key = `${linearized.join(",")}|${model.key(next)}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.id >> 5]! &= ~(1 << (entry.id & 31));
      }
      entry = entry.next;
    } else {
      // A return whose call is still pending: the order so far cannot be extended.
      if (stack.length >= best.length) {
        best = stack.map((s) => s.entry.id);
        stuck = [];
        for (let e: Entry | null = head.next; e !== null && stuck.length < 3; e = e.next) if (e.isCall) stuck.push(e.id);
      }
      const top = stack.pop();
      if (top === undefined) return { ok: false, steps, best, stuck };
      state = top.state;
      linearized[top.entry.id >> 5]! &= ~(1 << (top.entry.id & 31));
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { ok: true, steps, best, stuck };
}

function describe<S, I, O>(model: Model<S, I, O>, operation: Operation<I, O>): string {
  const returned = Number.isFinite(operation.return) ? String(operation.return) : "never (unknown)";
  return `client ${operation.client}: ${model.describe(operation.input, operation.output)} [called ${operation.call}, returned ${returned}]`;
}

/** Checks `operations` against `model`. */
export function check<S, I, O>(model: Model<S, I, O>, operations: readonly Operation<I, O>[], options: CheckOptions = {}): CheckResult {
  const stepsMax = options.stepsMax ?? checkStepsMaxDefault;
  const parts = model.partition?.(operations) ?? new Map([["", [...operations]]]);
  let steps = 0;
  for (const [partition, part] of [...parts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const result = checkPart(model, part, stepsMax - steps);
    steps += result.steps;
    const where = model.partition === undefined ? {} : { partition };
    const label = model.partition === undefined ? "" : ` for key ${JSON.stringify(partition)}`;
    if (result.ok === null) {
      return { verdict: "unknown", explanation: `the search gave up after ${steps} steps${label} (raise the step budget)`, ...where, steps };
    }
    if (!result.ok) {
      const prefix = result.best.length;
      const blocked = result.stuck.map((id) => describe(model, part[id]!)).join("; ");
      return {
        verdict: "not-linearizable",
        explanation: `no order of the ${part.length} operations${label} fits the history: the longest linearizable prefix has ${prefix} operations, after which none of these can come next: ${blocked}`,
        ...where,
        steps,
      };
    }
  }
  return { verdict: "linearizable", explanation: `${operations.length} operations in ${parts.size} partition(s) fit one sequential order`, steps };
}
