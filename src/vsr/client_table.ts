/**
 * Client sessions, part of the replicated state: every replica changes the table only in
 * commit order, so all agree on it, and it travels in checkpoints and state transfers.
 *
 * A session remembers the latest committed request number and its reply, so a retried
 * request is answered from the stored reply and never applied twice. The table holds at
 * most `sessionsMax` sessions; registering one more evicts the session committed least
 * recently (ties broken by client id), decided in commit order, so every replica evicts
 * the same one. Evicted ids are remembered (bounded) so a late client gets the definite
 * `session_evicted` instead of `session_unknown`.
 * @module
 */
import { decode as cborDecode, encode as cborEncode } from "cborg";
import { assert, assertCount } from "../assert.ts";
import { evictedRememberedMax } from "./constants.ts";
import type { ReplyError } from "./replica_api.ts";

/** The stored outcome of a session's latest committed request. */
export interface StoredReply {
  readonly body?: Uint8Array;
  readonly error?: ReplyError;
}

/** One client session. */
export interface Session {
  readonly client: Uint8Array;
  /** Latest committed request number (0 right after registration). */
  request: number;
  /** Op at which the latest request committed: the eviction order. */
  commitOp: number;
  /** The reply to `request`. */
  reply: StoredReply;
}

/** What the table says about a request arriving (before it is prepared). */
export type SessionCheck =
  | { readonly kind: "new" }
  | { readonly kind: "duplicate"; readonly reply: StoredReply; readonly op: number }
  | { readonly kind: "error"; readonly error: ReplyError; readonly message: string };

/** Two hex digits of every byte value (clientKey runs several times per request). */
const hexOfByte: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** Hex of a 16-byte id, the table key. */
export function clientKey(client: Uint8Array): string {
  let out = "";
  for (let i = 0; i < client.length; i++) out += hexOfByte[client[i]!]!;
  return out;
}

/** True for the all-zero client id of internal operations (no session). */
export function isInternalClient(client: Uint8Array): boolean {
  for (const byte of client) if (byte !== 0) return false;
  return true;
}

/** The replicated client table. */
export class ClientTable {
  readonly sessionsMax: number;
  readonly #sessions = new Map<string, Session>();
  /** Evicted client keys in eviction order (oldest first), at most evictedRememberedMax. */
  readonly #evicted: string[] = [];
  readonly #evictedSet = new Set<string>();

  /** Creates an empty table holding at most `sessionsMax` sessions. */
  constructor(sessionsMax: number) {
    assert(Number.isSafeInteger(sessionsMax) && sessionsMax >= 1, "clientSessionsMax is at least 1");
    this.sessionsMax = sessionsMax;
  }

  /** Number of live sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The session of `client`, if registered and not evicted. */
  get(client: Uint8Array): Session | undefined {
    return this.#sessions.get(clientKey(client));
  }

  /** Classifies a request against the committed table (the primary's filter before prepare). */
  check(client: Uint8Array, request: number): SessionCheck {
    assertCount(request, "request number");
    const key = clientKey(client);
    const session = this.#sessions.get(key);
    if (request === 0) {
      if (session === undefined) return { kind: "new" };
      if (session.request === 0) return { kind: "duplicate", reply: session.reply, op: session.commitOp };
      return { kind: "error", error: "stale_request", message: "session already registered and in use" };
    }
    if (session === undefined) return this.#missing(key);
    if (request === session.request) return { kind: "duplicate", reply: session.reply, op: session.commitOp };
    if (request < session.request) {
      return { kind: "error", error: "stale_request", message: `request ${request} < latest ${session.request}` };
    }
    return { kind: "new" };
  }

  #missing(key: string): SessionCheck {
    if (this.#evictedSet.has(key)) {
      return { kind: "error", error: "session_evicted", message: "session was evicted: register again" };
    }
    return { kind: "error", error: "session_unknown", message: "no such session: register first" };
  }

  /** Registers `client` at commit `op`, evicting the least recently committed session if full. */
  register(client: Uint8Array, op: number): void {
    const key = clientKey(client);
    assert(!this.#sessions.has(key), "register only a new session");
    if (this.#sessions.size === this.sessionsMax) this.#evictOldest();
    assert(this.#sessions.size < this.sessionsMax, "room for the new session");
    if (this.#evictedSet.delete(key)) this.#evicted.splice(this.#evicted.indexOf(key), 1);
    this.#sessions.set(key, { client: client.slice(), request: 0, commitOp: op, reply: { body: new Uint8Array(0) } });
  }

  #evictOldest(): void {
    let oldestKey: string | null = null;
    let oldest: Session | null = null;
    for (const [key, session] of this.#sessions) {
      if (
        oldest === null || session.commitOp < oldest.commitOp ||
        (session.commitOp === oldest.commitOp && key < oldestKey!)
      ) {
        oldest = session;
        oldestKey = key;
      }
    }
    assert(oldestKey !== null, "a full table has an oldest session");
    this.#sessions.delete(oldestKey);
    this.#evicted.push(oldestKey);
    this.#evictedSet.add(oldestKey);
    if (this.#evicted.length > evictedRememberedMax) this.#evictedSet.delete(this.#evicted.shift()!);
    assert(this.#evicted.length <= evictedRememberedMax, "evicted memory bounded");
  }

  /** Records the committed outcome of `request` (greater than the session's latest). */
  record(client: Uint8Array, request: number, op: number, reply: StoredReply): void {
    const session = this.#sessions.get(clientKey(client));
    assert(session !== undefined, "record only for a live session");
    assert(request > session.request, "request numbers increase within a session");
    assert(op > session.commitOp, "commit ops increase within a session");
    session.request = request;
    session.commitOp = op;
    session.reply = reply;
  }

  /** Deterministic bytes of the whole table (sessions sorted by client id). */
  encode(): Uint8Array {
    const keys = [...this.#sessions.keys()].sort();
    const sessions = keys.map((key) => {
      const s = this.#sessions.get(key)!;
      const reply: Record<string, unknown> = {};
      if (s.reply.body !== undefined) reply.body = s.reply.body;
      if (s.reply.error !== undefined) reply.error = s.reply.error;
      return { client: s.client, request: s.request, commitOp: s.commitOp, reply };
    });
    return cborEncode({ sessionsMax: this.sessionsMax, sessions, evicted: this.#evicted });
  }

  /** Replaces the table's content with `bytes` from {@link encode}. Throws on malformed bytes. */
  restore(bytes: Uint8Array): void {
    const value = cborDecode(bytes) as {
      sessions: { client: Uint8Array; request: number; commitOp: number; reply: { body?: Uint8Array; error?: ReplyError } }[];
      evicted: string[];
    };
    if (!Array.isArray(value.sessions) || !Array.isArray(value.evicted)) throw new Error("malformed client table");
    if (value.sessions.length > this.sessionsMax) throw new Error("client table larger than clientSessionsMax");
    this.#sessions.clear();
    this.#evicted.length = 0;
    this.#evictedSet.clear();
    for (const s of value.sessions) {
      if (!(s.client instanceof Uint8Array) || s.client.length !== 16) throw new Error("malformed session id");
      assertCount(s.request, "session request");
      assertCount(s.commitOp, "session commit op");
      const reply: StoredReply = s.reply.error !== undefined ? { error: s.reply.error } : { body: s.reply.body ?? new Uint8Array(0) };
      this.#sessions.set(clientKey(s.client), { client: s.client, request: s.request, commitOp: s.commitOp, reply });
    }
    for (const key of value.evicted.slice(-evictedRememberedMax)) {
      this.#evicted.push(key);
      this.#evictedSet.add(key);
    }
  }
}
