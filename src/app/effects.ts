/**
 * Effects are data. `apply` returns them; the kernel gives each a deterministic id and
 * either applies it to replicated state at once (`emit`, `schedule`) or puts it in the
 * replicated outbox for the primary's effect runner to execute (`http`, `log`, custom
 * kinds). Constructing an effect does nothing by itself.
 *
 * Every field must be CBOR-encodable (strings, numbers, booleans, null, byte arrays,
 * arrays, plain objects, Maps, Sets) because the outbox is part of the replicated state.
 * @module
 */

/** HTTP methods an `http` effect may use. */
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** Log levels of a `log` effect. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** A webhook call, executed by the primary with the effect id as idempotency key. */
export interface HttpEffect {
  readonly kind: "http";
  readonly url: string;
  readonly method: HttpMethod;
  /** Extra request headers; the runner adds `Idempotency-Key`, `webhook-id`, `chronon-view`. */
  readonly headers: Readonly<Record<string, string>>;
  /** A string or bytes are sent as is; any other value is sent as JSON. */
  readonly body: unknown;
  /** Time allowed for one attempt (connect, send, read the response). */
  readonly timeoutMs: number;
}

/** An append to a durable named channel, applied to replicated state with the event. */
export interface EmitEffect<P = unknown> {
  readonly kind: "emit";
  readonly channel: string;
  readonly payload: P;
}

/** An event applied once consensus time passes `blockTime + delayMs`. */
export interface ScheduleEffect<P = unknown> {
  readonly kind: "schedule";
  readonly delayMs: number;
  readonly event: P;
}

/** A line written by the primary's logger once (the outbox makes it survive failover). */
export interface LogEffect {
  readonly kind: "log";
  readonly level: LogLevel;
  readonly message: string;
}

/** An effect of a kind the node handles with a function it was started with. */
export interface CustomEffect<K extends string = string, D = unknown> {
  readonly kind: "custom";
  /** Name of the handler (e.g. "email"). */
  readonly type: K;
  readonly data: D;
}

/** Any effect `apply` may return; `E` is the app's scheduled-event payload type. */
export type Effect<E = unknown> =
  | HttpEffect
  | EmitEffect
  | ScheduleEffect<E>
  | LogEffect
  | CustomEffect;

/** Default time allowed for one HTTP attempt. */
export const httpTimeoutMsDefault = 10_000;
/** Upper bound on an HTTP attempt's timeout. */
export const httpTimeoutMsMax = 120_000;

/** Options of {@link http}. */
export interface HttpOptions {
  readonly method?: HttpMethod;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly timeoutMs?: number;
}

/**
 * A webhook: `url` is called by the primary until it answers 2xx (or a permanent 4xx,
 * or the attempts run out). Each attempt carries the effect id in `Idempotency-Key` and
 * `webhook-id`, and the view in `chronon-view` as a fencing token.
 * @example
 * return { state, effects: [http("https://example.com/hook", { body: { paid: 10 } })] };
 */
export function http(url: string, options: HttpOptions = {}): HttpEffect {
  return {
    kind: "http",
    url,
    method: options.method ?? "POST",
    headers: options.headers ?? {},
    body: options.body ?? null,
    timeoutMs: options.timeoutMs ?? httpTimeoutMsDefault,
  };
}

/**
 * Appends `payload` to the durable channel `channel`, read by consumers with a cursor.
 * @example
 * return { state, effects: [emit("transfers", { from, to, amount })] };
 */
export function emit<P>(channel: string, payload: P): EmitEffect<P> {
  return { kind: "emit", channel, payload };
}

/**
 * Applies `event` (a payload of the app's own event type) once consensus time passes
 * `ctx.blockTime + delayMs`. The scheduled event reaches `apply` with `origin: "schedule"`.
 * @example
 * return { state, effects: [schedule(30 * 24 * 3600_000, { type: "monthly_fee" })] };
 */
export function schedule<E>(delayMs: number, event: E): ScheduleEffect<E> {
  return { kind: "schedule", delayMs, event };
}

/**
 * A log line written once by the primary (never by every replica).
 * @example
 * return { state, effects: [log("info", `account ${id} opened`)] };
 */
export function log(level: LogLevel, message: string): LogEffect {
  return { kind: "log", level, message };
}

/**
 * An effect handled by the function registered for `type` when the node starts; the
 * handler receives the data, the effect id and the fencing view.
 * @example
 * return { state, effects: [custom("email", { to, subject })] };
 */
export function custom<K extends string, D>(type: K, data: D): CustomEffect<K, D> {
  return { kind: "custom", type, data };
}
