import { test } from "node:test";
import assert from "node:assert/strict";
import { runSimulation } from "../src/sim/simulator.ts";
import { Prng } from "../src/sim/prng.ts";
import { Replica } from "../src/vsr/replica.ts";

// A bounded slice of `npx chronon sim`: fixed seeds so the suite is repeatable; a longer
// run with fresh seeds is `npx chronon sim --seeds N`.
const seedCount = 24;
const requestCount = 300;

function run(seed: number, requests = requestCount, replicaCount = 3) {
  return runSimulation({ seed, replicaCount, requestCount: requests, factory: (config, sm, recovered) => new Replica(config, sm, recovered) });
}

function describeFailure(seed: number, requests: number, result: ReturnType<typeof run>): string {
  return `seed ${seed}: ${result.failure!.checker}: ${result.failure!.message.split("\n")[0]} (replay: npx chronon sim --seed ${seed} --requests ${requests} --trace)`;
}

test(`${seedCount} simulator seeds (3 replicas, ${requestCount} requests, faults on) pass every checker`, () => {
  const seeds = new Prng(20261128);
  const failures: string[] = [];
  for (let i = 0; i < seedCount; i++) {
    const seed = seeds.next32();
    const result = run(seed);
    if (!result.ok) failures.push(describeFailure(seed, requestCount, result));
  }
  assert.deepEqual(failures, []);
});

// Seeds on which the simulator once found a replica bug, with the bug each one exposed
// (docs/simulator.md, "Findings"). Each must keep passing.
const regressions: readonly { seed: number; requests: number; bug: string }[] = [
  { seed: 1957977418, requests: 300, bug: "log_view persisted before the view's log was durable: a restarted backup out-claimed a committed op" },
  { seed: 1916548986, requests: 300, bug: "log_view persisted before the view's log was durable" },
  { seed: 1475572363, requests: 300, bug: "log_view persisted before the view's log was durable" },
  { seed: 2198206724, requests: 300, bug: "a restarted non-voting primary sent request_start_view to itself" },
  { seed: 2198206724, requests: 1000, bug: "a nacked gap truncated the new log to an untrusted head (entries of the same view are now trusted below a hole)" },
  { seed: 132874330745385, requests: 1000, bug: "the superblock's commit ran past the journal's log: recovery applied stale entries" },
  { seed: 149893223946938, requests: 1000, bug: "a lost-disk replica voted after catching up to a stale commit and helped lose a committed op" },
  { seed: 2501728565686, requests: 1000, bug: "a nack-truncation onto ops without headers, then a start_view header suffix cut at a corrupt entry" },
  { seed: 15202993707712, requests: 1000, bug: "a replica bound by a do_view_change the others never acted on stayed in view change" },
  { seed: 77509444023419, requests: 1000, bug: "a restarted replica wrote a superblock commit below the one on disk (the node stops on that)" },
  { seed: 147351464545029, requests: 1000, bug: "a replica wrote an unpromised view to its superblock, then rejoined an older view (view on disk went back)" },
  { seed: 199546124897187, requests: 1000, bug: "after a view change (partitions only), a replica appended an entry on top of a stale one its window had dropped: the journal's chain broke (chaos finding 8)" },
  { seed: 273642369536910, requests: 1000, bug: "the same as 199546124897187 (chaos finding 8)" },
  { seed: 142593730656507, requests: 1000, bug: "a replica appended after an entry recovery had found faulty, which the journal refuses (chaos finding 8)" },
];

const regressions5: readonly { seed: number; requests: number; bug: string }[] = [
  { seed: 26578379756785, requests: 1000, bug: "a replica bound by a do_view_change the others never acted on stayed in view change" },
];

test("seeds that once exposed replica bugs pass every checker", () => {
  const failures: string[] = [];
  for (const { seed, requests, bug } of regressions) {
    const result = run(seed, requests);
    if (!result.ok) failures.push(`${describeFailure(seed, requests, result)} — once: ${bug}`);
  }
  for (const { seed, requests, bug } of regressions5) {
    const result = run(seed, requests, 5);
    if (!result.ok) failures.push(`${describeFailure(seed, requests, result)} --replicas 5 — once: ${bug}`);
  }
  assert.deepEqual(failures, []);
});
