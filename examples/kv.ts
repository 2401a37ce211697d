/**
 * A key-value store with get, put, delete and compare-and-set: the application the
 * simulator and the chaos tests drive (every operation's reply says what it saw, so a
 * history can be checked for linearizability).
 * @module
 */
import { defineApp } from "../mod.ts";
import type { ApplyResult, Event } from "../mod.ts";

/** Operations sent through the log. */
export type KvEvent =
  | { readonly type: "get"; readonly key: string }
  | { readonly type: "put"; readonly key: string; readonly value: string }
  | { readonly type: "delete"; readonly key: string }
  /** Sets `value` only when the current value equals `expected` (null: key absent). */
  | { readonly type: "cas"; readonly key: string; readonly expected: string | null; readonly value: string };

/** Replies: `value` is the value after the operation (null: absent); `ok` is false for a failed cas. */
export interface KvReply {
  readonly ok: boolean;
  readonly value: string | null;
  /** Version of the key after the operation (0 when absent); bumped by every write. */
  readonly version: number;
}

/** Read-only queries (not through the log). */
export type KvQuery = { readonly type: "get"; readonly key: string } | { readonly type: "size" };

/** One stored value. */
export interface KvItem {
  value: string;
  version: number;
}

/** The store. */
export interface KvState {
  items: Map<string, KvItem>;
}

/** Longest key and value accepted. */
export const keyLengthMax = 256;
export const valueLengthMax = 64 * 1024;

function checkKey(key: unknown): string {
  if (typeof key !== "string" || key.length === 0 || key.length > keyLengthMax) throw new TypeError(`key must be a string of 1..${keyLengthMax} characters`);
  return key;
}

function checkValue(value: unknown): string {
  if (typeof value !== "string" || value.length > valueLengthMax) throw new TypeError(`value must be a string of at most ${valueLengthMax} characters`);
  return value;
}

export default defineApp({
  genesis: (): KvState => ({ items: new Map() }),

  apply(state: KvState, event: Event<KvEvent>): ApplyResult<KvState, KvReply, KvEvent> {
    const e = event.payload;
    const key = checkKey(e.key);
    const current = state.items.get(key);
    switch (e.type) {
      case "get":
        return { state, reply: { ok: true, value: current?.value ?? null, version: current?.version ?? 0 } };
      case "put": {
        const value = checkValue(e.value);
        const version = (current?.version ?? 0) + 1;
        state.items.set(key, { value, version });
        return { state, reply: { ok: true, value, version } };
      }
      case "delete":
        state.items.delete(key);
        return { state, reply: { ok: true, value: null, version: 0 } };
      case "cas": {
        const value = checkValue(e.value);
        if ((current?.value ?? null) !== e.expected) {
          return { state, reply: { ok: false, value: current?.value ?? null, version: current?.version ?? 0 } };
        }
        const version = (current?.version ?? 0) + 1;
        state.items.set(key, { value, version });
        return { state, reply: { ok: true, value, version } };
      }
      default:
        throw new TypeError(`unknown kv operation ${(e as { type?: unknown }).type}`);
    }
  },

  query(state: KvState, q: KvQuery): string | number | null {
    if (q.type === "size") return state.items.size;
    if (q.type === "get") return state.items.get(checkKey(q.key))?.value ?? null;
    throw new TypeError("unknown kv query");
  },
});
