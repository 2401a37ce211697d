/**
 * The simulator's state machine: a small key-value store with get, put and
 * compare-and-set, bodies and replies encoded with CBOR (cborg). Keys are strings, values
 * are safe integers (every client put writes a value unique in the run, which makes the
 * linearizability check sharp), a missing key reads as null.
 *
 * | operation | body                         | reply                          |
 * |----------:|------------------------------|--------------------------------|
 * |  16 put   | `{ k: key, v: value }`       | `{ ok: true }`                 |
 * |  17 get   | `{ k: key }`                 | `{ v: value \| null }`         |
 * |  18 cas   | `{ k: key, e: expected, v }` | `{ ok: boolean }` (swapped?)   |
 * | other/bad | anything else                | `{ error: "…" }` (no change)   |
 *
 * A query is a get (`{ k }` → `{ v }`) against the current state.
 * @module
 */
import { decode, encode } from "cborg";
import { assert } from "../assert.ts";
import { checksum } from "../codec/checksum.ts";
import type { CommittedEntry, StateMachine } from "../vsr/state_machine.ts";
import { operationStateMachineMin } from "../vsr/state_machine.ts";

/** Operation number of a put. */
export const operationPut = operationStateMachineMin;
/** Operation number of a get through the log. */
export const operationGet = operationStateMachineMin + 1;
/** Operation number of a compare-and-set. */
export const operationCas = operationStateMachineMin + 2;

/** Keys held at most; a put of a new key beyond it is refused (a bound on the state). */
export const kvKeysMax = 1024;
/** Longest key in characters. */
export const kvKeyLengthMax = 64;

/** A decoded kv request, as clients build it. */
export type KvCommand =
  | { readonly kind: "put"; readonly key: string; readonly value: number }
  | { readonly kind: "get"; readonly key: string }
  | { readonly kind: "cas"; readonly key: string; readonly expected: number | null; readonly value: number };

/** Encodes a command as (operation, body) for a client request. */
export function encodeKvCommand(command: KvCommand): { operation: number; body: Uint8Array } {
  switch (command.kind) {
    case "put":
      return { operation: operationPut, body: encode({ k: command.key, v: command.value }) };
    case "get":
      return { operation: operationGet, body: encode({ k: command.key }) };
    case "cas":
      return { operation: operationCas, body: encode({ k: command.key, e: command.expected, v: command.value }) };
  }
}

/** Encodes a query body (a get outside the log). */
export function encodeKvQuery(key: string): Uint8Array {
  return encode({ k: key });
}

/** A decoded kv reply. */
export type KvReply =
  | { readonly kind: "ok" }
  | { readonly kind: "value"; readonly value: number | null }
  | { readonly kind: "swapped"; readonly swapped: boolean }
  | { readonly kind: "error"; readonly message: string };

/** Decodes a reply body for a command of `kind`; a malformed body is an error reply. */
export function decodeKvReply(kind: KvCommand["kind"], body: Uint8Array): KvReply {
  let decoded: unknown;
  try {
    decoded = decode(body);
  } catch {
    return { kind: "error", message: "reply is not CBOR" };
  }
  if (!isRecord(decoded)) return { kind: "error", message: "reply is not a map" };
  if (typeof decoded.error === "string") return { kind: "error", message: decoded.error };
  if (kind === "put" && decoded.ok === true) return { kind: "ok" };
  if (kind === "get" && (decoded.v === null || isValue(decoded.v))) return { kind: "value", value: decoded.v };
  if (kind === "cas" && typeof decoded.ok === "boolean") return { kind: "swapped", swapped: decoded.ok };
  return { kind: "error", message: `unexpected reply to ${kind}` };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function isValue(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

function isKey(value: unknown): value is string {
  return typeof value === "string" && value.length <= kvKeyLengthMax;
}

const replyOk = encode({ ok: true });
const replySwapped = encode({ ok: true });
const replyNotSwapped = encode({ ok: false });

/** The key-value state machine the simulated replicas drive. */
export class KvStateMachine implements StateMachine {
  private readonly values = new Map<string, number>();
  /** Committed entries applied (for tests and traces; not part of the state hash). */
  commitCount = 0;

  commit(entry: CommittedEntry): Uint8Array {
    assert(Number.isSafeInteger(entry.op) && entry.op > 0, "committed op is positive");
    this.commitCount++;
    let request: unknown;
    try {
      request = decode(entry.body);
    } catch {
      return encode({ error: "body is not CBOR" });
    }
    if (!isRecord(request) || !isKey(request.k)) return encode({ error: "malformed request" });
    const key = request.k;
    switch (entry.operation) {
      case operationPut: {
        if (!isValue(request.v)) return encode({ error: "put needs an integer value" });
        if (!this.values.has(key) && this.values.size >= kvKeysMax) return encode({ error: "too many keys" });
        this.values.set(key, request.v);
        return replyOk;
      }
      case operationGet:
        return encode({ v: this.values.get(key) ?? null });
      case operationCas: {
        if (!isValue(request.v)) return encode({ error: "cas needs an integer value" });
        if (request.e !== null && !isValue(request.e)) return encode({ error: "cas expected must be integer or null" });
        const current = this.values.get(key) ?? null;
        if (current !== request.e) return replyNotSwapped;
        if (current === null && this.values.size >= kvKeysMax) return encode({ error: "too many keys" });
        this.values.set(key, request.v);
        return replySwapped;
      }
      default:
        return encode({ error: `unknown operation ${entry.operation}` });
    }
  }

  query(body: Uint8Array): Uint8Array {
    const request: unknown = decode(body);
    if (!isRecord(request) || !isKey(request.k)) throw new Error("query must be { k: key }");
    return encode({ v: this.values.get(request.k) ?? null });
  }

  stateHash(): Uint8Array {
    return checksum(this.snapshot());
  }

  /** Canonical: keys in sorted order, so equal states encode to equal bytes. */
  snapshot(): Uint8Array {
    const keys = [...this.values.keys()].sort();
    return encode(keys.map((key) => [key, this.values.get(key)!]));
  }

  restore(snapshot: Uint8Array): void {
    const pairs: unknown = decode(snapshot);
    assert(Array.isArray(pairs), "kv snapshot is an array of pairs");
    this.values.clear();
    for (const pair of pairs) {
      assert(Array.isArray(pair) && pair.length === 2 && isKey(pair[0]) && isValue(pair[1]), "kv snapshot pair");
      this.values.set(pair[0], pair[1]);
    }
  }

  /** The value of `key` (tests and checkers only). */
  peek(key: string): number | null {
    return this.values.get(key) ?? null;
  }
}
