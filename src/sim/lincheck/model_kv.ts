/**
 * Key-value models, checked one key at a time (they partition by key):
 *
 * - {@link kv}: get, put and append on string values, a missing key reading as "" —
 *   Jepsen's kv histories;
 * - {@link kvCas}: get, put and compare-and-set, a missing key reading as null — the
 *   workload of chronon's simulator (values are integers unique in a run).
 * @module
 */
import type { Model } from "./model.ts";
import { partitionByKey } from "./model.ts";

/** A get/put/append operation on one key. */
export type KvInput =
  | { readonly f: "get"; readonly key: string }
  | { readonly f: "put"; readonly key: string; readonly value: string }
  | { readonly f: "append"; readonly key: string; readonly value: string };

/** The value a get returned, or `"ok"` for a put or an append. */
export type KvOutput = string;

/** Get/put/append per key; a missing key reads as the empty string. */
export const kv: Model<string, KvInput, KvOutput> = {
  name: "kv",
  init: () => "",
  step(state, input, output) {
    switch (input.f) {
      case "get":
        return { ok: output === undefined || output === state, state };
      case "put":
        return { ok: true, state: input.value };
      case "append":
        return { ok: true, state: state + input.value };
    }
  },
  equal: (a, b) => a === b,
  hash: (state) => state,
  partition: partitionByKey,
  describe(input, output) {
    const unknown = output === undefined ? " (outcome unknown)" : "";
    if (input.f === "get") return `get ${JSON.stringify(input.key)} → ${output === undefined ? "?" : JSON.stringify(output)}`;
    return `${input.f} ${JSON.stringify(input.key)} ${JSON.stringify(input.value)}${unknown}`;
  },
  describeState: (state) => `value = ${JSON.stringify(state)}`,
};

/** A value of the simulator's store. */
export type KvCasValue = number | string;

/** A get/put/compare-and-set operation on one key; `expected: null` means "missing". */
export type KvCasInput =
  | { readonly f: "get"; readonly key: string }
  | { readonly f: "put"; readonly key: string; readonly value: KvCasValue }
  | { readonly f: "cas"; readonly key: string; readonly expected: KvCasValue | null; readonly value: KvCasValue };

/**
 * What a kvCas operation returned: for a get the value (null: missing), for a put `"ok"`,
 * for a cas whether it swapped. A cas that answered `false` did take effect (as a read of
 * a different value), so it stays in the history.
 */
export type KvCasOutput = KvCasValue | null | boolean | "ok";

const showValue = (v: KvCasValue | null) => (v === null ? "nil" : JSON.stringify(v));

/** Get/put/compare-and-set per key; a missing key reads as null. */
export const kvCas: Model<KvCasValue | null, KvCasInput, KvCasOutput> = {
  name: "kv-cas",
  init: () => null,
  step(state, input, output) {
    switch (input.f) {
      case "get":
        return { ok: output === undefined || output === state, state };
      case "put":
        return { ok: true, state: input.value };
      case "cas": {
        const matches = state === input.expected;
        if (output === undefined) return { ok: true, state: matches ? input.value : state };
        if (output === true) return { ok: matches, state: input.value };
        return { ok: output === false && !matches, state };
      }
    }
  },
  equal: (a, b) => a === b,
  hash: (state) => (state === null ? "nil" : typeof state === "number" ? `n${state}` : `s${state}`),
  partition: partitionByKey,
  describe(input, output) {
    const result = output === undefined ? "?" : typeof output === "boolean" ? String(output) : output === "ok" ? "ok" : showValue(output);
    if (input.f === "get") return `get ${JSON.stringify(input.key)} → ${result}`;
    if (input.f === "put") return `put ${JSON.stringify(input.key)} ${showValue(input.value)}${output === undefined ? " (outcome unknown)" : ""}`;
    return `cas ${JSON.stringify(input.key)} ${showValue(input.expected)}→${showValue(input.value)} → ${result}`;
  },
  describeState: (state) => `value = ${showValue(state)}`,
};
