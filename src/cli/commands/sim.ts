/**
 * `chronon sim`: runs the deterministic simulator over many seeds, or replays one seed.
 * See docs/simulator.md.
 * @module
 */
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { runtimeName } from "../runtime.ts";
import { Replica } from "../../vsr/replica.ts";
import type { CheckerName } from "../../sim/checkers.ts";
import type { ReplicaFactory, SimResult } from "../../sim/simulator.ts";
import { runSimulation } from "../../sim/simulator.ts";
import { Prng } from "../../sim/prng.ts";
import { bankWorkload } from "../../sim/bank_workload.ts";
import { loadApp } from "../../node/load_app.ts";

const usage = `chronon sim [--seeds N] [--seed-base B] [--replicas 1|3|5] [--requests R] [--app APP] [--json]
chronon sim --seed S [--replicas 1|3|5] [--requests R] [--app APP] [--trace] [--json]

Runs the deterministic simulator: a cluster of pure VSR replicas, clients issuing
get/put/compare-and-set, and a seeded nemesis (crashes, partitions, loss, duplication,
replay, torn writes, bit flips and misdirected writes on a minority, lost disks, clock
skew), then a liveness phase with the faults healed. Checkers: commits never change and
agree, the history is linearizable, equal prefixes give equal state hashes, and every
request completes once the faults stop.

  --seeds N       random seeds to run (default 100); seeds derive from --seed-base,
                  which defaults to one read from the clock and printed first
  --seed S        replay one seed exactly; prints its trace hash (same every time)
  --trace         with --seed: print every event of the run
  --replicas K    cluster size (default 3)
  --app APP       run an application through the kernel's executor instead of the kv
                  store: APP is a module whose default export speaks the bank example's
                  events (examples/bank.ts). The primaries run the kernel's effect runner
                  against a simulated idempotent, view-fencing webhook sink (slow, lossy,
                  flaky); checkers add: effects executed at least once, acknowledged
                  exactly once, applied once at the sink, never for an uncommitted event;
                  the total of all balances equals the committed deposits
  --requests R    client requests per run (default 1000)
  --json          one JSON object per run (and a summary object) instead of text

Exit codes: 0 all seeds passed; 1 a correctness checker failed (commits, linearizability,
state_hash); 3 liveness failed; 4 a replica crashed (threw); 2 usage. With several kinds
of failure, the most severe wins: 1, then 4, then 3.`;

const realReplica: ReplicaFactory = (config, stateMachine, recovered) => new Replica(config, stateMachine, recovered);

/** Exit code of one failed checker. */
export function exitCodeOf(checker: CheckerName): number {
  switch (checker) {
    case "commits":
    case "linearizability":
    case "state_hash":
    case "effects":
    case "balances":
      return 1;
    case "liveness":
      return 3;
    case "crash":
      return 4;
  }
}

function worst(a: number, b: number): number {
  const rank = (code: number) => (code === 1 ? 3 : code === 4 ? 2 : code === 3 ? 1 : 0);
  return rank(b) > rank(a) ? b : a;
}

