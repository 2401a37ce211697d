/**
 * Client histories for the linearizability checker, in two forms:
 *
 * - operations ({@link Operation}): one record per operation with its call time and its
 *   return time; this is what {@link check} takes;
 * - events ({@link HistoryEvent}): what clients record as they go, Jepsen-style: an
 *   `invoke` when an operation starts, then `ok` (it completed with an output), `fail` (it
 *   certainly did not take effect) or `info` (its outcome is unknown).
 *
 * An operation of unknown outcome (`info`, or no completion at all: a timeout, a crash)
 * has `return: undefined`: it may take effect at any instant after its call, or never.
 * A failed operation is dropped: it cannot have changed anything, and what it observed
 * is not a result.
 * @module
 */

/** One operation of a history. */
export interface Operation<I = unknown, O = unknown> {
  /** The client (Jepsen's process) that ran it; a client has one operation open at a time. */
  readonly client: number;
  /** What the client asked for (model-specific). */
  readonly input: I;
  /** What it returned; undefined when the outcome is unknown. */
  readonly output?: O | undefined;
  /** Invocation time in any monotonic unit (ticks, ns, line numbers). */
  readonly call: number;
  /** Return time (at least `call`); undefined when the outcome is unknown. */
  readonly return: number | undefined;
}

/** One raw event as a client records it; `time` is in the same unit as {@link Operation}. */
export type HistoryEvent<I = unknown, O = unknown> =
  | { readonly kind: "invoke"; readonly client: number; readonly time: number; readonly input: I }
  | { readonly kind: "ok"; readonly client: number; readonly time: number; readonly output: O }
  | { readonly kind: "fail"; readonly client: number; readonly time: number }
  | { readonly kind: "info"; readonly client: number; readonly time: number };

/** A history that cannot be turned into operations (or written), naming where and why. */
export class HistoryError extends Error {
  override readonly name = "HistoryError";
}

/** Names event `index` in error messages; parsers pass one that names the file line. */
export type EventLocator = (index: number, event: HistoryEvent<unknown, unknown>) => string;

const locateByIndex: EventLocator = (index, event) => `event ${index} (time ${event.time})`;

/**
 * Pairs each invocation with its client's next completion. `ok` gives the output, `fail`
 * drops the operation, `info` or no completion at all leaves the outcome unknown.
 * Throws {@link HistoryError} when a client invokes with an operation open, completes an
 * operation it never invoked, or time runs backwards.
 *
 * @example
 * ```ts
 * const ops = operationsFromEvents([
 *   { kind: "invoke", client: 1, time: 1, input: { f: "write", value: 3 } },
 *   { kind: "ok", client: 1, time: 2, output: "ok" },
 * ]); // [{ client: 1, input: {...}, output: "ok", call: 1, return: 2 }]
 * ```
 */
export function operationsFromEvents<I, O>(
  events: readonly HistoryEvent<I, O>[],
  locate: EventLocator = locateByIndex,
): Operation<I, O>[] {
  const open = new Map<number, { input: I; call: number }>();
  const operations: Operation<I, O>[] = [];
  let timeLast = -Infinity;
  events.forEach((event, index) => {
    const where = () => locate(index, event);
    if (!Number.isFinite(event.time)) throw new HistoryError(`${where()}: time ${event.time} is not a finite number`);
    if (event.time < timeLast) throw new HistoryError(`${where()}: time ${event.time} is before the previous event's ${timeLast}`);
    timeLast = event.time;
    if (event.kind === "invoke") {
      if (open.has(event.client)) {
        throw new HistoryError(`${where()}: client ${event.client} invokes while its previous operation is still open`);
      }
      open.set(event.client, { input: event.input, call: event.time });
      return;
    }
    const started = open.get(event.client);
    if (started === undefined) {
      throw new HistoryError(`${where()}: client ${event.client} completes (${event.kind}) an operation it never invoked`);
    }
    open.delete(event.client);
    if (event.kind === "ok") {
      operations.push({ client: event.client, input: started.input, output: event.output, call: started.call, return: event.time });
    } else if (event.kind === "info") {
      operations.push({ client: event.client, input: started.input, call: started.call, return: undefined });
    }
    // fail: it did not take effect; nothing to check.
  });
  // Still open at the end: outcome unknown, like info. Map order is invocation order.
  for (const [client, started] of open) operations.push({ client, input: started.input, call: started.call, return: undefined });
  return operations;
}

/**
 * The event form of `operations`, in time order: an `invoke` at each call, an `ok` at each
 * return, and, for an operation of unknown outcome, an `info` just before its client's next
 * invocation (or at the end). At equal times completions come before invocations.
 * `operationsFromEvents(eventsFromOperations(ops))` gives `ops` back (in call order).
 */
export function eventsFromOperations<I, O>(operations: readonly Operation<I, O>[]): HistoryEvent<I, O>[] {
  type Timed = { event: HistoryEvent<I, O>; order: number; seq: number };
  const timed: Timed[] = [];
  const byClient = new Map<number, Operation<I, O>[]>();
  let timeMax = -Infinity;
  for (const op of operations) {
    const list = byClient.get(op.client);
    if (list === undefined) byClient.set(op.client, [op]);
    else list.push(op);
    timeMax = Math.max(timeMax, op.call, op.return ?? -Infinity);
  }
  for (const [client, list] of byClient) {
    list.sort((a, b) => a.call - b.call);
    list.forEach((op, index) => {
      const seq = timed.length;
      timed.push({ event: { kind: "invoke", client, time: op.call, input: op.input }, order: 1, seq });
      if (op.return !== undefined) {
        if (op.return < op.call) throw new HistoryError(`client ${client}: an operation returns at ${op.return} before its call at ${op.call}`);
        timed.push({ event: { kind: "ok", client, time: op.return, output: op.output as O }, order: 0, seq: seq + 1 });
      } else {
        const next = list[index + 1];
        timed.push({ event: { kind: "info", client, time: next === undefined ? timeMax : next.call }, order: 0, seq: seq + 1 });
      }
    });
  }
  timed.sort((a, b) => a.event.time - b.event.time || a.order - b.order || a.seq - b.seq);
  return timed.map((t) => t.event);
}
