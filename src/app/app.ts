/**
 * The application contract: what a chronon application is and what it may see.
 *
 * An application is a deterministic function from (state, event) to (state, effects,
 * reply), applied to the same committed events in the same order on every replica. For
 * the replicas to agree, `apply`, `onEffectResult` and `query` must NOT:
 * - read the clock (`Date.now()`, `new Date()`, `performance.now()`): use `ctx.blockTime`;
 * - draw random numbers (`Math.random()`, `crypto.getRandomValues`, `crypto.randomUUID`):
 *   use `ctx.random()`;
 * - do I/O of any kind (fetch, files, sockets, environment variables, console output that
 *   matters): return an effect instead;
 * - keep state anywhere but in the returned state (module-level variables, closures,
 *   caches that change what is returned);
 * - mutate the event, or keep references to the state after returning;
 * - depend on anything that differs between machines (locale, time zone, runtime version
 *   differences such as `Intl` output or floating-point printing of exotic values).
 *
 * State handling: the state `apply` receives is guarded. It may be mutated in place (the
 * fast path for Maps of accounts) or replaced by a new value; either way, if `apply`
 * throws, every in-place change is undone before the next event, so the state is exactly
 * as before on every replica. Byte arrays (Uint8Array) inside the state are the one
 * exception: replace them, never write into them, because writes into typed arrays cannot
 * be undone. State must be CBOR-encodable (see src/app/value_codec.ts) because it is
 * snapshotted into checkpoints.
 * @module
 */
import type { CustomEffect, Effect, HttpEffect, LogEffect } from "./effects.ts";

/** Where an event came from. */
export type EventOrigin = "client" | "schedule";

/** The committed position and provenance of an event, identical on every replica. */
export interface EventHeader {
  /** The log op of the entry that carried the event (for scheduled events: the tick's op). */
  readonly index: number;
  /** The view in which the entry was prepared. */
  readonly view: number;
  /** Client session id as 32 hex digits; all zeros for scheduled events. */
  readonly client: string;
  /** The client's request number (0 for scheduled events). */
  readonly request: number;
  /** The schema version the client encoded the payload with (the app's own for schedules). */
  readonly schemaVersion: number;
  /** The primary's timestamp of the entry, ms since the epoch (same as `ctx.blockTime`). */
  readonly timestamp: number;
  /** `client` for requests, `schedule` for events fired by a `schedule` effect. */
  readonly origin: EventOrigin;
  /** For scheduled events: the id of the `schedule` effect that fired. */
  readonly scheduledBy?: string;
}

/** One event as `apply` sees it: the header and the decoded CBOR payload. */
export interface Event<P> {
  readonly header: EventHeader;
  readonly payload: P;
}

/** The only sources of time, randomness and position that `apply` may use. */
export interface ApplyContext {
  /** The entry's timestamp (ms since epoch): consensus time, monotonic across views. */
  readonly blockTime: number;
  /** The log op being applied. */
  readonly eventIndex: number;
  /** The view in which the entry was prepared. */
  readonly view: number;
  /** Uniform numbers in [0, 1) from a PRNG seeded by the entry's checksum. */
  random(): number;
}

/** What `apply` returns. */
export interface ApplyResult<S, R, E> {
  /** The new state (the same object, mutated, is fine). */
  readonly state: S;
  /** Effects to record with the event; they happen only if the event commits. */
  readonly effects?: readonly Effect<E>[];
  /** The reply sent to the client (CBOR-encodable). */
  readonly reply?: R;
}

/** The result of an `http` effect: status and (possibly truncated) response body. */
export interface HttpResult {
  readonly status: number;
  /** The response body decoded as UTF-8, cut at the result size limit. */
  readonly body: string;
  /** True when the body was cut. */
  readonly truncated: boolean;
}

