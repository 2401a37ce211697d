/**
 * Client histories for the linearizability checker: each operation with the time it was
 * invoked and the time it returned. An operation whose outcome is unknown (a timeout, a
 * crash, Jepsen's `:info`) returns at +Infinity: it may take effect at any point after its
 * invocation, or never. Operations that certainly did not take effect (`:fail`) are left
 * out of the history altogether.
 * @module
 */

/** One operation of a history. */
export interface Operation<I = unknown, O = unknown> {
  /** The client (Jepsen's process) that ran it; a client has one operation open at a time. */
  readonly client: number;
  readonly input: I;
  /** The result, or undefined when the outcome is unknown. */
  readonly output: O | undefined;
  /** Invocation time (any monotonic unit: ticks, ms, line numbers). */
  readonly call: number;
  /** Return time; Infinity when the outcome is unknown. */
  readonly return: number;
}

/** One raw event as clients record them. */
export type HistoryEvent<I = unknown, O = unknown> =
  | { readonly kind: "invoke"; readonly client: number; readonly input: I; readonly time: number }
  | { readonly kind: "ok"; readonly client: number; readonly output: O; readonly time: number }
  | { readonly kind: "fail"; readonly client: number; readonly time: number }
  | { readonly kind: "info"; readonly client: number; readonly time: number };

/** A history that cannot be turned into operations, with the event at fault. */
export class HistoryError extends Error {
  override readonly name = "HistoryError";
}

/**
 * Pairs invocations with their completions. `ok` completes with an output, `fail` drops the
 * operation, `info` (or no completion at all) leaves its outcome unknown.
 */
export function operationsFromEvents<I, O>(events: readonly HistoryEvent<I, O>[]): Operation<I, O>[] {
  const open = new Map<number, { input: I; call: number }>();
  const operations: Operation<I, O>[] = [];
  events.forEach((event, index) => {
    if (event.kind === "invoke") {
      if (open.has(event.client)) throw new HistoryError(`event ${index}: client ${event.client} invokes while an operation is open`);
      open.set(event.client, { input: event.input, call: event.time });
      return;
    }
    const started = open.get(event.client);
    if (started === undefined) throw new HistoryError(`event ${index}: client ${event.client} completes an operation it never invoked`);
    open.delete(event.client);
    if (event.time < started.call) throw new HistoryError(`event ${index}: completion before invocation`);
    if (event.kind === "ok") operations.push({ client: event.client, input: started.input, output: event.output, call: started.call, return: event.time });
    else if (event.kind === "info") operations.push({ client: event.client, input: started.input, output: undefined, call: started.call, return: Infinity });
  });
  for (const [client, started] of open) operations.push({ client, input: started.input, output: undefined, call: started.call, return: Infinity });
  return operations;
}
