/**
 * A single compare-and-set register, as in Jepsen's etcd test: read, write v, and
 * cas [expected new]. It starts as nil (`null`); a read returns the value.
 * @module
 */
import type { Model } from "./model.ts";

/** A register value: an integer, or null (Jepsen's nil) before the first write. */
export type RegisterValue = number | null;

/** A register operation. */
export type RegisterInput =
  | { readonly f: "read" }
  | { readonly f: "write"; readonly value: number }
  | { readonly f: "cas"; readonly expected: RegisterValue; readonly value: number };

/**
 * What a register operation returned: the value for a read, `"ok"` for a write or a cas
 * that succeeded. (A cas that failed is a Jepsen `:fail`: dropped from the history.)
 */
export type RegisterOutput = RegisterValue | "ok";

const show = (v: RegisterValue) => (v === null ? "nil" : String(v));

/** The compare-and-set register model. */
export const casRegister: Model<RegisterValue, RegisterInput, RegisterOutput> = {
  name: "cas-register",
  init: () => null,
  step(state, input, output) {
    switch (input.f) {
      case "read":
        return { ok: output === undefined || output === state, state };
      case "write":
        return { ok: true, state: input.value };
      case "cas":
        if (state === input.expected) return { ok: true, state: input.value };
        // It cannot succeed here: impossible if it returned ok; if its outcome is unknown,
        // placed here it is the cas that did not take effect.
        return { ok: output === undefined, state };
    }
  },
  equal: (a, b) => a === b,
  hash: show,
  describe(input, output) {
    const unknown = output === undefined ? " (outcome unknown)" : "";
    if (input.f === "read") return `read → ${output === undefined ? "?" : output === "ok" ? "ok" : show(output)}`;
    if (input.f === "write") return `write ${input.value}${unknown}`;
    return `cas ${show(input.expected)}→${input.value}${unknown}`;
  },
  describeState: (state) => `register = ${show(state)}`,
};
