import process from "node:process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { nemesisKinds } from "../../chaos/nemesis.ts";
import type { NemesisKind } from "../../chaos/nemesis.ts";
import { formatSummary, runChaos } from "../../chaos/run.ts";

const usage = `chronon chaos [--duration S] [--seed N] [--replicas 3|5] [--workload kv|bank]
              [--nemesis kill,pause,partition,disk,clock] [--out DIR] [--clients C] [--keys K]

Starts a cluster of real replica processes on loopback (each replica's bus links pass
through fault-injecting TCP proxies), drives it with concurrent clients that record every
operation, and injects one fault at a time for S seconds (default 60), chosen by the seed:
  kill       SIGKILL a replica (the primary 60% of the time), restart it 1-4 s later
  pause      SIGSTOP a replica (often the primary) for 1-4 s, then SIGCONT
  partition  isolate a replica both ways, or one way (it sends but receives nothing, or
             the reverse), or slow its links by 50-500 ms, or (5 replicas) cut two
             replicas from the other three, for 1-4 s
  disk       fdatasync fails with EIO (the replica exits and is restarted), torn writes
             then SIGKILL mid-write, or bit flips in a stopped replica's settled journal
  clock      skew a replica's clock source by up to an hour either way for 1-4 s
Disk and clock faults use the test-only CHRONON_TEST_FAULTS hook (docs/testing.md).

Then it heals everything, waits for the replicas to converge, and checks: the history is
linearizable (kv), every acknowledged write is present (kv), all replicas hold the same
state hash, and (bank) balances are conserved, every committed transfer's webhook was
applied exactly once at the sink and none is missing. It writes to DIR: history.edn
(Jepsen's kv format: \`chronon lincheck --model kv DIR/history.edn\` reads it) or
history.jsonl (bank), summary.txt, summary.json, and each replica's data dir and log.

  --duration S   seconds of faults (default 60; 5 to 86400)
  --seed N       fault schedule and workload mix (default: random, printed)
  --replicas     3 (default) or 5
  --workload     kv (default) or bank
  --nemesis      fault kinds, comma-separated (default kill,pause,partition,disk,clock)
  --out DIR      output directory (default: a new directory under the system temp dir)
  --clients C    concurrent clients (default 8)
  --keys K       kv keys (default 8)

Exit code 0 when every check holds; 1 on any violation (the seed is printed to replay the
schedule); 3 when the linearizability search ran out of budget but nothing else failed.`;

/** \`chronon chaos\`: real processes, real sockets, real faults, every history checked. */
export const command: Command = {
  name: "chaos",
  summary: "fault injection against real replica processes (kill, pause, partition, disk, clock), every history checked",
  usage,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          duration: { type: "string", default: "60" },
          seed: { type: "string" },
          replicas: { type: "string", default: "3" },
          workload: { type: "string", default: "kv" },
          nemesis: { type: "string", default: nemesisKinds.join(",") },
          out: { type: "string" },
          clients: { type: "string", default: "8" },
          keys: { type: "string", default: "8" },
        },
        strict: true,
      }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const durationS = Number(values.duration);
    if (!(Number.isFinite(durationS) && durationS >= 5 && durationS <= 86_400)) throw new UsageError("--duration must be from 5 to 86400 seconds");
    const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError("--seed must be a non-negative integer");
    const replicaCount = Number(values.replicas);
    if (replicaCount !== 3 && replicaCount !== 5) throw new UsageError("--replicas must be 3 or 5");
    if (values.workload !== "kv" && values.workload !== "bank") throw new UsageError("--workload must be kv or bank");
    const kinds = values.nemesis.split(",").map((k) => k.trim()).filter((k) => k !== "");
    for (const kind of kinds) {
      if (!(nemesisKinds as readonly string[]).includes(kind)) throw new UsageError(`--nemesis: unknown fault kind '${kind}' (kinds: ${nemesisKinds.join(", ")})`);
    }
    if (kinds.length === 0) throw new UsageError("--nemesis needs at least one fault kind");
    const clientCount = Number(values.clients);
    if (!Number.isInteger(clientCount) || clientCount < 1 || clientCount > 256) throw new UsageError("--clients must be from 1 to 256");
    const keyCount = Number(values.keys);
    if (!Number.isInteger(keyCount) || keyCount < 1 || keyCount > 1000) throw new UsageError("--keys must be from 1 to 1000");
    const out = values.out === undefined ? mkdtempSync(join(tmpdir(), "chronon-chaos-")) : resolve(values.out);

    const say = (line: string) => console.log(`chaos: ${line}`);
    // Interrupted: exit through process.exit so the cluster's exit hook kills the replicas.
    const interrupted = (signal: string) => {
      console.error(`chaos: ${signal}: stopping the replicas (seed ${seed}, output in ${out})`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    };
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    say(`seed ${seed}; output in ${out}`);
    try {
      const summary = await runChaos({
        durationS,
        seed,
        replicaCount,
        workload: values.workload,
        nemesis: kinds as NemesisKind[],
        out,
        clientCount,
        keyCount,
        checkStepsMax: 20_000_000,
        log: say,
      });
      console.log("");
      process.stdout.write(formatSummary(summary));
      if (summary.result === "ok") return 0;
      console.log(`chaos: seed ${seed}: replay with npx chronon chaos --seed ${seed} --duration ${durationS} --replicas ${replicaCount} --workload ${values.workload} --nemesis ${kinds.join(",")}`);
      return summary.result === "unknown" ? 3 : 1;
    } catch (error) {
      console.error(`chaos: seed ${seed}: ${(error as Error).message} (output in ${out})`);
      return 1;
    }
  },
};
