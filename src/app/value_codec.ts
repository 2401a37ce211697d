/**
 * CBOR for application values (event payloads, replies, queries, state, effects), built
 * on cborg with two choices that matter for a replicated state machine:
 *
 * - Maps and Sets round-trip as Maps and Sets (tags 259 and 258 over an array of their
 *   entries), with any CBOR key, so `new Map()` state survives a checkpoint;
 * - keys are written in the value's own iteration order, not sorted. Iteration order is
 *   observable by `apply` (`for (const [id, a] of accounts)`), so it is part of the state:
 *   replicas that applied the same prefix hold the same order and write the same bytes,
 *   and a restored replica iterates in the same order as one that never restarted.
 *
 * Both directions have a fast path (value_encoder.ts, value_decoder.ts) that handles
 * the common shapes without cborg's token objects and hands anything else to cborg; the
 * two paths agree byte for byte (tests/app_value_codec.test.ts compares them).
 *
 * Supported: null, undefined, booleans, numbers, bigints (64-bit), strings, Uint8Array
 * (other typed arrays come back as Uint8Array), arrays, plain objects, Map, Set. Anything
 * else (functions, class instances, Date, symbols, cycles) is refused with an error.
 * @module
 */
import { decode, encode, Token, Type } from "cborg";
import type { TagDecoder } from "cborg";
import { decodeFast, notFast } from "./value_decoder.ts";
import { encodeFast, encodeFastSpliced } from "./value_encoder.ts";
export { NestedEncoding } from "./value_encoder.ts";

/** CBOR tag for a Set (an array of members). */
export const tagSet = 258;
/** CBOR tag for a Map (an array alternating key, value). */
export const tagMap = 259;

type Tokens = Token | Tokens[];

function valueTokens(value: unknown, depth: number): Tokens {
  if (depth > depthMax) throw new TypeError(`value nested deeper than ${depthMax} levels (a cycle?)`);
  if (value === null) return new Token(Type.null, null);
  if (value === undefined) return new Token(Type.undefined, undefined);
  switch (typeof value) {
    case "boolean":
      return new Token(value ? Type.true : Type.false, value);
    case "number":
      if (!Number.isSafeInteger(value)) return new Token(Type.float, value);
      return new Token(value >= 0 ? Type.uint : Type.negint, value);
    case "bigint":
      return new Token(value >= 0n ? Type.uint : Type.negint, value);
    case "string":
      return new Token(Type.string, value);
    case "object":
      break;
    default:
      throw new TypeError(`cannot encode a ${typeof value} as CBOR`);
  }
  if (Array.isArray(value)) {
    const out: Tokens[] = [new Token(Type.array, value.length)];
    for (const item of value) out.push(valueTokens(item, depth + 1));
    return out;
  }
  if (value instanceof Uint8Array) return new Token(Type.bytes, value);
  if (ArrayBuffer.isView(value)) {
    return new Token(Type.bytes, new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  if (value instanceof Map) return mapTokens(value, depth);
  if (value instanceof Set) return setTokens(value, depth);
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`cannot encode an instance of ${proto?.constructor?.name ?? "?"} as CBOR`);
  }
  const keys = Object.keys(value);
  const out: Tokens[] = [new Token(Type.map, keys.length)];
  for (const key of keys) {
    out.push(new Token(Type.string, key));
    out.push(valueTokens((value as Record<string, unknown>)[key], depth + 1));
  }
  return out;
}

function mapTokens(map: Map<unknown, unknown>, depth: number): Tokens {
  const out: Tokens[] = [new Token(Type.tag, tagMap), new Token(Type.array, map.size * 2)];
  for (const [key, item] of map) {
    out.push(valueTokens(key, depth + 1));
    out.push(valueTokens(item, depth + 1));
  }
  return out;
}

function setTokens(set: Set<unknown>, depth: number): Tokens {
  const out: Tokens[] = [new Token(Type.tag, tagSet), new Token(Type.array, set.size)];
  for (const item of set) out.push(valueTokens(item, depth + 1));
  return out;
}

/** Nesting limit: deeper values are refused (and a cycle is caught by it). */
export const depthMax = 256;

