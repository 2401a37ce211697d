import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeSlow, decodeValue, encodeOkReplyValue, encodeSlow, encodeValue, encodeValueFast, encodeValueReusing, NestedEncoding } from "../src/app/value_codec.ts";

/** sfc32-free tiny PRNG (mulberry32): the test must be replayable from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const numbers = [
  0, -0, 1, -1, 23, 24, -24, -25, 255, 256, -256, -257, 65535, 65536, -65537, 2 ** 32 - 1, 2 ** 32, -(2 ** 32) - 1,
  Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, -(2 ** 53), 1.5, -1.5, 0.1, 1e300, -1e-300, 65504, 65505,
  5.960464477539063e-8, 3.4028234663852886e38, NaN, Infinity, -Infinity, 1 / 3,
];
const strings = ["", "a", "hello", "x".repeat(23), "y".repeat(24), "z".repeat(300), "q".repeat(600), "é", "日本語", "😀", "\ud800", "a\udc00b", "é".repeat(400), "__proto__", "constructor",
  // Around the length where the encoder switches to TextEncoder.encodeInto, ASCII and not.
  "d".repeat(63), "d".repeat(64), "a".repeat(100) + "é", "b".repeat(80) + "\ud800", "\udc00" + "c".repeat(70), "é" + "f".repeat(200), "g".repeat(511) + "😀"];
const bigints = [0n, 1n, -1n, 2n ** 53n, -(2n ** 53n), 2n ** 64n - 1n, -(2n ** 64n)];

function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const kind = Math.floor(random() * (depth > 4 ? 7 : 12));
  switch (kind) {
    case 0:
      return pick(numbers);
    case 1:
      return Math.floor((random() - 0.5) * 2 ** Math.floor(random() * 54));
    case 2:
      return pick(strings);
    case 3:
      return pick([null, undefined, true, false]);
    case 4:
      return pick(bigints);
    case 5:
      return new Uint8Array(Math.floor(random() * 40)).map(() => Math.floor(random() * 256));
    case 6:
      return (random() * 1e6).toString(36);
    case 7:
      return Array.from({ length: Math.floor(random() * 5) }, () => randomValue(random, depth + 1));
    case 8: {
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 5); i > 0; i--) out[pick([...strings.filter((s) => s !== "__proto__"), "k" + i])] = randomValue(random, depth + 1);
      return out;
    }
    case 9:
      return new Map(Array.from({ length: Math.floor(random() * 4) }, () => [randomValue(random, depth + 3), randomValue(random, depth + 1)]));
    case 10:
      return new Set(Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 3)));
    default:
      return { id: "acct-" + Math.floor(random() * 1000), balance: Math.floor(random() * 1e9), list: [1, 2.5, "x"] };
  }
}

describe("value codec fast path", () => {
  test("writes the same bytes as the cborg path and decodes to the same values (1500 random values)", () => {
    const random = prng(20261128);
    for (let i = 0; i < 1500; i++) {
      const value = randomValue(random, 0);
      // cborg sometimes returns a Node Buffer: compare the bytes, not the class.
      const expected = new Uint8Array(encodeSlow(value));
      const actual = encodeValue(value);
      assert.deepEqual(actual, expected, `value ${i}`);
      assert.deepEqual(decodeValue(expected), decodeSlow(expected), `decode ${i}`);
    }
  });

  test("decoding corrupted bytes gives what cborg gives: the same value or an error", () => {
    const random = prng(7);
    let errors = 0;
    for (let i = 0; i < 1500; i++) {
      const bytes = new Uint8Array(encodeSlow(randomValue(random, 0)));
      const corrupt = bytes.slice(0, Math.max(0, bytes.length - (random() < 0.3 ? 1 : 0)));
      if (corrupt.length > 0 && random() < 0.7) corrupt[Math.floor(random() * corrupt.length)] = Math.floor(random() * 256);
      let expected: { value: unknown } | null = null;
      try {
        expected = { value: decodeSlow(corrupt) };
      } catch {
        expected = null;
      }
      if (expected === null) {
        errors++;
        assert.throws(() => decodeValue(corrupt), `case ${i} must throw`);
      } else {
        assert.deepEqual(decodeValue(corrupt), expected.value, `case ${i}`);
      }
    }
    assert.ok(errors > 100, `corruption produced only ${errors} errors`);
  });

  test("edge shapes: duplicate keys and __proto__ are left to cborg; unsupported values still throw", () => {
    // {a: 1, a: 2}
    const duplicate = new Uint8Array([0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02]);
    assert.throws(() => decodeValue(duplicate));
    assert.throws(() => decodeSlow(duplicate));
    const proto = new Uint8Array([0xa1, 0x69, ..."__proto__".split("").map((c) => c.charCodeAt(0)), 0xa0]);
    let slow: unknown;
    let slowError = false;
    try {
      slow = decodeSlow(proto);
    } catch {
      slowError = true;
    }
    if (slowError) assert.throws(() => decodeValue(proto));
    else {
      const fast = decodeValue(proto) as object;
      assert.deepEqual(Object.keys(fast), Object.keys(slow as object));
      assert.equal(Object.getPrototypeOf(fast) === Object.prototype, Object.getPrototypeOf(slow) === Object.prototype);
    }
    assert.throws(() => encodeValue({ f: () => 1 }));
    assert.throws(() => encodeValue(new Map([["d", new Date(0)]])));
    assert.throws(() => encodeValue(Symbol("s")));
    // Deep nesting leaves the fast path and is judged by the reference path.
    let deep: unknown = 1;
    for (let i = 0; i < 300; i++) deep = [deep];
    assert.deepEqual(encodeValue(deep), new Uint8Array(encodeSlow(deep)));
    // 2^53 and -(2^53) in 64-bit form decode as bigints on both paths.
    const big = encodeSlow(2n ** 53n);
    assert.equal(decodeValue(big), decodeSlow(big));
    const negative = encodeSlow(-(2n ** 53n) - 1n + 1n);
    assert.equal(decodeValue(negative), decodeSlow(negative));
  });

  test("re-entrant encodes (a getter that encodes) do not corrupt each other", () => {
    const inner = { x: "inner value" };
    const outer = {
      a: 1,
      get b() {
        return encodeValue(inner);
      },
      c: "after",
    };
    assert.deepEqual(encodeValue(outer), new Uint8Array(encodeSlow(outer)));
  });
});

describe("value codec fast path: object heads", () => {
  test("objects with 23, 24, 255, 256 and 70,000 keys encode like the cborg path", () => {
    for (const count of [0, 1, 23, 24, 255, 256, 70_000]) {
      const value: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) value[`k${i}`] = i % 3 === 0 ? { nested: i } : i;
      assert.deepEqual(encodeValue(value), new Uint8Array(encodeSlow(value)), `${count} keys`);
      assert.deepEqual(decodeValue(encodeValue(value)), value);
    }
  });
});

describe("value codec fast path: a polluted Object.prototype", () => {
  test("an enumerable inherited key does not change the bytes (the cborg path decides)", () => {
    const value = { a: 1, b: { c: "x" } };
    const before = encodeValue(value);
    Object.defineProperty(Object.prototype, "polluted", { value: 1, enumerable: true, configurable: true });
    try {
      assert.deepEqual(encodeValue(value), new Uint8Array(encodeSlow(value)));
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
    assert.deepEqual(encodeValue(value), before);
  });
});

describe("value codec: the spliced ok reply", () => {
  test("encodeOkReplyValue writes the bytes of { ok: true, value, effects }", () => {
    const random = prng(99);
    for (let i = 0; i < 300; i++) {
      const value = randomValue(random, 0);
      const effects = i % 3 === 0 ? [] : ["0123456789abcdef0123456789abcdef", "x"];
      assert.deepEqual(encodeOkReplyValue(value, effects), new Uint8Array(encodeSlow({ ok: true, value, effects })), `value ${i}`);
    }
  });
});

describe("value codec: reusing an object's encoding", () => {
  test("encodeValueReusing writes the bytes encodeValue writes, wherever and however often the object appears", () => {
    const notice = { from: "a", to: "b", amount: 12, op: 7, tags: new Set(["x"]), nested: [1, { deep: new Uint8Array([1, 2]) }] };
    const bytes = encodeValue(notice);
    const values: unknown[] = [
      { kind: "http", url: "http://x/y", method: "POST", headers: {}, body: notice, timeoutMs: 10_000 },
      [notice, notice, { again: notice }],
      new Map<unknown, unknown>([["k", notice], [notice, 1]]),
      notice,
      { other: { ...notice } },
      { big: 1.5, n: 2n ** 60n, notice },
    ];
    for (const value of values) assert.deepEqual(encodeValueReusing(value, notice, bytes), encodeValue(value));
    // The reused bytes are used as given: proof that the object is not walked again.
    const marker = encodeValue("marker");
    assert.deepEqual(decodeValue(encodeValueReusing({ body: notice }, notice, marker)), { body: "marker" });
    // And the next plain encode does not reuse anything.
    assert.deepEqual(encodeValue({ body: notice }), encodeSlow({ body: notice }));
  });
});

describe("value codec: results share the encoder's arena but never each other's bytes", () => {
  test("3000 results kept across arenas, overflows to the scratch buffer and nested encodes stay intact", () => {
    const random = prng(7_2026);
    const kept: { value: unknown; bytes: Uint8Array; copy: Uint8Array }[] = [];
    // A getter that encodes while the shared writer is busy: the nested encode must not
    // write into the arena region the outer one is filling.
    const nested = {
      get inner() {
        return encodeValue({ nested: "x".repeat(90), n: kept.length });
      },
    };
    for (let i = 0; i < 3000; i++) {
      const value = i % 97 === 0 ? "big".repeat(4000) : i % 89 === 0 ? { ...nested } : randomValue(random, 0);
      const bytes = encodeValue(value);
      kept.push({ value, bytes, copy: bytes.slice() });
    }
    const reply = encodeOkReplyValue({ balance: 3 }, ["0".repeat(32), "f".repeat(32)]);
    const replyCopy = reply.slice();
    for (let i = 0; i < 200; i++) encodeValue({ filler: i, text: "y".repeat(i) });
    for (const { bytes, copy } of kept) assert.deepEqual(bytes, copy, "a later encode overwrote an earlier result");
    assert.deepEqual(reply, replyCopy);
    // Results lie in arenas side by side: none overlaps another in the same buffer.
    const byBuffer = new Map<ArrayBufferLike, [number, number][]>();
    for (const { bytes } of kept) {
      const ranges = byBuffer.get(bytes.buffer) ?? [];
      ranges.push([bytes.byteOffset, bytes.byteOffset + bytes.length]);
      byBuffer.set(bytes.buffer, ranges);
    }
    let shared = 0;
    for (const ranges of byBuffer.values()) {
      ranges.sort((a, b) => a[0] - b[0]);
      for (let k = 1; k < ranges.length; k++) assert.ok(ranges[k]![0] >= ranges[k - 1]![1], "two results overlap");
      if (ranges.length > 1) shared++;
    }
    assert.ok(shared > 0, "small results share arenas");
  });
});

describe("value codec: a value nested as its own encoding (checkpoint images)", () => {
  test("encodeValueFast({ k: new NestedEncoding(v) }) writes encodeSlow({ k: encodeSlow(v) }) at every head width", () => {
    const lengths = [0, 1, 20, 21, 22, 23, 24, 25, 250, 253, 254, 255, 256, 257, 65_530, 65_532, 65_533, 65_534, 65_535, 65_536, 65_537, 1 << 20];
    for (const length of lengths) {
      const inner = new Uint8Array(length).map((_, i) => (i * 7) & 0xff);
      for (const value of [inner, { a: 1, inner }, [1, "x", new Map([["k", inner]])]]) {
        const wrapped = { before: "b".repeat(300), app: new NestedEncoding(value), after: [1, 2, 3] };
        const fast = encodeValueFast(wrapped);
        assert.ok(fast !== null);
        assert.deepEqual(fast, encodeSlow({ before: "b".repeat(300), app: encodeSlow(value), after: [1, 2, 3] }), `inner of ${length} bytes`);
      }
    }
  });

  test("a nested value the fast path leaves to cborg makes the whole encode give up", () => {
    class Point {
      constructor(readonly x: number) {}
    }
    assert.equal(encodeValueFast({ app: new NestedEncoding({ p: new Point(1) }) }), null);
    // And the encoder is usable afterwards.
    assert.deepEqual(encodeValueFast({ ok: 1 }), encodeSlow({ ok: 1 }));
  });
});
