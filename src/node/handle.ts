/**
 * The node's side of the HTTP API: turns validated API calls into replica requests and
 * queries, routes the replica's replies back to the waiting callers, and maps the
 * replica's and the kernel's errors onto the API's stable codes (the table in
 * src/api/node_handle.ts).
 * @module
 */
import { assert } from "../assert.ts";
import type { ApiError } from "../api/errors.ts";
import type {
  ChannelPage, EffectListing, EncodedSubmitReply, EncodedSubmitRequest, HandleResult, NodeHandle, NodeStatus, QueryRequest,
  SubmitReply, SubmitRequest,
} from "../api/node_handle.ts";
import { decodeValue, encodeValue } from "../app/value_codec.ts";
import {
  decodeQueryResult, decodeReply, encodeAppQuery, encodeChannelQuery, encodeEffectId, encodeEffectsQuery, encodeEvent,
  encodeReply, operationEffectRetry, operationEvent,
} from "../app/wire.ts";
import { cborItemEnd } from "../codec/cbor_item.ts";
import type { KernelErrorCode } from "../app/wire.ts";
import type { ClientReply, ClientQuery, ClientRequest, ReplyError } from "../vsr/replica_api.ts";

/** Replies a node waits for at once; past this, requests answer `unavailable`. */
export const pendingRepliesMax = 16_384;
/** Operation number of a session registration (request 0), one of the replica's own (0..15). */
export const operationRegister = 1;
/** The all-zero client id of internal operations (effect results, operator requests). */
export const clientInternal = new Uint8Array(16);

/** What the handle needs from the node around it. */
export interface HandleHost {
  /** Hands a request to the replica (then the node pumps its outputs). */
  request(request: ClientRequest): void;
  /** Hands a query to the replica. */
  query(query: ClientQuery): void;
  /** The node's status for /v1/status. */
  status(): NodeStatus;
  /** The API base URL of replica `index`. */
  apiUrl(index: number): string;
  /** Prometheus text. */
  metricsText(): string;
  /** Milliseconds now (for reply deadlines). */
  nowMs(): number;
}

interface Waiter {
  readonly resolve: (reply: ClientReply | null) => void;
  readonly deadlineMs: number;
}

/** Maps a replica error onto an API error. */
export function replicaError(reply: ClientReply, apiUrl: (index: number) => string): ApiError {
  const error = reply.error as ReplyError;
  const message = reply.message ?? error;
  switch (error) {
    case "not_primary":
      return reply.primary >= 0 ? { code: "not_primary", message, primary: apiUrl(reply.primary) } : { code: "unavailable", message: "no primary known (view change in progress)" };
    case "session_evicted":
    case "session_unknown":
      return { code: "session_evicted", message };
    case "too_large":
      return { code: "too_large", message };
    case "busy":
      return { code: "unavailable", message };
    case "stale_request":
      return { code: "bad_request", message };
    case "query_failed":
      return { code: "rejected", message };
    default:
      return { code: "unavailable", message };
  }
}

/** Maps a kernel error code onto an API error. */
export function kernelError(code: KernelErrorCode, message: string): ApiError {
  switch (code) {
    case "rejected":
      return { code: "rejected", message };
    case "outbox_full":
    case "schedule_full":
    case "channel_full":
      return { code: "unavailable", message };
    case "not_found":
    case "not_dead_lettered":
      return { code: "not_found", message };
    default:
      return { code: "bad_request", message };
  }
}

/**
 * How src/app/wire.ts lays out the bodies the encoded submit path splices, learned from
 * the codec itself at load (so a change there disables the splice, never corrupts it):
 * an event body is `[1, event]`, an ok reply `{ok: true, value: …, effects: […]}`.
 */
const bodyLayout = (() => {
  const event = encodeEvent(null);
  const eventPrefix = event.subarray(0, event.length - 1);
  const reply = encodeReply({ ok: true, value: null, effects: [] });
  const nullAt = reply.indexOf(0xf6);
  const okValuePrefix = reply.subarray(0, nullAt);
  const effectsKey = reply.subarray(nullAt + 1, reply.length - 1);
  const sound = event[event.length - 1] === 0xf6 && reply[reply.length - 1] === 0x80 && nullAt > 0 &&
    cborItemEnd(effectsKey, 0) === effectsKey.length;
  return sound ? { eventPrefix, okValuePrefix, effectsKey } : null;
})();

