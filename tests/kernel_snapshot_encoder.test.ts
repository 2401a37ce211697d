import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeSlow, encodeValue, encodeValueFast, NestedEncoding } from "../src/app/value_codec.ts";
import { inlineNodesMax, SnapshotEncoder } from "../src/kernel/snapshot_encoder.ts";
import { seededRandom } from "../src/storage/seeded_random.ts";

const numbers = [0, -0, 1, -1, 23, 24, -25, 255, 256, 65535, 65536, 2 ** 32, -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, 1.5, 0.1, 1e300, 65504, NaN, Infinity, -Infinity];
const strings = ["", "a", "x".repeat(15), "x".repeat(16), "y".repeat(24), "z".repeat(300), "é", "日本語", "😀", "\ud800", "a\udc00b", "é".repeat(400), "constructor", "b".repeat(80) + "\ud800", "g".repeat(511) + "😀", "h".repeat(70_000)];
const bigints = [0n, -1n, 2n ** 53n, 2n ** 64n - 1n, -(2n ** 64n)];

/** Random values with containers on both sides of the size the encoder writes in one go. */
function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const size = () => (random() < 0.1 ? inlineNodesMax - 2 + Math.floor(random() * 5) : Math.floor(random() * 5));
  switch (Math.floor(random() * (depth > 3 ? 6 : 11))) {
    case 0:
      return pick(numbers);
    case 1:
      return pick(strings);
    case 2:
      return pick([null, undefined, true, false]);
    case 3:
      return pick(bigints);
    case 4:
      return new Uint8Array(Math.floor(random() * 40)).map(() => Math.floor(random() * 256));
    case 5:
      return Math.floor((random() - 0.5) * 2 ** Math.floor(random() * 54));
    case 6:
      return Array.from({ length: size() }, () => randomValue(random, depth + 1));
    case 7: {
      const out: Record<string, unknown> = {};
      for (let i = size(); i > 0; i--) out[random() < 0.2 ? pick(strings.slice(0, 13)) : `k${i}`] = randomValue(random, depth + 1);
      return out;
    }
    case 8:
      return new Map(Array.from({ length: size() }, (_, i) => [random() < 0.5 ? `m${i}` : randomValue(random, depth + 3), randomValue(random, depth + 1)]));
    case 9:
      return new Set(Array.from({ length: size() }, () => randomValue(random, depth + 3)));
    default:
      return { id: `acct-${Math.floor(random() * 1000)}`, list: [1, 2.5, "x"], nested: new Map([["a", [new Set([1])]]]) };
  }
}

function encodeInSteps(value: unknown, random: () => number): Uint8Array | null {
  const encoder = new SnapshotEncoder(value, new Map(), random() < 0.5 ? 0 : 16);
  for (;;) {
    const outcome = encoder.step(1 + Math.floor(random() * 200));
    if (outcome === "gave_up") return null;
    if (outcome === "done") return encoder.result();
  }
}

describe("snapshot encoder", () => {
  test("writes the bytes of the reference encoder in steps of any size, and gives up where the fast path does (600 random values)", () => {
    const random = seededRandom(20261207);
    let gaveUp = 0;
    for (let i = 0; i < 600; i++) {
      const value = randomValue(random, 0);
      const actual = encodeInSteps(value, random);
      if (actual === null) {
        // Only where the fast path gives up too (an own "constructor" key, in these).
        assert.equal(encodeValueFast(value), null, `value ${i} left to cborg by the snapshot encoder only`);
        gaveUp++;
        continue;
      }
      assert.deepEqual(actual, new Uint8Array(encodeSlow(value)), `value ${i}`);
    }
    assert.ok(gaveUp < 100, `${gaveUp} of 600 values left to cborg`);
  });

  test("a nested encoding is the byte string of the value's encoding, for every head width", () => {
    const random = seededRandom(5);
    for (const length of [0, 3, 23, 24, 300, 70_000]) {
      const inner = { items: Array.from({ length }, (_, i) => i % 7), tail: "t" };
      const value = { format: 1, app: new NestedEncoding(inner), after: [1, 2] };
      const expected = encodeValue({ format: 1, app: encodeValue(inner), after: [1, 2] });
      assert.deepEqual(encodeInSteps(value, random), expected, `length ${length}`);
    }
  });

  test("gives up on what the fast path leaves to cborg", () => {
    const random = seededRandom(9);
    const nullProto = Object.create(null) as Record<string, number>;
    nullProto.a = 1;
    class Opaque {}
    let deep: unknown = 1;
    for (let i = 0; i < 300; i++) deep = [deep];
    for (const value of [{ x: nullProto }, [new Opaque()], new Int32Array(2), { constructor: 1 }, deep, () => 1]) {
      assert.equal(encodeInSteps(value, random), null);
    }
  });
});
