import { test } from "node:test";
import assert from "node:assert/strict";
import { runSimulation } from "../src/sim/simulator.ts";
import { Prng } from "../src/sim/prng.ts";
import { Replica } from "../src/vsr/replica.ts";

// A bounded slice of `npx chronon sim`: fixed seeds so the suite is repeatable; a longer
// run with fresh seeds is `npx chronon sim --seeds N`.
const seedCount = 24;
const requestCount = 300;

test(`${seedCount} simulator seeds (3 replicas, ${requestCount} requests, faults on) pass every checker`, () => {
  const seeds = new Prng(20261128);
  const failures: string[] = [];
  for (let i = 0; i < seedCount; i++) {
    const seed = seeds.next32();
    const result = runSimulation({
      seed, replicaCount: 3, requestCount, factory: (config, sm, recovered) => new Replica(config, sm, recovered),
    });
    if (!result.ok) failures.push(`seed ${seed}: ${result.failure!.checker}: ${result.failure!.message.split("\n")[0]} (replay: npx chronon sim --seed ${seed} --requests ${requestCount} --trace)`);
  }
  assert.deepEqual(failures, []);
});
