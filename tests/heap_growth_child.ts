/**
 * Child of tests/node_heap_growth.test.ts: applies the heap growth given as its argument
 * (src/node/heap_growth.ts), then holds a live set while it makes garbage, as a replica
 * does, and prints the peak committed JS heap in bytes. Node only (see the test).
 */
import process from "node:process";
import { applyHeapGrowth } from "../src/node/heap_growth.ts";

const outcome = applyHeapGrowth(Number(process.argv[2] ?? "0"));
const live: { i: number; s: string }[] = [];
for (let i = 0; i < 120_000; i++) live.push({ i, s: "x".repeat(100) + i });
let heapTotalMax = 0;
let garbage: { i: number; s: string }[] = [];
for (let round = 0; round < 120; round++) {
  garbage = [];
  for (let i = 0; i < 20_000; i++) garbage.push({ i, s: "y".repeat(50) + i });
  heapTotalMax = Math.max(heapTotalMax, process.memoryUsage().heapTotal);
}
console.log(JSON.stringify({ outcome, heapTotalMax, live: live.length, garbage: garbage.length }));
