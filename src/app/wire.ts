/**
 * Wire formats between clients, drivers and the kernel: the operation numbers the kernel
 * owns (≥ 16, see src/vsr/state_machine.ts) and the CBOR bodies of requests, replies and
 * queries. Shared by the kernel, the client library and the HTTP API.
 *
 * | op | name | from | body | applied as |
 * |---:|---|---|---|---|
 * | 16 | event | client | `[schemaVersion, payload]` | `apply(state, event, ctx)` |
 * | 17 | effect_results | internal (zero client) | `[1, …outcomes as 6 fields each]` (or the older `{ results: EffectOutcome[] }`) | outbox update + `onEffectResult` |
 * | 18 | schedule_tick | internal | `null` | every scheduled event due at the entry's timestamp |
 * | 19 | effect_retry | operator (any) | `{ id }` | a dead-lettered effect back to pending |
 * | 20 | effect_discard | operator (any) | `{ id }` | a dead-lettered effect removed |
 *
 * Every op ≥ 16 other than these is answered with `unknown_operation`.
 * @module
 */
import { decodeValue, encodeValue } from "./value_codec.ts";

/** A client event for `apply`. */
export const operationEvent = 16;
/** Outcomes of outbox effects, submitted by the primary's effect runner. */
export const operationEffectResults = 17;
/** Fires scheduled events whose due time has passed; proposed by the primary. */
export const operationScheduleTick = 18;
/** Operator request: put a dead-lettered effect back into the pending outbox. */
export const operationEffectRetry = 19;
/** Operator request: drop a dead-lettered effect from the outbox. */
export const operationEffectDiscard = 20;

/** Error codes of a kernel reply. Every one is definite: the event was not applied. */
export type KernelErrorCode =
  | "rejected" //           apply (or the query) threw: message is the error's message
  | "bad_request" //        the body is not valid CBOR of the expected shape
  | "invalid_effect" //     apply returned a malformed effect or too many / too large
  | "outbox_full" //        the pending outbox is at its limit; retry after effects drain
  | "schedule_full" //      the schedule queue is at its limit
  | "channel_full" //       too many channels
  | "schema_unsupported" // the event's schema version is newer than the app's
  | "forbidden" //          an internal operation sent by a client
  | "not_found" //          operator request for an effect that is not in the outbox
  | "not_dead_lettered" //  operator retry/discard of an effect that is still pending
  | "unknown_operation"; // an operation number the kernel does not own

/** A kernel reply: the app's reply, or a definite error. */
export type KernelReply<R = unknown> =
  | { readonly ok: true; readonly value: R; readonly effects: readonly string[] }
  | { readonly ok: false; readonly code: KernelErrorCode; readonly message: string };

/** One outcome reported by the effect runner (op 17). */
export interface EffectOutcome {
  /** Effect id, 32 hex digits. */
  readonly id: string;
  /** The retry generation the runner executed (bumped by each operator retry). */
  readonly generation: number;
  readonly status: "acknowledged" | "dead_lettered";
  /** Result value (acknowledged), bounded in size by the runner and the kernel. */
  readonly value?: unknown;
  /** Last error (dead_lettered). */
  readonly error?: string;
  readonly attempts: number;
  /** The runner's view (fencing token), for the record. */
  readonly view: number;
}

/** Encodes a client event body (op 16). */
export function encodeEvent(payload: unknown, schemaVersion = 1): Uint8Array {
  return encodeValue([schemaVersion, payload]);
}

/** Decodes a kernel reply body. */
export function decodeReply<R = unknown>(body: Uint8Array): KernelReply<R> {
  return decodeValue(body) as KernelReply<R>;
}

/** Encodes a reply body (kernel side). */
export function encodeReply(reply: KernelReply): Uint8Array {
  return encodeValue(reply);
}

/** Tag of the flat op-17 body (the first element of the array). */
export const effectResultsFlat = 1;
/** Fields per outcome in the flat op-17 body. */
export const effectResultFields = 6;
/** Status codes in the flat op-17 body. */
export const effectStatusAcknowledged = 0;
export const effectStatusDeadLettered = 1;

