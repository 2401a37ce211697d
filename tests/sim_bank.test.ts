import { describe, test } from "node:test";
import assert from "node:assert/strict";
import bank from "../examples/bank.ts";
import { encodeValue } from "../src/app/value_codec.ts";
import { BalanceChecker, bankWorkload, DepositLedger } from "../src/sim/bank_workload.ts";
import { Violation } from "../src/sim/checkers.ts";
import { EffectSink } from "../src/sim/effect_sink.ts";
import { EffectsChecker } from "../src/sim/effects_checker.ts";
import { Prng } from "../src/sim/prng.ts";
import { runSimulation } from "../src/sim/simulator.ts";
import { Replica } from "../src/vsr/replica.ts";

const idA = "a".repeat(32);
const idB = "b".repeat(32);

function effectBytes(amount: number): Uint8Array {
  return encodeValue({ kind: "http", url: "http://sink.sim/x", method: "POST", headers: {}, body: { amount }, timeoutMs: 1000 });
}

function throwsViolation(checker: string, pattern: RegExp, body: () => void): void {
  assert.throws(body, (error: unknown) => error instanceof Violation && error.checker === checker && pattern.test(error.message));
}

/** A checker that saw effect A committed at op 5 on two replicas. */
function checkerWithEffect(): EffectsChecker {
  const checker = new EffectsChecker();
  checker.recordEffect(0, idA, 5, effectBytes(10));
  checker.recordEffect(1, idA, 5, effectBytes(10));
  return checker;
}

describe("effects checker", () => {
  test("a complete history passes: delivered (twice), applied once, acknowledged once on every replica", () => {
    const checker = checkerWithEffect();
    checker.recordDelivery(idA, 1);
    checker.recordApplication(idA, JSON.stringify({ amount: 10 }));
    checker.recordDelivery(idA, 2);
    checker.recordAck(0, idA, 9);
    checker.recordAck(1, idA, 9);
    checker.final();
    assert.deepEqual(checker.counts(), { committed: 1, acknowledged: 1, deliveries: 2, applications: 1 });
  });

  test("an effect of an event that never committed is executed: violation", () => {
    const checker = checkerWithEffect();
    throwsViolation("effects", /no replica applied an event that created it/, () => checker.recordDelivery(idB, 3));
  });

  test("two replicas record different effects under one id: violation", () => {
    const checker = checkerWithEffect();
    throwsViolation("effects", /other content/, () => checker.recordEffect(2, idA, 5, effectBytes(11)));
    throwsViolation("effects", /other content/, () => checker.recordEffect(2, idA, 6, effectBytes(10)));
  });

  test("an effect acknowledged at two ops: violation", () => {
    const checker = checkerWithEffect();
    checker.recordAck(0, idA, 9);
    throwsViolation("effects", /acknowledged twice: at op 9 .* at op 12/, () => checker.recordAck(1, idA, 12));
  });

  test("an acknowledgement of an effect no committed event created: violation", () => {
    const checker = checkerWithEffect();
    throwsViolation("effects", /no committed event created/, () => checker.recordAck(0, idB, 9));
  });

  test("the sink applies an effect twice, or with another body: violation", () => {
    const twice = checkerWithEffect();
    twice.recordApplication(idA, JSON.stringify({ amount: 10 }));
    throwsViolation("effects", /applied effect .* 2 times/, () => twice.recordApplication(idA, JSON.stringify({ amount: 10 })));
    const changed = checkerWithEffect();
    throwsViolation("effects", /reached the sink with body/, () => changed.recordApplication(idA, JSON.stringify({ amount: 99 })));
  });

  test("a dead letter is a violation (the simulated sink never refuses the current primary for good)", () => {
    const checker = checkerWithEffect();
    throwsViolation("effects", /dead-lettered at op 9/, () => checker.recordDeadLetter(0, idA, 9, "HTTP 409"));
  });

  test("at the end: never executed, never acknowledged, never applied are violations", () => {
    throwsViolation("effects", /never executed/, () => checkerWithEffect().final());
    const unacked = checkerWithEffect();
    unacked.recordDelivery(idA, 1);
    unacked.recordApplication(idA, JSON.stringify({ amount: 10 }));
    throwsViolation("effects", /never acknowledged/, () => unacked.final());
    const unapplied = checkerWithEffect();
    unapplied.recordDelivery(idA, 1);
    unapplied.recordAck(0, idA, 9);
    throwsViolation("effects", /applied 0 times/, () => unapplied.final());
    assert.equal(unapplied.unacknowledged(), 0);
  });
});

