/**
 * The checker's working list: every operation as a call entry and a return entry, in time
 * order, doubly linked so that an operation being linearized can be lifted out of the list
 * and put back on backtrack in O(1) (Porcupine's layout).
 * @module
 */
import { assert } from "../../assert.ts";

/** One call or return in the list. */
export interface Entry {
  /** Index of the operation in its partition. */
  readonly op: number;
  readonly isCall: boolean;
  /** For a call: its return entry; for a return: null. */
  readonly match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** The list: a sentinel head, and each operation's call entry by index. */
export interface EntryList {
  readonly head: Entry;
  readonly calls: readonly Entry[];
}

/**
 * Builds the list from call and return times (return undefined: +∞). Sorted by time; at
 * equal times calls come first, so operations that touch at an instant count as
 * overlapping (the lenient reading of a clock with coarse ticks); ties among calls, and
 * among returns, keep operation order so the layout is deterministic.
 */
export function buildEntries(calls: readonly number[], returns: readonly (number | undefined)[]): EntryList {
  assert(calls.length === returns.length, "one return time per call time");
  type Sortable = { entry: Entry; time: number };
  const sortable: Sortable[] = [];
  const callEntries: Entry[] = [];
  for (let op = 0; op < calls.length; op++) {
    const call = calls[op]!;
    const ret = returns[op];
    assert(Number.isFinite(call), "call times are finite");
    assert(ret === undefined || ret >= call, "an operation returns after its call");
    const returnEntry: Entry = { op, isCall: false, match: null, prev: null, next: null };
    const callEntry: Entry = { op, isCall: true, match: returnEntry, prev: null, next: null };
    callEntries.push(callEntry);
    sortable.push({ entry: callEntry, time: call }, { entry: returnEntry, time: ret ?? Infinity });
  }
  sortable.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.entry.isCall !== b.entry.isCall) return a.entry.isCall ? -1 : 1;
    return a.entry.op - b.entry.op;
  });
  const head: Entry = { op: -1, isCall: false, match: null, prev: null, next: null };
  let last = head;
  for (const { entry } of sortable) {
    entry.prev = last;
    last.next = entry;
    last = entry;
  }
  return { head, calls: callEntries };
}

function unlink(entry: Entry): void {
  const prev = entry.prev!;
  prev.next = entry.next;
  if (entry.next !== null) entry.next.prev = prev;
}

function relink(entry: Entry): void {
  entry.prev!.next = entry;
  if (entry.next !== null) entry.next.prev = entry;
}

/** Takes an operation (its call and its return) out of the list. */
export function lift(call: Entry): void {
  assert(call.isCall, "lift a call entry");
  unlink(call);
  unlink(call.match!);
}

/** Puts back the operation most recently lifted (lifts and unlifts nest like a stack). */
export function unlift(call: Entry): void {
  relink(call.match!);
  relink(call);
}