/**
 * Encodes the body of op 17, flat: `[1, id, generation, status, attempts, view, detail, …]`
 * with status 0 (acknowledged, detail = value or null) or 1 (dead_lettered, detail = the
 * error). One array and no keys: with a thousand outcomes per entry, the keys of the
 * older `{ results: [{ id, generation, … }] }` form were most of the bytes to write and
 * read. The executor accepts both forms.
 */
export function encodeEffectResults(results: readonly EffectOutcome[]): Uint8Array {
  const flat: unknown[] = new Array<unknown>(1 + results.length * effectResultFields);
  flat[0] = effectResultsFlat;
  let at = 1;
  for (const outcome of results) {
    const acknowledged = outcome.status === "acknowledged";
    flat[at] = outcome.id;
    flat[at + 1] = outcome.generation;
    flat[at + 2] = acknowledged ? effectStatusAcknowledged : effectStatusDeadLettered;
    flat[at + 3] = outcome.attempts;
    flat[at + 4] = outcome.view;
    flat[at + 5] = acknowledged ? (outcome.value === undefined ? null : outcome.value) : (outcome.error ?? null);
    at += effectResultFields;
  }
  return encodeValue(flat);
}

/**
 * Decodes an op-17 body of either form into outcomes (for tools and checkers; the
 * executor reads the flat form in place). Throws TypeError on anything else.
 */
export function decodeEffectResults(body: Uint8Array): EffectOutcome[] {
  const decoded: unknown = decodeValue(body);
  if (Array.isArray(decoded)) {
    if (decoded[0] !== effectResultsFlat || (decoded.length - 1) % effectResultFields !== 0) {
      throw new TypeError(`a flat op-17 body is [${effectResultsFlat}, …${effectResultFields} fields per outcome]`);
    }
    const outcomes: EffectOutcome[] = [];
    for (let at = 1; at < decoded.length; at += effectResultFields) {
      const acknowledged = decoded[at + 2] === effectStatusAcknowledged;
      const detail: unknown = decoded[at + 5];
      outcomes.push({
        id: decoded[at] as string,
        generation: decoded[at + 1] as number,
        status: acknowledged ? "acknowledged" : "dead_lettered",
        ...(acknowledged ? { value: detail } : { error: typeof detail === "string" ? detail : String(detail) }),
        attempts: decoded[at + 3] as number,
        view: decoded[at + 4] as number,
      });
    }
    return outcomes;
  }
  const results = (decoded as { results?: unknown } | null)?.results;
  if (!Array.isArray(results)) throw new TypeError("body must be a flat op-17 array or { results: [...] }");
  return results as EffectOutcome[];
}

/** Encodes the body of op 19 or 20. */
export function encodeEffectId(id: string): Uint8Array {
  return encodeValue({ id });
}

/** Kinds of kernel query, the first element of a query body. */
export const queryApp = 0;
/** Lists outbox effects: `[1, { status, after?, limit? }]`. */
export const queryEffects = 1;
/** Reads a channel from a cursor: `[2, { channel, cursor, limit? }]`. */
export const queryChannel = 2;
/** Kernel counters: `[3]`. */
export const queryStatus = 3;

/** Encodes a query for the app's `query`. */
export function encodeAppQuery(query: unknown): Uint8Array {
  return encodeValue([queryApp, query]);
}

/** Encodes an outbox listing query (`pending` or `dead_lettered`), paged by effect id. */
export function encodeEffectsQuery(status: "pending" | "dead_lettered", after?: string, limit?: number): Uint8Array {
  return encodeValue([queryEffects, { status, after: after ?? null, limit: limit ?? null }]);
}

/** Encodes a channel read from `cursor` (the sequence number of the first entry wanted). */
export function encodeChannelQuery(channel: string, cursor: number, limit?: number): Uint8Array {
  return encodeValue([queryChannel, { channel, cursor, limit: limit ?? null }]);
}

/** Encodes a kernel status query. */
export function encodeStatusQuery(): Uint8Array {
  return encodeValue([queryStatus]);
}

/** Decodes any query answer. */
export function decodeQueryResult<T = unknown>(body: Uint8Array): T {
  return decodeValue(body) as T;
}