/** True when `bytes` holds `prefix` at `at`. */
function hasAt(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (bytes.length - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

/** Implements the API's NodeHandle over a replica. */
export class ReplicaHandle implements NodeHandle {
  readonly #host: HandleHost;
  readonly #waiters = new Map<number, Waiter>();
  readonly #replyTimeoutMs: number;
  #tokenNext = 1;

  /** A handle over `host`; replies not received within `replyTimeoutMs` answer `timeout`. */
  constructor(host: HandleHost, replyTimeoutMs: number) {
    this.#host = host;
    this.#replyTimeoutMs = replyTimeoutMs;
  }

  /** Replies waited for right now. */
  get pending(): number {
    return this.#waiters.size;
  }

  /** Delivers a replica reply to its waiter (unknown tokens are late replies: dropped). */
  deliver(reply: ClientReply): void {
    const waiter = this.#waiters.get(reply.token);
    if (waiter === undefined) return;
    this.#waiters.delete(reply.token);
    waiter.resolve(reply);
  }

  /** Gives up on replies past their deadline (their outcome is unknown). Call every tick. */
  expire(): void {
    const now = this.#host.nowMs();
    for (const [token, waiter] of this.#waiters) {
      if (waiter.deadlineMs <= now) {
        this.#waiters.delete(token);
        waiter.resolve(null);
      }
    }
  }

  /** Answers every waiter with `timeout` (the node is stopping). */
  abandonAll(): void {
    for (const waiter of this.#waiters.values()) waiter.resolve(null);
    this.#waiters.clear();
  }

  #wait(send: (token: number) => void): Promise<ClientReply | null> | null {
    if (this.#waiters.size >= pendingRepliesMax) return null;
    const token = this.#tokenNext++;
    assert(Number.isSafeInteger(token), "reply tokens stay safe integers");
    const promise = new Promise<ClientReply | null>((resolve) => {
      this.#waiters.set(token, { resolve, deadlineMs: this.#host.nowMs() + this.#replyTimeoutMs });
    });
    try {
      send(token);
    } catch (error) {
      // Nothing reached the replica: no reply will come for this token.
      this.#waiters.delete(token);
      throw error;
    }
    return promise;
  }

  /**
   * Submits a request and resolves to the replica's reply, or an API error. One promise
   * (the waiter's) and one reaction per request: every layer of async functions around
   * it cost a promise and a turn per request.
   */
  #call(client: Uint8Array, request: number, operation: number, body: Uint8Array): Promise<HandleResult<{ body: Uint8Array; op: number }>> {
    let waiting: Promise<ClientReply | null> | null;
    try {
      waiting = this.#wait((token) => this.#host.request({ client, request, operation, body, token }));
    } catch (error) {
      // As from an async function: the caller sees a rejection, never a throw.
      return Promise.reject(error);
    }
    if (waiting === null) return Promise.resolve({ ok: false, error: { code: "unavailable", message: "too many requests waiting for replies" } });
    return waiting.then(this.#callResultOf);
  }

  /** {@link #callResult} as one function for every request (no closure per call). */
  readonly #callResultOf = (reply: ClientReply | null): HandleResult<{ body: Uint8Array; op: number }> => this.#callResult(reply);

  /** The API result of a request's reply (null: none in time). */
  #callResult(reply: ClientReply | null): HandleResult<{ body: Uint8Array; op: number }> {
    if (reply === null) return { ok: false, error: { code: "timeout", message: "no reply in time: the request may or may not have been applied" } };
    if (reply.error !== undefined) return { ok: false, error: replicaError(reply, (i) => this.#host.apiUrl(i)) };
    assert(reply.body !== undefined, "a successful reply has a body");
    return { ok: true, value: { body: reply.body, op: reply.op ?? 0 } };
  }

  async #query(body: Uint8Array, mode: "linearizable" | "stale"): Promise<HandleResult<unknown>> {
    const waiting = this.#wait((token) => this.#host.query({ body, mode, token }));
    if (waiting === null) return { ok: false, error: { code: "unavailable", message: "too many queries waiting" } };
    const reply = await waiting;
    if (reply === null) return { ok: false, error: { code: "timeout", message: "no answer in time" } };
    if (reply.error !== undefined) return { ok: false, error: replicaError(reply, (i) => this.#host.apiUrl(i)) };
    assert(reply.body !== undefined, "a successful query has a body");
    try {
      return { ok: true, value: decodeQueryResult(reply.body) };
    } catch (error) {
      return { ok: false, error: { code: "rejected", message: (error as Error).message } };
    }
  }

  /** Submits an internal operation (zero client id); resolves once committed and applied. */
  async submitInternal(operation: number, body: Uint8Array): Promise<void> {
    const result = await this.#call(clientInternal, 0, operation, body);
    if (!result.ok) throw new Error(`internal operation ${operation}: ${result.error.code}: ${result.error.message}`);
    const reply = decodeReply(result.value.body);
    if (!reply.ok && reply.code !== "not_found" && reply.code !== "not_dead_lettered") {
      throw new Error(`internal operation ${operation} refused: ${reply.code}: ${reply.message}`);
    }
  }

  async registerSession(session: Uint8Array): Promise<HandleResult<{ readonly session: Uint8Array }>> {
    const result = await this.#call(session, 0, operationRegister, new Uint8Array(0));
    return result.ok ? { ok: true, value: { session } } : result;
  }

  submit(request: SubmitRequest): Promise<HandleResult<SubmitReply>> {
    let body: Uint8Array;
    try {
      body = encodeEvent(request.event);
    } catch (error) {
      // As from an async function: the caller sees a rejection, never a throw.
      return Promise.reject(error);
    }
    return this.#call(request.session, request.request, operationEvent, body).then((result): HandleResult<SubmitReply> => {
      if (!result.ok) return result;
      const reply = decodeReply(result.value.body);
      if (!reply.ok) return { ok: false, error: kernelError(reply.code, reply.message) };
      return { ok: true, value: { reply: reply.value, op: result.value.op, effects: reply.effects } };
    });
  }

  /**
   * {@link submit} with the event and the reply as CBOR: the event's bytes go into the
   * body behind the `[1, …]` envelope, and an ok reply's value is cut out of the kernel's
   * reply body, neither decoded nor re-encoded here (other replies are decoded as usual).
   */
  submitEncoded(request: EncodedSubmitRequest): Promise<HandleResult<EncodedSubmitReply>> {
    let body: Uint8Array;
    try {
      if (bodyLayout === null) {
        body = encodeEvent(decodeValue(request.eventEncoded));
      } else {
        body = new Uint8Array(bodyLayout.eventPrefix.length + request.eventEncoded.length);
        body.set(bodyLayout.eventPrefix);
        body.set(request.eventEncoded, bodyLayout.eventPrefix.length);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#call(request.session, request.request, operationEvent, body).then((result): HandleResult<EncodedSubmitReply> => {
      if (!result.ok) return result;
      const replyBody = result.value.body;
      const op = result.value.op;
      if (bodyLayout !== null && hasAt(replyBody, 0, bodyLayout.okValuePrefix)) {
        const valueAt = bodyLayout.okValuePrefix.length;
        const valueEnd = cborItemEnd(replyBody, valueAt);
        // The third and last key is "effects": the value cut out is the one the map holds.
        if (valueEnd > 0 && hasAt(replyBody, valueEnd, bodyLayout.effectsKey)) {
          return { ok: true, value: { replyEncoded: replyBody.subarray(valueAt, valueEnd), op } };
        }
      }
      const reply = decodeReply(replyBody);
      if (!reply.ok) return { ok: false, error: kernelError(reply.code, reply.message) };
      return { ok: true, value: { replyEncoded: encodeValue(reply.value), op } };
    });
  }

  async query(query: QueryRequest): Promise<HandleResult<{ readonly result: unknown }>> {
    const result = await this.#query(encodeAppQuery(query.query), query.consistency);
    return result.ok ? { ok: true, value: { result: result.value } } : result;
  }

  async listEffects(filter: { readonly status: "pending" | "dead"; readonly after: string | null; readonly limit: number }): Promise<HandleResult<EffectListing>> {
    const status = filter.status === "dead" ? "dead_lettered" : "pending";
    const result = await this.#query(encodeEffectsQuery(status, filter.after ?? undefined, filter.limit), "linearizable");
    if (!result.ok) return result;
    const page = result.value as { items: Record<string, unknown>[]; next: string | null };
    return { ok: true, value: { effects: page.items, next: page.next } };
  }

  async retryEffect(id: string): Promise<HandleResult<{ readonly id: string }>> {
    const result = await this.#call(clientInternal, 0, operationEffectRetry, encodeEffectId(id));
    if (!result.ok) return result;
    const reply = decodeReply(result.value.body);
    if (!reply.ok) return { ok: false, error: kernelError(reply.code, reply.message) };
    return { ok: true, value: { id } };
  }

  async readChannel(read: { readonly channel: string; readonly cursor: number; readonly limit: number }): Promise<HandleResult<ChannelPage>> {
    const result = await this.#query(encodeChannelQuery(read.channel, read.cursor, read.limit), "linearizable");
    if (!result.ok) return result;
    const page = result.value as { entries: { seq: number; payload: unknown }[]; next: number };
    return { ok: true, value: { entries: page.entries.map((e) => ({ cursor: e.seq, payload: e.payload })), next: page.next } };
  }

  status(): NodeStatus {
    return this.#host.status();
  }

  metricsText(): string {
    return this.#host.metricsText();
  }
}