const encodeOptions = {
  // Insertion order is state (see the module comment): never sort keys.
  mapSorter: undefined,
  typeEncoders: {
    Map: (map: Map<unknown, unknown>) => mapTokens(map, 0),
    Set: (set: Set<unknown>) => setTokens(set, 0),
  },
};

const tags: TagDecoder[] = [];
tags[tagSet] = (inner: unknown) => {
  if (!Array.isArray(inner)) throw new TypeError("CBOR tag 258 (Set) must wrap an array");
  return new Set(inner);
};
tags[tagMap] = (inner: unknown) => {
  if (!Array.isArray(inner) || inner.length % 2 !== 0) {
    throw new TypeError("CBOR tag 259 (Map) must wrap an array of key, value pairs");
  }
  const map = new Map<unknown, unknown>();
  for (let i = 0; i < inner.length; i += 2) map.set(inner[i], inner[i + 1]);
  return map;
};

const decodeOptions = { tags, rejectDuplicateMapKeys: true };

/**
 * Encodes an application value as CBOR (Maps and Sets tagged, keys in iteration order).
 * Throws TypeError naming the first value it cannot encode. `sizeHint`: the size the
 * caller expects (reserved upfront; only worth it for megabytes).
 * @example
 * const bytes = encodeValue({ accounts: new Map([["alice", 10]]) });
 */
export function encodeValue(value: unknown, sizeHint = 0): Uint8Array {
  return encodeFast(value, encodeScalar, null, null, sizeHint) ?? encodeSlow(value);
}

/**
 * {@link encodeValue} on the fast path only, the one that understands
 * {@link NestedEncoding}: null when the value holds anything the fast path leaves to
 * cborg (the caller then encodes the nested parts separately).
 */
export function encodeValueFast(value: unknown, sizeHint = 0): Uint8Array | null {
  return encodeFast(value, encodeScalar, null, null, sizeHint);
}

/**
 * `encodeValue(value)`, where `reused` (an object inside `value`, by identity) is written
 * as `reusedBytes`, its encoding made a moment ago by `encodeValue(reused)`: the same
 * bytes without walking it again. The kernel uses it for a payload that one apply hands
 * to two effects (a channel entry and a webhook body). Nothing runs between the two
 * encodes but the encoder, so the bytes are those of the object as the first encode saw
 * it (only a getter that changes its own object while being read could tell).
 */
export function encodeValueReusing(value: unknown, reused: object, reusedBytes: Uint8Array): Uint8Array {
  return encodeFast(value, encodeScalar, reused, reusedBytes) ?? encodeSlow(value);
}

const okValuePrefix = new Uint8Array([0xa3, 0x62, 0x6f, 0x6b, 0xf5, 0x65, 0x76, 0x61, 0x6c, 0x75, 0x65]);
const effectsKey = new Uint8Array([0x67, 0x65, 0x66, 0x66, 0x65, 0x63, 0x74, 0x73]);

/**
 * `encodeValue({ ok: true, value, effects })`, byte for byte, without building the
 * object (the kernel's reply to every applied event).
 */
export function encodeOkReplyValue(value: unknown, effects: readonly string[]): Uint8Array {
  return encodeFastSpliced(okValuePrefix, value, effectsKey, effects, encodeScalar) ?? encodeSlow({ ok: true, value, effects });
}

/** The reference path (cborg tokens): the fast path must write exactly these bytes. */
export function encodeSlow(value: unknown): Uint8Array {
  // deno-lint-ignore no-explicit-any
  const bytes = encode(value, encodeOptions as any);
  // cborg may return a Node Buffer: callers get a plain Uint8Array either way.
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * One float or bigint as the reference path writes it (shortest exact float form): what
 * every fast writer (value_encoder.ts, the kernel's incremental snapshot) writes for them.
 */
export function encodeScalar(value: number | bigint): Uint8Array {
  return encode(value);
}

/**
 * Decodes CBOR written by {@link encodeValue} (or any CBOR without other tags).
 * Throws on malformed input or trailing bytes.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  const fast = decodeFast(bytes);
  return fast !== notFast ? fast : decodeSlow(bytes);
}

/** The reference path (cborg): the fast path must return what this returns. */
export function decodeSlow(bytes: Uint8Array): unknown {
  return decode(bytes, decodeOptions);
}
