/**
 * The chronon client: fetch-based, so it runs on Node, Bun, Deno and in browsers.
 *
 * - It finds the primary: follows `not_primary` hints, rotates through the addresses on
 *   connection errors, timeouts and `unavailable`, with capped exponential backoff.
 * - It registers a session (a random 128-bit id; registration is idempotent, so it is
 *   retried freely), then numbers requests 1, 2, 3, … within it.
 * - `submit` retries with the SAME request number until a definite answer or the
 *   deadline: the cluster applies a (session, number) at most once and answers retries
 *   from the stored reply, so a retry across a failover is applied once, not twice.
 * - One request is in flight per client (a session's requests are ordered); concurrent
 *   calls queue. Use several clients for concurrency.
 * - Addresses `http(s)://…` use the HTTP API (fetch; browsers too). Addresses
 *   `chronon://host:port` use the binary protocol on the replicas' client ports
 *   (server-side only: Node, Bun, Deno), with the same semantics and errors; clients of
 *   one process share one connection per replica. Call `close()` when done with it.
 * @example
 * const client = new Client<typeof app>({ addresses: ["http://10.0.0.1:8080", "http://10.0.0.2:8080"] });
 * const reply = await client.submit({ type: "deposit", account: "alice", amount: 10 });
 * const balance = await client.query({ account: "alice" }, { consistency: "stale" });
 * @module
 */
import type { App } from "../app/app.ts";
import { decodeValue, encodeValue } from "../app/value_codec.ts";
import {
  BadRequestError, OutcomeUnknownError, RejectedError, SessionEvictedError, TooLargeError,
  UnauthorizedError, UnavailableError,
} from "./errors.ts";
import type { ChrononClientError } from "./errors.ts";

// deno-lint-ignore no-explicit-any
type AnyApp = App<any, any, any, any, any>;
/** The event payload type of an app (what `submit` takes). */
// deno-lint-ignore no-explicit-any
export type EventOf<A> = A extends App<any, infer P, any, any, any> ? P : unknown;
/** The reply type of an app's `apply` (what `submit` resolves to). */
// deno-lint-ignore no-explicit-any
export type ReplyOf<A> = A extends App<any, any, infer R, any, any> ? R : unknown;
/** The query type of an app. */
// deno-lint-ignore no-explicit-any
export type QueryOf<A> = A extends App<any, any, any, infer Q, any> ? Q : unknown;
/** The query result type of an app. */
// deno-lint-ignore no-explicit-any
export type QueryResultOf<A> = A extends App<any, any, any, any, infer QR> ? QR : unknown;

/** Options of a {@link Client}. Times in milliseconds. */
export interface ClientOptions {
  /** API base URLs of the replicas, e.g. "http://10.0.0.1:8080". */
  readonly addresses: readonly string[];
  /** Bearer token, when the cluster requires one. */
  readonly token?: string;
  /** Time one HTTP attempt may take before the next replica is tried. */
  readonly timeoutMs?: number;
  /** Time a whole call (all its attempts) may take. */
  readonly deadlineMs?: number;
  /** Backoff between failed attempts: first delay and cap. */
  readonly backoffMsMin?: number;
  readonly backoffMsMax?: number;
  /** The fetch to use (defaults to globalThis.fetch). */
  readonly fetch?: typeof fetch;
}

/** Defaults of the optional options. */
export const clientDefaults = { timeoutMs: 5_000, deadlineMs: 30_000, backoffMsMin: 10, backoffMsMax: 1_000 } as const;

/** One attempt's result. */
type Attempt =
  | { readonly kind: "ok"; readonly value: unknown }
  | { readonly kind: "error"; readonly code: string; readonly message: string; readonly primary: string | null }
  /** No answer (connection failed, attempt timed out, unreadable answer): the request may have arrived. */
  | { readonly kind: "lost"; readonly message: string };

function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** The value of one hex digit's char code, or -1. */
function hexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

function bytesOfHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const high = hexDigit(hex.charCodeAt(i * 2));
    const low = hexDigit(hex.charCodeAt(i * 2 + 1));
    if (high < 0 || low < 0) throw new RangeError("not a hex string");
    out[i] = (high << 4) | low;
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A client of one chronon cluster, typed from the app definition `A`. */
export class Client<A = AnyApp> {
  private readonly addresses: string[];
  private readonly options: Required<Omit<ClientOptions, "token" | "addresses">> & { token: string | null };
  /** Index of the address tried next (the believed primary). */
  private current = 0;
  /** A primary named by a not_primary hint that is not among `addresses`. */
  private hinted: string | null = null;
  /** not_primary hints followed since the last answer; past the replica count, hints back off too. */
  private hintsFollowed = 0;
  private sessionId: string | null = null;
  /** The last request number used in this session (0 after registration). */
  private requestNumber = 0;
  /** Calls queue behind each other: a session has one request in flight. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Calls started and not yet settled (the one running and those queued behind it). */
  private callsPending = 0;
  /** The session's 16 bytes, kept beside its hex (binary frames carry the bytes). */
  private sessionBytes: { readonly hex: string; readonly bytes: Uint8Array } | null = null;
  /** True when the addresses are chronon:// client ports (binary protocol). */
  private readonly binary: boolean;
  /** Binary connections in use, by address (acquired on first use, released by close()). */
  private readonly connections = new Map<string, import("./binary_transport.ts").BinaryConnection>();
  private transport: typeof import("./binary_transport.ts") | null = null;
  /** True on Node when no fetch was given: HTTP goes through node:http, not undici. */
  private readonly nodeHttp: boolean;
  private nodeTransport: typeof import("./node_http.ts") | null = null;

