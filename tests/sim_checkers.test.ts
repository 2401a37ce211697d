import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  checkLinearizable, checkLiveness, CommitChecker, StateHashChecker, Violation,
} from "../src/sim/checkers.ts";
import type { HistoryEvent, KvCasInput, KvCasOutput } from "../src/sim/lincheck/mod.ts";
import { runSimulation } from "../src/sim/simulator.ts";
import { FakeReplica } from "./sim_fake_replica.ts";

const sum = (b: number) => new Uint8Array(16).fill(b);

function throwsFrom(checker: string, fn: () => unknown): void {
  assert.throws(fn, (error: unknown) => error instanceof Violation && error.checker === checker);
}

describe("checkers fail on violations", () => {
  test("commits: a replica committing another entry at an op fails; agreement passes", () => {
    const c = new CommitChecker();
    c.record(0, 1, sum(1));
    c.record(1, 1, sum(1));
    c.record(0, 2, sum(2));
    throwsFrom("commits", () => c.record(2, 2, sum(3)));
    throwsFrom("commits", () => c.record(0, 1, sum(9)));
  });
  test("state_hash: different hashes after the same op fail", () => {
    const s = new StateHashChecker();
    s.record(0, 5, sum(1));
    s.record(1, 5, sum(1));
    throwsFrom("state_hash", () => s.record(2, 5, sum(2)));
  });
  test("linearizability: a stale read after a completed write fails; a valid history passes", () => {
    const bad: HistoryEvent<KvCasInput, KvCasOutput>[] = [
      { kind: "invoke", client: 0, time: 1, input: { f: "put", key: "k", value: 1 } },
      { kind: "ok", client: 0, time: 2, output: "ok" },
      { kind: "invoke", client: 1, time: 3, input: { f: "get", key: "k" } },
      { kind: "ok", client: 1, time: 4, output: null },
    ];
    throwsFrom("linearizability", () => checkLinearizable(bad));
    const good = bad.slice(0, 3).concat([{ kind: "ok", client: 1, time: 4, output: 1 }]);
    assert.equal(checkLinearizable(good), "linearizable");
  });
  test("liveness: an operation open past the bound after the heal fails", () => {
    const open = [{ client: 3, invokedTick: 10, description: "put k0" }];
    checkLiveness(open, 500, 100, 1000);
    throwsFrom("liveness", () => checkLiveness(open, 1200, 100, 1000));
  });
  test("a run whose replica commits two entries at one op is reported by the commits checker", () => {
    const result = runSimulation({
      seed: 3, replicaCount: 1, requestCount: 50, faults: false,
      factory: (config, sm, recovered) => {
        const fake = new FakeReplica(config, sm, recovered);
        fake.corruptOp = 7;
        return fake;
      },
    });
    assert.equal(result.ok, false);
    assert.equal(result.failure?.checker, "commits");
  });
  test("a replica that throws is reported as a crash, not an exception", () => {
    const result = runSimulation({
      seed: 3, replicaCount: 1, requestCount: 50, faults: false,
      factory: (config, sm, recovered) => {
        const fake = new FakeReplica(config, sm, recovered);
        fake.receive = () => {};
        fake.query = () => {
          throw new Error("boom");
        };
        return fake;
      },
    });
    // Queries are a share of the gets; with 50 requests one is all but certain.
    assert.equal(result.ok, false);
    assert.equal(result.failure?.checker, "crash");
    assert.match(result.failure!.message, /boom/);
  });
});
