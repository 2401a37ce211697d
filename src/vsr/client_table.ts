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

/** Two hex digits of every byte value. */
const hexOfByte: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** Lower-case hex of a 16-byte id: how evicted ids are kept and checkpointed. */
export function clientKey(client: Uint8Array): string {
  let out = "";
  for (let i = 0; i < client.length; i++) out += hexOfByte[client[i]!]!;
  return out;
}

/**
 * The session table's key for a 16-byte client id: the id as eight UTF-16 code units
 * (byte pairs, big-endian), so keys compare as the ids' bytes do and `encode` can sort by
 * them. One flat string made in one call: a hex key built by concatenation is a rope that
 * every Map lookup flattens and hashes again, and the primary made three per request.
 */
export function sessionKey(client: Uint8Array): string {
  assert(client.length === 16, "client id is 16 bytes");
  return String.fromCharCode(
    (client[0]! << 8) | client[1]!, (client[2]! << 8) | client[3]!, (client[4]! << 8) | client[5]!, (client[6]! << 8) | client[7]!,
    (client[8]! << 8) | client[9]!, (client[10]! << 8) | client[11]!, (client[12]! << 8) | client[13]!, (client[14]! << 8) | client[15]!,
  );
}

/** The answer of {@link ClientTable.check} for a request the table has not seen (one object, never changed). */
const sessionCheckNew: SessionCheck = Object.freeze({ kind: "new" });

/** True for the all-zero client id of internal operations (no session). */
export function isInternalClient(client: Uint8Array): boolean {
  for (const byte of client) if (byte !== 0) return false;
  return true;
}

/** The replicated client table. */
export class ClientTable {
  readonly sessionsMax: number;
  /** Live sessions by {@link sessionKey}. */
  readonly #sessions = new Map<string, Session>();
  /** Evicted clients' hex ids ({@link clientKey}: they travel in checkpoints) in eviction order (oldest first), at most evictedRememberedMax. */
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
    return this.#sessions.get(sessionKey(client));
  }

  /** Classifies a request against the committed table (the primary's filter before prepare). */
  check(client: Uint8Array, request: number): SessionCheck {
    return this.checkKey(sessionKey(client), client, request);
  }

  /** {@link check} for a caller that already holds the client's {@link sessionKey}. */
  checkKey(key: string, client: Uint8Array, request: number): SessionCheck {
    assertCount(request, "request number");
    const session = this.#sessions.get(key);
    if (request === 0) {
      if (session === undefined) return sessionCheckNew;
      if (session.request === 0) return { kind: "duplicate", reply: session.reply, op: session.commitOp };
      return { kind: "error", error: "stale_request", message: "session already registered and in use" };
    }
    if (session === undefined) return this.#missing(client);
    if (request === session.request) return { kind: "duplicate", reply: session.reply, op: session.commitOp };
    if (request < session.request) {
      return { kind: "error", error: "stale_request", message: `request ${request} < latest ${session.request}` };
    }
    return sessionCheckNew;
  }

  #missing(client: Uint8Array): SessionCheck {
    if (this.#evictedSet.has(clientKey(client))) {
      return { kind: "error", error: "session_evicted", message: "session was evicted: register again" };
    }
    return { kind: "error", error: "session_unknown", message: "no such session: register first" };
  }

  /** Registers `client` at commit `op`, evicting the least recently committed session if full. */
  register(client: Uint8Array, op: number): void {
    const key = sessionKey(client);
    assert(!this.#sessions.has(key), "register only a new session");
    if (this.#sessions.size === this.sessionsMax) this.#evictOldest();
    assert(this.#sessions.size < this.sessionsMax, "room for the new session");
    const hex = clientKey(client);
    if (this.#evictedSet.delete(hex)) this.#evicted.splice(this.#evicted.indexOf(hex), 1);
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
    assert(oldestKey !== null && oldest !== null, "a full table has an oldest session");
    this.#sessions.delete(oldestKey);
    const hex = clientKey(oldest.client);
    this.#evicted.push(hex);
    this.#evictedSet.add(hex);
    if (this.#evicted.length > evictedRememberedMax) this.#evictedSet.delete(this.#evicted.shift()!);
    assert(this.#evicted.length <= evictedRememberedMax, "evicted memory bounded");
  }

  /** Records the committed outcome of `request` (greater than the session's latest). */
  record(client: Uint8Array, request: number, op: number, reply: StoredReply): void {
    this.recordKey(sessionKey(client), request, op, reply);
  }

  /** {@link record} for a caller that already holds the client's {@link sessionKey}. */
  recordKey(key: string, request: number, op: number, reply: StoredReply): void {
    const session = this.#sessions.get(key);
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
      this.#sessions.set(sessionKey(s.client), { client: s.client, request: s.request, commitOp: s.commitOp, reply });
    }
    for (const key of value.evicted.slice(-evictedRememberedMax)) {
      this.#evicted.push(key);
      this.#evictedSet.add(key);
    }
  }
}