  constructor(options: ClientOptions) {
    if (options.addresses.length === 0) throw new RangeError("Client: at least one address is required");
    this.addresses = options.addresses.map((a) => a.replace(/\/+$/, ""));
    for (const address of this.addresses) {
      if (!/^(https?|chronon):\/\//.test(address)) throw new RangeError(`Client: address ${address} must start with http://, https:// or chronon://`);
    }
    this.binary = this.addresses[0]!.startsWith("chronon://");
    if (this.addresses.some((address) => address.startsWith("chronon://") !== this.binary)) {
      throw new RangeError("Client: addresses must all be HTTP or all chronon:// (binary protocol)");
    }
    // On Node, without a fetch of the caller's, node:http is used (src/client/node_http.ts).
    const runtime = globalThis as { process?: { versions?: { node?: string } }; Bun?: unknown; Deno?: unknown };
    this.nodeHttp = options.fetch === undefined && runtime.process?.versions?.node !== undefined && runtime.Bun === undefined && runtime.Deno === undefined;
    const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.options = {
      token: options.token ?? null,
      timeoutMs: options.timeoutMs ?? clientDefaults.timeoutMs,
      deadlineMs: options.deadlineMs ?? clientDefaults.deadlineMs,
      backoffMsMin: options.backoffMsMin ?? clientDefaults.backoffMsMin,
      backoffMsMax: options.backoffMsMax ?? clientDefaults.backoffMsMax,
      fetch: fetchFn,
    };
    const o = this.options;
    if (!(o.timeoutMs > 0 && o.deadlineMs > 0 && o.backoffMsMin > 0 && o.backoffMsMin <= o.backoffMsMax)) {
      throw new RangeError("Client: timeoutMs, deadlineMs and backoffMsMin must be positive, backoffMsMin ≤ backoffMsMax");
    }
  }

  /** The session id (32 hex digits) once registered, else null. */
  get session(): string | null {
    return this.sessionId;
  }

  /** The API address the client currently believes is the primary. */
  get primary(): string {
    return this.hinted ?? this.addresses[this.current]!;
  }

  /**
   * Applies one event through the log and resolves with the application's reply.
   * Throws a definite error (RejectedError, SessionEvictedError, TooLargeError,
   * BadRequestError, UnauthorizedError, UnavailableError when no session could be
   * registered) or OutcomeUnknownError when the deadline passed without a definite answer.
   */
  submit(event: EventOf<A>): Promise<ReplyOf<A>> {
    return this.serialize(() => this.submitNow(event));
  }

  /** Runs a read-only query; `linearizable` (default) goes to the primary. */
  query(query: QueryOf<A>, options: { consistency?: "linearizable" | "stale" } = {}): Promise<QueryResultOf<A>> {
    const consistency = options.consistency ?? "linearizable";
    return this.serialize(async () => {
      const deadline = Date.now() + this.options.deadlineMs;
      const value = await this.until(deadline, `/v1/queries?consistency=${consistency}`, { query }, () => new UnavailableError(`no replica answered the query within ${this.options.deadlineMs} ms`));
      return (value as { result: QueryResultOf<A> }).result;
    });
  }

  /** Releases the client's binary connections (HTTP keeps none of its own). */
  close(): void {
    const transport = this.transport;
    if (transport === null) return;
    for (const connection of this.connections.values()) transport.releaseConnection(connection, this.options.token);
    this.connections.clear();
  }

  /** Registers a session now (submit does it on first use). Resolves with its id. */
  register(): Promise<string> {
    return this.serialize(() => this.registerNow(Date.now() + this.options.deadlineMs));
  }

  private serialize<T>(run: () => Promise<T>): Promise<T> {
    // With nothing in flight the call starts now: chaining it on a settled tail would
    // cost a turn and a promise adoption per call (a closed-loop client's every request).
    const result = this.callsPending === 0 ? run() : this.tail.then(run, run);
    this.callsPending++;
    this.tail = result.then(this.callSettled, this.callSettled);
    return result;
  }

  /** Counts a call as settled (one function for all calls: no closure per call). */
  private readonly callSettled = (): void => {
    this.callsPending--;
  };

  private async registerNow(deadline: number): Promise<string> {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const session = hexOf(bytes);
    this.sessionBytes = { hex: session, bytes };
    // Registration is idempotent for one id: retrying it cannot create two sessions.
    await this.until(deadline, "/v1/sessions", { session }, () => new UnavailableError(`no primary registered a session within ${this.options.deadlineMs} ms; nothing was submitted`));
    this.sessionId = session;
    this.requestNumber = 0;
    return session;
  }

  private async submitNow(event: EventOf<A>): Promise<ReplyOf<A>> {
    const deadline = Date.now() + this.options.deadlineMs;
    const session = this.sessionId ?? await this.registerNow(deadline);
    // The number is used up even if the outcome stays unknown: reusing it for another
    // event would be answered with the first event's stored reply.
    this.requestNumber += 1;
    const request = this.requestNumber;
    let attempts = 0;
    let maybeApplied = false;
    let backoffMs = this.options.backoffMsMin;
    for (;;) {
      const now = Date.now();
      if (now >= deadline) {
        throw new OutcomeUnknownError(
          `request ${request} of session ${session}: no definite answer within ${this.options.deadlineMs} ms after ${attempts} attempts; the outcome is UNKNOWN (it may or may not have been applied)`,
          attempts,
        );
      }
      attempts += 1;
      const result = await this.attempt("/v1/requests", { session, request, event }, deadline);
      if (result.kind === "ok") return (result.value as { reply: ReplyOf<A> }).reply;
      if (result.kind === "lost" || result.code === "timeout") maybeApplied = true;
      if (result.kind === "error") {
        if (result.code === "session_evicted") {
          this.sessionId = null;
          if (maybeApplied) {
            throw new OutcomeUnknownError(`request ${request}: the session was evicted after an attempt that may have been applied; the outcome is UNKNOWN`, attempts);
          }
        }
        const definite = this.definiteError(result.code, result.message);
        if (definite !== null) throw definite;
      }
      backoffMs = await this.moveOn(result, backoffMs, deadline);
    }
  }

  /** Repeats an idempotent call (registration, query) until it succeeds or definitely fails. */
  private async until(deadline: number, path: string, body: unknown, onDeadline: () => ChrononClientError): Promise<unknown> {
    let backoffMs = this.options.backoffMsMin;
    for (;;) {
      if (Date.now() >= deadline) throw onDeadline();
      const result = await this.attempt(path, body, deadline);
      if (result.kind === "ok") return result.value;
      if (result.kind === "error") {
        const definite = this.definiteError(result.code, result.message);
        if (definite !== null) throw definite;
      }
      backoffMs = await this.moveOn(result, backoffMs, deadline);
    }
  }

  /** The definite error for an API code, or null when the call should be retried. */
  private definiteError(code: string, message: string): ChrononClientError | null {
    switch (code) {
      case "rejected": return new RejectedError(message);
      case "session_evicted": return new SessionEvictedError(message);
      case "too_large": return new TooLargeError(message);
      case "bad_request": return new BadRequestError(message);
      case "not_found": return new BadRequestError(message);
      case "unauthorized": return new UnauthorizedError(message);
      default: return null; // not_primary, unavailable, timeout, and codes this version does not know
    }
  }

  /** Picks the next replica after a failed attempt and waits; returns the next backoff. */
  private async moveOn(result: Attempt, backoffMs: number, deadline: number): Promise<number> {
    if (result.kind === "error" && result.code === "not_primary" && result.primary !== null && result.primary !== this.primary) {
      // A fresh hint: go there at once, unless hints keep pointing around (stale views).
      this.hintsFollowed += 1;
      let backoffNextMs = backoffMs;
      if (this.hintsFollowed > this.addresses.length) {
        await sleep(Math.max(0, Math.min(backoffMs, deadline - Date.now())));
        backoffNextMs = Math.min(backoffMs * 2, this.options.backoffMsMax);
      }
      const index = this.addresses.indexOf(result.primary.replace(/\/+$/, ""));
      if (index >= 0) {
        this.current = index;
        this.hinted = null;
      } else {
        this.hinted = result.primary.replace(/\/+$/, "");
      }
      return backoffNextMs;
    }
    this.hinted = null;
    this.current = (this.current + 1) % this.addresses.length;
    await sleep(Math.max(0, Math.min(backoffMs, deadline - Date.now())));
    return Math.min(backoffMs * 2, this.options.backoffMsMax);
  }

  /** One attempt against the believed primary, bounded by timeoutMs and the deadline. */
  private attempt(path: string, body: unknown, deadline: number): Promise<Attempt> {
    return this.binary ? this.attemptBinary(path, body, deadline) : this.attemptHttp(path, body, deadline);
  }

  /** One binary-protocol attempt: the same paths and bodies, mapped onto frames. */
  private attemptBinary(path: string, body: unknown, deadline: number): Promise<Attempt> {
    const transport = this.transport;
    if (transport === null) {
      // A literal dynamic import: browsers (HTTP only) never load node:net.
      return import("./binary_transport.ts").then((loaded) => {
        this.transport ??= loaded;
        return this.attemptBinary(path, body, deadline);
      });
    }
    const address = this.primary;
    let connection = this.connections.get(address);
    if (connection === undefined) {
      connection = transport.acquireConnection(address, this.options.token);
      this.connections.set(address, connection);
    }
    const timeoutMs = Math.max(1, Math.min(this.options.timeoutMs, deadline - Date.now()));
    const b = body as { session?: string; request?: number; event?: unknown; query?: unknown };
    let kind: number;
    let args: unknown[];
    if (path === "/v1/requests") {
      kind = 2;
      args = [this.sessionBytesOf(b.session!), b.request, b.event];
    } else if (path === "/v1/sessions") {
      kind = 1;
      args = [this.sessionBytesOf(b.session!)];
    } else {
      kind = 3;
      args = [b.query, path.endsWith("consistency=stale") ? 1 : 0];
    }
    return connection.call(kind, args, timeoutMs).then((result): Attempt => {
      if (result.kind !== "ok") return result;
      this.hintsFollowed = 0;
      const values = result.values;
      if (kind === 2) return { kind: "ok", value: { reply: values[0], op: values[1] } };
      if (kind === 1) return { kind: "ok", value: { session: b.session } };
      return { kind: "ok", value: { result: values[0] } };
    });
  }

  /** The 16 bytes of session `hex`: kept from registration, not parsed per request. */
  private sessionBytesOf(hex: string): Uint8Array {
    const kept = this.sessionBytes;
    if (kept !== null && kept.hex === hex) return kept.bytes;
    return bytesOfHex(hex);
  }

  /** One HTTP attempt against the believed primary, bounded by timeoutMs and the deadline. */
  private async attemptHttp(path: string, body: unknown, deadline: number): Promise<Attempt> {
    const url = this.primary + path;
    const timeoutMs = Math.max(1, Math.min(this.options.timeoutMs, deadline - Date.now()));
    const headers: Record<string, string> = { "content-type": "application/cbor", accept: "application/cbor" };
    if (this.options.token !== null) headers.authorization = `Bearer ${this.options.token}`;
    try {
      const answer = this.nodeHttp ? await this.postNode(url, headers, encodeValue(body), timeoutMs) : await this.postFetch(url, headers, encodeValue(body), timeoutMs);
      const { bytes, status } = answer;
      const type = answer.contentType;
      if (status >= 200 && status < 300) {
        if (type !== "application/cbor") return { kind: "lost", message: `${url}: unexpected content type ${type}` };
        this.hintsFollowed = 0;
        return { kind: "ok", value: decodeValue(bytes) };
      }
      if (type === "application/json") {
        const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { error?: { code?: unknown; message?: unknown; primary?: unknown } };
        const error = parsed.error;
        if (error !== undefined && typeof error.code === "string") {
          return {
            kind: "error",
            code: error.code,
            message: typeof error.message === "string" ? error.message : error.code,
            primary: typeof error.primary === "string" ? error.primary : null,
          };
        }
      }
      // A proxy's error page or similar: the request may have reached the cluster.
      return { kind: "lost", message: `${url}: HTTP ${status}` };
    } catch (error) {
      return { kind: "lost", message: `${url}: ${(error as Error).message}` };
    }
  }

  private async postNode(url: string, headers: Record<string, string>, body: Uint8Array, timeoutMs: number): Promise<{ status: number; contentType: string; bytes: Uint8Array }> {
    // A literal dynamic import: only Node loads node:http.
    const transport = this.nodeTransport ??= await import("./node_http.ts");
    return await transport.post(url, headers, body, timeoutMs);
  }

  private async postFetch(url: string, headers: Record<string, string>, body: Uint8Array, timeoutMs: number): Promise<{ status: number; contentType: string; bytes: Uint8Array }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await this.options.fetch(url, { method: "POST", headers, body: body as Uint8Array<ArrayBuffer>, signal: controller.signal });
      const bytes = new Uint8Array(await response.arrayBuffer());
      const contentType = (response.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      return { status: response.status, contentType, bytes };
    } finally {
      clearTimeout(timer);
    }
  }
}