function parseCount(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

function failureLine(result: SimResult): string {
  const f = result.failure!;
  return `FAIL seed ${result.seed} checker ${f.checker}: ${f.message.split("\n")[0]}  (replay: npx chronon sim --seed ${result.seed} --trace)`;
}

/** `chronon sim`. */
export const command: Command = {
  name: "sim",
  summary: "run the deterministic simulator over random seeds, or replay one seed",
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        seeds: { type: "string" },
        "seed-base": { type: "string" },
        seed: { type: "string" },
        trace: { type: "boolean", default: false },
        replicas: { type: "string" },
        requests: { type: "string" },
        json: { type: "boolean", default: false },
        app: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
    const replicaCount = parseCount(values.replicas, "replicas", 3);
    if (replicaCount !== 1 && replicaCount !== 3 && replicaCount !== 5) throw new UsageError("--replicas must be 1, 3 or 5");
    const requestCount = parseCount(values.requests, "requests", 1000);
    if (values.trace && values.seed === undefined) throw new UsageError("--trace needs --seed S");
    if (values.seed !== undefined && values.seeds !== undefined) throw new UsageError("give --seed S or --seeds N, not both");
    const app = values.app === undefined ? undefined : await loadApp(values.app);
    const workloadOf = (seed: number) => (app === undefined ? {} : { workload: bankWorkload(app, seed) });

    if (values.seed !== undefined) {
      const seed = parseCount(values.seed, "seed", 0, 0);
      const started = performance.now();
      const result = runSimulation({ seed, replicaCount, requestCount, factory: realReplica, traceLines: values.trace, ...workloadOf(seed) });
      const ms = performance.now() - started;
      if (values.trace && result.traceLines !== null) {
        for (const line of result.traceLines) console.log(line);
      }
      if (values.json) {
        console.log(JSON.stringify({ seed, ok: result.ok, failure: result.failure ?? null, traceHash: result.traceHash, ms: Math.round(ms), stats: result.stats, profile: result.profile }));
      } else {
        if (!result.ok) console.log(failureLine(result));
        const s = result.stats;
        console.log(`seed ${seed}: ${result.ok ? "ok" : "FAILED"}  trace hash ${result.traceHash}  ${Math.round(ms)} ms`);
        console.log(`  ticks ${s.ticks} (faults healed at ${s.healTick}), requests ok ${s.requestsCompleted} unknown ${s.requestsUnknown} failed ${s.requestsFailed}, commit op ${s.commitOpMax}, views ${s.viewMax}`);
        if (result.workloadStats !== undefined) console.log(`  ${formatWorkloadStats(result.workloadStats)}`);
        console.log(`  crashes ${s.crashes}, partitions ${s.partitions}, bit flips ${s.bitFlips}, misdirects ${s.misdirects}, torn writes ${s.tornWrites}, lost disks ${s.lostDisks}, messages ${s.messagesSent} (lost ${s.messagesLost}, duplicated ${s.messagesDuplicated}, replayed ${s.messagesReplayed}, partitioned ${s.messagesPartitioned}); history ${s.lincheck}`);
      }
      return result.ok ? 0 : exitCodeOf(result.failure!.checker);
    }

    const seedCount = parseCount(values.seeds, "seeds", 100);
    // The one place the simulator touches a clock: to pick a base seed, printed so any run replays.
    const seedBase = values["seed-base"] !== undefined ? parseCount(values["seed-base"], "seed-base", 0, 0) : Date.now() % 1_000_000_007;
    const seedPrng = new Prng(seedBase);
    if (!values.json) console.log(`chronon sim: ${seedCount} seeds from base ${seedBase}, ${replicaCount} replicas, ${requestCount} requests, ${runtimeName()}`);
    const totals = { requests: 0, unknown: 0, commits: 0, viewChanges: 0, crashes: 0, partitions: 0, diskFaults: 0, messagesLost: 0 };
    const workloadTotals: Record<string, number> = {};
    let failures = 0;
    let exitCode = 0;
    const started = performance.now();
    for (let i = 0; i < seedCount; i++) {
      const seed = seedPrng.next32() * 0x10000 + seedPrng.int(0x10000);
      const result = runSimulation({ seed, replicaCount, requestCount, factory: realReplica, ...workloadOf(seed) });
      if (result.workloadStats !== undefined) {
        for (const [name, value] of Object.entries(result.workloadStats)) workloadTotals[name] = (workloadTotals[name] ?? 0) + value;
      }
      const s = result.stats;
      totals.requests += s.requestsCompleted;
      totals.unknown += s.requestsUnknown;
      totals.commits += s.commitOpMax;
      totals.viewChanges += s.viewMax;
      totals.crashes += s.crashes;
      totals.partitions += s.partitions;
      totals.diskFaults += s.bitFlips + s.misdirects + s.tornWrites + s.lostDisks;
      totals.messagesLost += s.messagesLost;
      if (values.json) console.log(JSON.stringify({ seed, ok: result.ok, failure: result.failure ?? null, traceHash: result.traceHash, stats: s, ...(result.workloadStats === undefined ? {} : { workload: result.workloadStats }) }));
      if (!result.ok) {
        failures++;
        exitCode = worst(exitCode, exitCodeOf(result.failure!.checker));
        if (!values.json) console.log(failureLine(result));
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const perMinute = seedCount / seconds * 60;
    if (values.json) {
      console.log(JSON.stringify({ summary: true, seedBase, seeds: seedCount, failures, seconds, seedsPerMinute: perMinute, ...totals, ...(app === undefined ? {} : { workload: workloadTotals }) }));
    } else {
      console.log(`${seedCount} seeds, ${failures} failed, ${seconds.toFixed(1)} s (${perMinute.toFixed(0)} seeds/minute)`);
      console.log(`  requests ok ${totals.requests}, unknown ${totals.unknown}; commits ${totals.commits}; view changes ${totals.viewChanges}`);
      if (app !== undefined) console.log(`  ${formatWorkloadStats(workloadTotals)}`);
      console.log(`  faults: crashes ${totals.crashes}, partitions ${totals.partitions}, disk faults ${totals.diskFaults}, messages lost ${totals.messagesLost}`);
    }
    return exitCode;
  },
};

function formatWorkloadStats(stats: Readonly<Record<string, number>>): string {
  return Object.entries(stats).map(([name, value]) => `${name} ${value}`).join(", ");
}
