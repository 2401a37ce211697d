/**
 * Small byte arrays: fresh up to the running runtime's `freshSizeMax`, views of shared
 * slabs above it up to `slabRequestSizeMax`, fresh again above that; never overlapping.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { allocateBytes, copyBytes, freshSizeMax, slabRequestSizeMax, slabSize } from "../src/app/byte_slab.ts";

const runtime = (globalThis as { Bun?: unknown }).Bun !== undefined ? "bun" : (globalThis as { Deno?: unknown }).Deno !== undefined ? "deno" : "node";

test("the fresh-array threshold is the one measured for this runtime", () => {
  assert.equal(freshSizeMax, { node: 64, bun: 512, deno: 0 }[runtime]);
});

test("arrays up to freshSizeMax and over slabRequestSizeMax own their buffer; those between are slab views", () => {
  for (const size of [1, 16, 64, 65, 300, 512, 513, 1000, slabRequestSizeMax, slabRequestSizeMax + 1, 4096]) {
    const bytes = allocateBytes(size);
    assert.equal(bytes.length, size);
    assert.ok(bytes.every((b) => b === 0), `${size} bytes start zeroed`);
    const inSlab = size > freshSizeMax && size <= slabRequestSizeMax;
    assert.equal(bytes.buffer.byteLength, inSlab ? slabSize : size, `${size} bytes: ${inSlab ? "a slab view" : "its own buffer"}`);
  }
  assert.equal(allocateBytes(0).length, 0);
});

test("slab views never overlap and stay 8-byte aligned; copies hold their bytes", () => {
  const views: Uint8Array[] = [];
  for (let i = 0; i < 400; i++) {
    const size = Math.max(freshSizeMax + 1, 65) + ((i * 37) % 400);
    const view = copyBytes(new Uint8Array(size).fill(i & 0xff), 0, size);
    views.push(view);
  }
  for (let i = 0; i < views.length; i++) {
    assert.ok(views[i]!.every((b) => b === (i & 0xff)), `view ${i} was overwritten`);
    if (views[i]!.buffer.byteLength === slabSize) assert.equal(views[i]!.byteOffset % 8, 0);
  }
});
