import { test } from "node:test";
import assert from "node:assert/strict";
import { runSimulation } from "../src/sim/simulator.ts";
import { Prng } from "../src/sim/prng.ts";
import { Replica } from "../src/vsr/replica.ts";

// A bounded slice of `npx chronon sim`: fixed seeds so the suite is repeatable; a longer
// run with fresh seeds is `npx chronon sim --seeds N`.
const seedCount = 24;
const requestCount = 300;

// Seeds of this slice on which the replica is known to fail (docs/simulator.md, "Open
// findings"): a replica persists log_view before the view's log is on disk, and a
// restarted non-voting primary sends to itself. They are replayed below and must keep
// failing until the replica is fixed, so this list cannot hide a new failure: any other
// seed that fails fails the suite, and a listed seed that starts passing fails it too,
// asking for the list to shrink.
const knownFailures = new Set([2198206724, 1916548986, 1957977418, 1475572363]);

function run(seed: number) {
  return runSimulation({ seed, replicaCount: 3, requestCount, factory: (config, sm, recovered) => new Replica(config, sm, recovered) });
}

test(`${seedCount} simulator seeds (3 replicas, ${requestCount} requests, faults on) pass every checker, but for the known replica bugs`, () => {
  const seeds = new Prng(20261128);
  const unexpected: string[] = [];
  const fixed: number[] = [];
  for (let i = 0; i < seedCount; i++) {
    const seed = seeds.next32();
    const result = run(seed);
    if (knownFailures.has(seed)) {
      if (result.ok) fixed.push(seed);
      continue;
    }
    if (!result.ok) unexpected.push(`seed ${seed}: ${result.failure!.checker}: ${result.failure!.message.split("\n")[0]} (replay: npx chronon sim --seed ${seed} --requests ${requestCount} --trace)`);
  }
  assert.deepEqual(unexpected, []);
  assert.deepEqual(fixed, [], "these seeds pass now: remove them from knownFailures");
});
