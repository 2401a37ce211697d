import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { custom, defineApp, emit, http, log, schedule } from "../mod.ts";
import { decodeValue, encodeValue } from "../src/app/value_codec.ts";
import { seededFromChecksum } from "../src/app/random.ts";
import { checksum } from "../src/codec/checksum.ts";

describe("app contract", () => {
  test("defineApp fills the schema version and refuses malformed definitions", () => {
    const app = defineApp({ genesis: () => 0, apply: (s: number) => ({ state: s }), query: (s: number) => s });
    assert.equal(app.schemaVersion, 1);
    assert.throws(() => defineApp({ schemaVersion: 0, genesis: () => 0, apply: (s: number) => ({ state: s }), query: (s: number) => s }), RangeError);
    assert.throws(
      () => defineApp({ genesis: () => 0, apply: (s: number) => ({ state: s }), query: (s: number) => s, snapshot: () => new Uint8Array() }),
      /restore/,
    );
  });

  test("effect constructors produce plain data with defaults", () => {
    assert.deepEqual(http("https://x.test/h"), { kind: "http", url: "https://x.test/h", method: "POST", headers: {}, body: null, timeoutMs: 10_000 });
    assert.deepEqual(emit("c", 1), { kind: "emit", channel: "c", payload: 1 });
    assert.deepEqual(schedule(5, { a: 1 }), { kind: "schedule", delayMs: 5, event: { a: 1 } });
    assert.deepEqual(log("info", "m"), { kind: "log", level: "info", message: "m" });
    assert.deepEqual(custom("email", { to: "a" }), { kind: "custom", type: "email", data: { to: "a" } });
  });

  test("CBOR values keep Maps, Sets and key order through a round trip", () => {
    const value = { z: 1, a: new Map<unknown, unknown>([["k2", 2], [1, new Set(["x", "y"])], ["k0", { b: 1, a: 2 }]]), bytes: new Uint8Array([1, 2, 3]), big: 2n ** 62n };
    const bytes = encodeValue(value);
    const back = decodeValue(bytes) as typeof value;
    assert.deepEqual(back, value);
    assert.deepEqual([...back.a.keys()], ["k2", 1, "k0"]);
    assert.deepEqual(Object.keys(back), ["z", "a", "bytes", "big"]);
    assert.deepEqual(encodeValue(back), bytes);
    assert.throws(() => encodeValue({ f: () => 1 }));
    assert.throws(() => encodeValue(new Map([["d", new Date(0)]])));
  });

  test("ctx.random is deterministic per entry checksum and differs between entries and streams", () => {
    const seedA = checksum(new Uint8Array([1]));
    const seedB = checksum(new Uint8Array([2]));
    const draw = (seed: Uint8Array, stream: number) => {
      const random = seededFromChecksum(seed, stream);
      return Array.from({ length: 5 }, () => random());
    };
    assert.deepEqual(draw(seedA, 0), draw(seedA, 0));
    assert.notDeepEqual(draw(seedA, 0), draw(seedB, 0));
    assert.notDeepEqual(draw(seedA, 0), draw(seedA, 1));
    for (const x of draw(seedB, 3)) assert.ok(x >= 0 && x < 1);
  });
});
