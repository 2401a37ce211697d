import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeValue } from "../src/app/value_codec.ts";
import { cborDepthMax, cborItemEnd, cborUintSize, writeCborUint } from "../src/codec/cbor_item.ts";

const values: unknown[] = [
  0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, -1, -24, -25, -(2 ** 40),
  1.5, -0.1, 1e300, NaN, Infinity, 2n ** 63n - 1n, -(2n ** 63n),
  "", "a", "x".repeat(23), "x".repeat(24), "é".repeat(300), "v".repeat(70_000),
  new Uint8Array(0), new Uint8Array(16).fill(7), new Uint8Array(300),
  true, false, null, undefined,
  [], [1, [2, [3, [4]]]], { type: "put", key: "c1k2", value: "v".repeat(256) },
  new Map<unknown, unknown>([["a", 1], [2, new Set([3, 4])], [new Uint8Array([1]), { nested: [null] }]]),
  { ok: true, value: { ok: true, value: "x", version: 3 }, effects: ["0".repeat(32)] },
];

test("cborItemEnd finds the end of every value the codec writes, alone and followed by more bytes", () => {
  for (const value of values) {
    const bytes = encodeValue(value);
    assert.equal(cborItemEnd(bytes, 0), bytes.length, `alone: ${String(value).slice(0, 40)}`);
    const followed = new Uint8Array(bytes.length + 3);
    followed.set([0x01], 0);
    followed.set(bytes, 1);
    assert.equal(cborItemEnd(followed, 1), bytes.length + 1, `at an offset, followed by more: ${String(value).slice(0, 40)}`);
  }
});

test("cborItemEnd refuses every truncation, reserved heads, stray breaks and nesting past the bound", () => {
  for (const value of values) {
    const bytes = encodeValue(value);
    for (let cut = 0; cut < Math.min(bytes.length, 64); cut++) {
      assert.equal(cborItemEnd(bytes.subarray(0, cut), 0), -1, `${String(value).slice(0, 30)} cut at ${cut}`);
    }
  }
  for (const head of [0x1c, 0x1d, 0x1e, 0x3f, 0xff, 0xdf]) assert.equal(cborItemEnd(new Uint8Array([head, 0, 0, 0]), 0), -1, `head ${head}`);
  assert.equal(cborItemEnd(new Uint8Array([0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0), -1, "a count past the rest");
  const deep = new Uint8Array(cborDepthMax + 2).fill(0x81);
  deep[deep.length - 1] = 0x00;
  assert.equal(cborItemEnd(deep, 0), -1, "too deep");
  const fine = new Uint8Array(cborDepthMax).fill(0x81);
  fine[fine.length - 1] = 0x00;
  assert.equal(cborItemEnd(fine, 0), fine.length);
});

test("cborItemEnd walks indefinite-length strings, arrays and maps to their break", () => {
  // (_ "ab" "c"), [_ 1, [2]], {_ "a": 1}, then a trailing byte.
  const bytes = new Uint8Array([0x7f, 0x62, 0x61, 0x62, 0x61, 0x63, 0xff, 0x9f, 0x01, 0x81, 0x02, 0xff, 0xbf, 0x61, 0x61, 0x01, 0xff, 0x00]);
  assert.equal(cborItemEnd(bytes, 0), 7);
  assert.equal(cborItemEnd(bytes, 7), 12);
  assert.equal(cborItemEnd(bytes, 12), 17);
  assert.equal(cborItemEnd(new Uint8Array([0x7f, 0x41, 0x00, 0xff]), 0), -1, "a byte-string chunk in a text string");
  assert.equal(cborItemEnd(new Uint8Array([0xbf, 0x01, 0xff]), 0), -1, "a key without a value");
  assert.equal(cborItemEnd(new Uint8Array([0x9f, 0x01]), 0), -1, "no break");
});

test("writeCborUint writes what the codec writes for every width", () => {
  for (const n of [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
    const expected = encodeValue(n);
    const out = new Uint8Array(expected.length + 2);
    assert.equal(writeCborUint(out, 1, n), 1 + expected.length);
    assert.equal(cborUintSize(n), expected.length);
    assert.deepEqual(out.subarray(1, 1 + expected.length), expected, `n = ${n}`);
  }
  assert.throws(() => writeCborUint(new Uint8Array(9), 0, -1), RangeError);
  assert.throws(() => writeCborUint(new Uint8Array(9), 0, 1.5), RangeError);
});
