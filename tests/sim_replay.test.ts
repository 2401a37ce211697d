import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runSimulation } from "../src/sim/simulator.ts";
import type { ReplicaFactory } from "../src/sim/simulator.ts";
import { Replica } from "../src/vsr/replica.ts";
import { FakeReplica } from "./sim_fake_replica.ts";

const fake: ReplicaFactory = (config, sm, recovered) => new FakeReplica(config, sm, recovered);
const real: ReplicaFactory = (config, sm, recovered) => new Replica(config, sm, recovered);

describe("replay", () => {
  test("the fake single node completes every request and the history is linearizable", () => {
    const result = runSimulation({ seed: 11, replicaCount: 1, requestCount: 200, faults: false, factory: fake });
    assert.ok(result.ok, result.failure?.message);
    assert.equal(result.stats.requestsCompleted, 200);
    assert.equal(result.stats.lincheck, "linearizable");
  });
  test("the same seed gives the same trace hash; another seed a different one", () => {
    const a = runSimulation({ seed: 5, replicaCount: 3, requestCount: 150, factory: real });
    const b = runSimulation({ seed: 5, replicaCount: 3, requestCount: 150, factory: real });
    const c = runSimulation({ seed: 6, replicaCount: 3, requestCount: 150, factory: real });
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.stats, b.stats);
    assert.notEqual(a.traceHash, c.traceHash);
  });
  test("trace lines do not change the hash", () => {
    const a = runSimulation({ seed: 9, replicaCount: 3, requestCount: 100, factory: real });
    const b = runSimulation({ seed: 9, replicaCount: 3, requestCount: 100, factory: real, traceLines: true });
    assert.equal(a.traceHash, b.traceHash);
    assert.ok(b.traceLines !== null && b.traceLines.length > 100);
  });
});