describe("effect sink", () => {
  test("applies an id once, answers duplicates 200 without applying, and fences a view older than one it saw", () => {
    const checker = checkerWithEffect();
    checker.recordEffect(0, idB, 6, effectBytes(20));
    const sink = new EffectSink(checker, new Prng(1), 0);
    assert.equal(sink.receive(idA, 2, JSON.stringify({ amount: 10 })).status, 200);
    assert.equal(sink.receive(idA, 2, JSON.stringify({ amount: 10 })).status, 200);
    // A deposed primary of view 1 arrives late: refused, not applied.
    const late = sink.receive(idB, 1, JSON.stringify({ amount: 20 }));
    assert.equal(late.status, 409);
    assert.deepEqual(sink.stats, { deliveries: 3, applied: 1, duplicates: 1, fenced: 1, failed: 0 });
    assert.equal(sink.receive(idB, 3, JSON.stringify({ amount: 20 })).status, 200);
    assert.equal(checker.counts().applications, 2);
  });
});

describe("balance checker", () => {
  test("passes while the total equals the committed deposits, across a restart from a checkpoint", () => {
    const ledger = new DepositLedger();
    const replica0 = new BalanceChecker(0, ledger);
    ledger.record(1, 100);
    replica0.check(1, 100, 100);
    replica0.check(2, 0, 100);
    ledger.record(3, 5);
    replica0.check(3, 5, 105);
    // Replica 1 restarted from a checkpoint at op 2 and applies op 3 first.
    const replica1 = new BalanceChecker(1, ledger);
    replica1.check(3, 5, 105);
  });

  test("money created or destroyed: violation", () => {
    const ledger = new DepositLedger();
    const checker = new BalanceChecker(0, ledger);
    ledger.record(1, 100);
    checker.check(1, 100, 100);
    throwsViolation("balances", /holds 101 .* after op 2, but the deposits .* sum to 100/, () => checker.check(2, 0, 101));
    throwsViolation("balances", /deposited 100 on one replica and 7/, () => ledger.record(1, 7));
  });
});

describe("bank simulation", () => {
  const factory = (config: ConstructorParameters<typeof Replica>[0], sm: ConstructorParameters<typeof Replica>[1], recovered: ConstructorParameters<typeof Replica>[2]) =>
    new Replica(config, sm, recovered);

  function run(seed: number, requests: number) {
    const workload = bankWorkload(bank, seed);
    return runSimulation({ seed, replicaCount: 3, requestCount: requests, factory, workload });
  }

  test("a slice of seeds (3 replicas, 150 requests, faults on): every checker passes and effects reach the sink", () => {
    const seeds = new Prng(20261128);
    const failures: string[] = [];
    let acknowledged = 0;
    for (let i = 0; i < 4; i++) {
      const seed = seeds.next32();
      const result = run(seed, 150);
      if (!result.ok) failures.push(`seed ${seed}: ${result.failure!.checker}: ${result.failure!.message.split("\n")[0]} (replay: npx chronon sim --app examples/bank.ts --seed ${seed} --requests 150 --trace)`);
      const stats = result.workloadStats!;
      assert.equal(stats.effectsAcknowledged, stats.effectsCommitted);
      acknowledged += stats.effectsAcknowledged!;
    }
    assert.deepEqual(failures, []);
    assert.ok(acknowledged > 0, "the slice executed effects");
  });

  test("a seed replays exactly: the same trace hash and counters twice", () => {
    const first = run(77, 120);
    const second = run(77, 120);
    assert.equal(first.traceHash, second.traceHash);
    assert.deepEqual(first.workloadStats, second.workloadStats);
    assert.ok(first.ok, first.failure?.message);
  });
});
