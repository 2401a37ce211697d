/**
 * What the HTTP API needs from a replica, as an interface the node implements over the
 * replica, the kernel and the bus (and tests implement with a fake). The API validates
 * and decodes every request before calling it; the handle sees only well-formed values.
 *
 * Values (`event`, `reply`, `query`, `result`, channel payloads) are application values
 * as src/app/value_codec.ts encodes them (CBOR with Maps and Sets); the handle encodes
 * them into replica bodies (src/app/wire.ts) and decodes kernel replies.
 *
 * Mapping the replica's and the kernel's errors (src/vsr/replica_api.ts ReplyError,
 * src/app/wire.ts KernelErrorCode) onto {@link ApiErrorCode}, as the node should do:
 *
 * | replica / kernel | API code |
 * |---|---|
 * | not_primary | not_primary (with the primary's API URL) |
 * | session_evicted, session_unknown | session_evicted |
 * | too_large | too_large |
 * | busy, outbox_full, schedule_full, channel_full | unavailable |
 * | stale_request, bad_request, invalid_effect, schema_unsupported, forbidden, unknown_operation | bad_request |
 * | rejected, query_failed | rejected |
 * | not_found, not_dead_lettered | not_found |
 * | no reply before the node's own deadline, or the replica left normal status with the request in flight | timeout |
 * @module
 */
import type { ApiError } from "./errors.ts";

/** An answer: a value, or an error the API passes on as is. */
export type HandleResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ApiError };

/** A validated client request. */
export interface SubmitRequest {
  /** 128-bit session id (registered earlier). */
  readonly session: Uint8Array;
  /** Request number within the session, ≥ 1; a retry repeats the number. */
  readonly request: number;
  /** The event payload for the application's `apply`. */
  readonly event: unknown;
}

/** The committed outcome of a request. */
export interface SubmitReply {
  /** The application's reply value. */
  readonly reply: unknown;
  /** The op at which the request committed. */
  readonly op: number;
  /** Ids of the effects the event produced (32 hex digits each). */
  readonly effects?: readonly string[];
}

/** A validated query. */
export interface QueryRequest {
  readonly query: unknown;
  /** linearizable: confirmed by a quorum round at the primary; stale: this replica's state. */
  readonly consistency: "linearizable" | "stale";
}

/** One page of the outbox. Effects are listed as the kernel describes them. */
export interface EffectListing {
  readonly effects: readonly Readonly<Record<string, unknown>>[];
  /** Pass as `after` for the next page; null on the last page. */
  readonly next: string | null;
}

/** Entries of a channel from a cursor. */
export interface ChannelPage {
  readonly entries: readonly { readonly cursor: number; readonly payload: unknown }[];
  /** The cursor to read from next. */
  readonly next: number;
}

/** A peer's state as the node sees it. */
export interface PeerStatus {
  readonly replica: number;
  readonly connected: boolean;
  /** How many ops the peer is behind this replica's op, when known. */
  readonly lagOps?: number;
}

/** The replica's state for `/v1/status` and `/healthz`. */
export interface NodeStatus {
  readonly cluster: string;
  readonly replica: number;
  readonly replicaCount: number;
  readonly status: "normal" | "view_change" | "recovering";
  readonly view: number;
  readonly op: number;
  readonly commit: number;
  readonly primary: number;
  /** The primary's API base URL, when known. */
  readonly primaryApi?: string;
  readonly peers: readonly PeerStatus[];
}

/**
 * A submit whose event is already CBOR: the binary client port's frames carry it so, and
 * handing the bytes on spares decoding and re-encoding its strings.
 */
export interface EncodedSubmitRequest {
  readonly session: Uint8Array;
  readonly request: number;
  /**
   * The event payload as one CBOR data item (src/app/value_codec.ts). The caller has
   * decoded it once to validate it; the handle may put these bytes into the log as they
   * are (they decode to the same value on every replica).
   */
  readonly eventEncoded: Uint8Array;
}

/** The answer to an {@link EncodedSubmitRequest}: the reply still encoded. */
export interface EncodedSubmitReply {
  /** The application's reply as one CBOR data item, as the kernel encoded it. */
  readonly replyEncoded: Uint8Array;
  /** The op the request committed at. */
  readonly op: number;
}

/** The replica as the HTTP API drives it. */
export interface NodeHandle {
  /** Registers `session` (idempotent for the same id while it is in the client table). */
  registerSession(session: Uint8Array): Promise<HandleResult<{ readonly session: Uint8Array }>>;
  /** Submits one request; a retry with the same session and number gets the stored reply. */
  submit(request: SubmitRequest): Promise<HandleResult<SubmitReply>>;
  /**
   * Optional: {@link submit} with the event and the reply as CBOR, the same semantics
   * and errors (the binary client port uses it when the handle has it).
   */
  submitEncoded?(request: EncodedSubmitRequest): Promise<HandleResult<EncodedSubmitReply>>;
  /** Runs a read-only query. */
  query(query: QueryRequest): Promise<HandleResult<{ readonly result: unknown }>>;
  /** Lists pending or dead-lettered effects, `limit` at most, after the id `after`. */
  listEffects(filter: { readonly status: "pending" | "dead"; readonly after: string | null; readonly limit: number }): Promise<HandleResult<EffectListing>>;
  /** Puts a dead-lettered effect back into the pending outbox (through the log). */
  retryEffect(id: string): Promise<HandleResult<{ readonly id: string }>>;
  /** Reads a channel from `cursor`, `limit` entries at most. */
  readChannel(read: { readonly channel: string; readonly cursor: number; readonly limit: number }): Promise<HandleResult<ChannelPage>>;
  /** The replica's current state. */
  status(): NodeStatus;
  /** Prometheus text of the node's metrics registry. */
  metricsText(): string;
}