/** An outbox effect's outcome, delivered to `onEffectResult` once it is committed. */
export interface EffectResult {
  /** The effect's id (32 hex digits), the same on every attempt and every replica. */
  readonly id: string;
  /** The effect as `apply` returned it. */
  readonly effect: HttpEffect | CustomEffect | LogEffect;
  /** The log op of the event that produced the effect. */
  readonly eventIndex: number;
  /** `acknowledged`: it succeeded; `dead_lettered`: the attempts ran out or it failed permanently. */
  readonly status: "acknowledged" | "dead_lettered";
  /** For `acknowledged`: the HttpResult of an http effect or the value a custom handler returned. */
  readonly value?: unknown;
  /** For `dead_lettered`: the last error. */
  readonly error?: string;
  /** Attempts made by the runner that reported the outcome. */
  readonly attempts: number;
}

/** What `onEffectResult` returns: no reply (nobody waits for one). */
export interface EffectResultOutcome<S, E> {
  readonly state: S;
  readonly effects?: readonly Effect<E>[];
}

/**
 * The definition of an application. Type parameters are inferred: `S` from `genesis`,
 * `P` (event payload, also the payload of scheduled events) from `apply`'s event
 * annotation, `R` from its reply, `Q`/`QR` from `query`.
 */
export interface AppDefinition<S, P, R, Q, QR> {
  /**
   * Version of the event payload and state formats (a positive integer, default 1).
   * Snapshots record it; a restore from another version goes through `restore`.
   */
  readonly schemaVersion?: number;
  /** The initial state of a new cluster. */
  genesis(): S;
  /** Applies one committed event. Throw to reject it (the client gets `rejected`). */
  apply(state: S, event: Event<P>, ctx: ApplyContext): ApplyResult<S, R, P>;
  /** Answers a read-only query. Must not change the state (writes throw). */
  query(state: S, query: Q): QR;
  /** Reacts to an outbox effect's committed outcome (acknowledged or dead-lettered). */
  onEffectResult?(state: S, result: EffectResult, ctx: ApplyContext): EffectResultOutcome<S, P>;
  /** Encodes the state for a checkpoint (default: CBOR of the state value). */
  snapshot?(state: S): Uint8Array;
  /**
   * Rebuilds the state from a checkpoint. `data` is what `snapshot` returned (bytes) or,
   * without `snapshot`, the decoded CBOR state; `schemaVersion` is the version that wrote
   * it. Required to restore a checkpoint of another schema version (upgrade here).
   */
  restore?(data: unknown, schemaVersion: number): S;
}

/** A defined application, as `defineApp` returns it and the kernel runs it. */
export interface App<S = unknown, P = unknown, R = unknown, Q = unknown, QR = unknown>
  extends AppDefinition<S, P, R, Q, QR> {
  readonly schemaVersion: number;
}

/** Largest schema version. */
export const schemaVersionMax = 0xffff_ffff;

/**
 * Defines an application; the value to `export default` from the app module.
 * @example
 * export default defineApp({
 *   genesis: () => ({ counter: 0 }),
 *   apply(state, event: Event<{ add: number }>) {
 *     state.counter += event.payload.add;
 *     return { state, reply: state.counter };
 *   },
 *   query: (state, _q: null) => state.counter,
 * });
 */
export function defineApp<S, P, R, Q, QR>(definition: AppDefinition<S, P, R, Q, QR>): App<S, P, R, Q, QR> {
  const schemaVersion = definition.schemaVersion ?? 1;
  if (!Number.isInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > schemaVersionMax) {
    throw new RangeError(`schemaVersion must be an integer in 1..${schemaVersionMax}, got ${schemaVersion}`);
  }
  if (typeof definition.genesis !== "function") throw new TypeError("defineApp: genesis must be a function");
  if (typeof definition.apply !== "function") throw new TypeError("defineApp: apply must be a function");
  if (typeof definition.query !== "function") throw new TypeError("defineApp: query must be a function");
  if ((definition.snapshot === undefined) !== (definition.restore === undefined) && definition.snapshot !== undefined) {
    throw new TypeError("defineApp: an app with snapshot must also define restore");
  }
  return Object.freeze({ ...definition, schemaVersion });
}
