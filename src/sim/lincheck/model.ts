/**
 * Sequential specifications for the linearizability checker.
 * @module
 */
import type { Operation } from "./history.ts";

/** A sequential object: what one operation does to a state, given what it returned. */
export interface Model<S, I, O> {
  /** Name for messages. */
  readonly name: string;
  /** The state before any operation. */
  init(): S;
  /**
   * The state after `input` returned `output` (undefined: outcome unknown, any result
   * allowed), or null when that output is impossible in `state` (so a state is never null).
   */
  step(state: S, input: I, output: O | undefined): S | null;
  /** A string equal for equal states (memoization key). */
  key(state: S): string;
  /** Splits a history into independent sub-histories (by key), checked separately. */
  partition?(operations: readonly Operation<I, O>[]): Map<string, Operation<I, O>[]>;
  /** One operation, for explanations. */
  describe(input: I, output: O | undefined): string;
}

/** A register operation: read, write v, or compare-and-set [expected, new]. */
export type RegisterInput =
  | { readonly f: "read" }
  | { readonly f: "write"; readonly value: number }
  | { readonly f: "cas"; readonly expected: number; readonly value: number };

/** What a register operation returned: the value read (null: never written), or ok. */
export type RegisterOutput = number | null | "ok";

const show = (v: unknown) => (v === null ? "nil" : v === undefined ? "?" : String(v));

/** The register's value; "nil" before any write (null is the model's "impossible"). */
export type RegisterState = number | "nil";

/** A single compare-and-set register starting empty (Jepsen's etcd test). */
export const casRegister: Model<RegisterState, RegisterInput, RegisterOutput> = {
  name: "cas-register",
  init: () => "nil",
  step(state, input, output) {
    switch (input.f) {
      case "read":
        return output === undefined || (output === null ? "nil" : output) === state ? state : null;
      case "write":
        return input.value;
      case "cas":
        // A cas that succeeded needs the expected value; one of unknown outcome, placed
        // here, takes effect when it can (not taking effect is the same as being placed
        // after every other operation).
        if (state === input.expected) return input.value;
        return output === undefined ? state : null;
    }
  },
  key: (state) => String(state),
  describe(input, output) {
    if (input.f === "read") return `read → ${show(output)}`;
    if (input.f === "write") return `write ${input.value}${output === undefined ? " (outcome unknown)" : ""}`;
    return `cas ${input.expected}→${input.value}${output === undefined ? " (outcome unknown)" : ""}`;
  },
};

/** A key-value operation: get, put, append (Jepsen's kv histories) or cas by key. */
export type KvInput =
  | { readonly f: "get"; readonly key: string }
  | { readonly f: "put"; readonly key: string; readonly value: string }
  | { readonly f: "append"; readonly key: string; readonly value: string }
  | { readonly f: "cas"; readonly key: string; readonly expected: string; readonly value: string };

/** What a kv operation returned: the value read, true/false for cas, or "ok". */
export type KvOutput = string | boolean | "ok";

function byKey<I extends { readonly key: string }, O>(operations: readonly Operation<I, O>[]): Map<string, Operation<I, O>[]> {
  const parts = new Map<string, Operation<I, O>[]>();
  for (const operation of operations) {
    const list = parts.get(operation.input.key);
    if (list === undefined) parts.set(operation.input.key, [operation]);
    else list.push(operation);
  }
  return parts;
}

/**
 * One key of a key-value store, missing keys reading as "" (checked per key after
 * partitioning): get, put, append, and compare-and-set.
 */
export const kv: Model<string, KvInput, KvOutput> = {
  name: "kv",
  init: () => "",
  step(state, input, output) {
    switch (input.f) {
      case "get":
        return output === undefined || output === state ? state : null;
      case "put":
        return input.value;
      case "append":
        return state + input.value;
      case "cas":
        if (output === undefined) return state === input.expected ? input.value : state;
        if (output === true) return state === input.expected ? input.value : null;
        return state !== input.expected ? state : null;
    }
  },
  key: (state) => state,
  partition: byKey,
  describe(input, output) {
    const unknown = output === undefined ? " (outcome unknown)" : "";
    switch (input.f) {
      case "get":
        return `get ${input.key} → ${JSON.stringify(output ?? "?")}`;
      case "put":
        return `put ${input.key} ${JSON.stringify(input.value)}${unknown}`;
      case "append":
        return `append ${input.key} ${JSON.stringify(input.value)}${unknown}`;
      case "cas":
        return `cas ${input.key} ${JSON.stringify(input.expected)}→${JSON.stringify(input.value)} → ${output === undefined ? "?" : String(output)}`;
    }
  },
};

/** The simulator's key-value workload (get, put, compare-and-set by key): the kv model. */
export const kvCas = kv;
