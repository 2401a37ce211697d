/**
 * One chaos run, start to verdict: start the cluster, drive the workload while the
 * nemesis injects faults, heal, wait for convergence, check everything, write the history
 * and the summary. See docs/testing.md.
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { auditApplications, startWebhookSink } from "../cli/demo/webhook_sink.ts";
import type { WebhookSink } from "../cli/demo/webhook_sink.ts";
import { check, kv, operationsFromEvents, writeKvEdn } from "../sim/lincheck/mod.ts";
import { Prng } from "../sim/prng.ts";
import { crashLines, findLostWrites, percentile, unavailabilityByKind } from "./checks.ts";
import type { UnavailabilityWindow } from "./checks.ts";
import { ChannelFollower } from "./channel_follower.ts";
import { ChaosCluster } from "./cluster.ts";
import { findPrimary, runNemesis, Supervisor } from "./nemesis.ts";
import type { NemesisKind, NemesisReport } from "./nemesis.ts";
import { bankAccounts, bankClient, bankDepositEach, runBankWorkload, setUpBank } from "./workload_bank.ts";
import type { BankRecord } from "./workload_bank.ts";
import { HistoryRecorder, readAllKeys, runKvWorkload } from "./workload_kv.ts";
import type { OperationStats } from "./workload_kv.ts";

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  readonly durationS: number;
  readonly seed: number;
  readonly replicaCount: 3 | 5;
  readonly workload: "kv" | "bank";
  readonly nemesis: readonly NemesisKind[];
  /** Output directory (created): history, summary, replica data dirs and logs. */
  readonly out: string;
  readonly clientCount: number;
  readonly keyCount: number;
  /** Lincheck search budget. */
  readonly checkStepsMax: number;
  readonly log: (line: string) => void;
}

/** One verdict of the run. */
export interface Verdict {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What a run found. */
export interface ChaosSummary {
  readonly seed: number;
  readonly replicas: number;
  readonly workload: string;
  readonly nemesis: readonly string[];
  readonly durationS: number;
  readonly operations: { ok: number; fail: number; info: number; rejected?: number };
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number };
  readonly faults: NemesisReport["faults"];
  readonly faultCounts: Record<string, number>;
  readonly viewChangesAfterPrimaryKill: NemesisReport["viewChanges"];
  readonly views: { first: number; last: number };
  readonly unavailability: UnavailabilityWindow[];
  readonly restartsAfterCrash: number;
  readonly bitFlips: number;
  readonly verdicts: Verdict[];
  /** "ok" when every verdict holds; "violation" when one fails; "unknown" when only the search ran out of budget. */
  readonly result: "ok" | "violation" | "unknown";
  readonly convergenceMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(timeoutMs: number, probe: () => Promise<T | null>): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== null) return value;
    await sleep(100);
  }
  return null;
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Runs one chaos run; resolves with its summary (also written to `out`). */
export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const { log } = options;
  mkdirSync(options.out, { recursive: true });
  const appPath = fileURLToPath(new URL(`../../examples/${options.workload}.ts`, import.meta.url));
  const cluster = await ChaosCluster.create({ replicaCount: options.replicaCount, appPath, dir: options.out, checkpointIntervalOps: 512 });
  const prng = new Prng(options.seed);
  const workloadRandom = new Prng(options.seed ^ 0x5eed);
  let sink: WebhookSink | null = null;
  const verdicts: Verdict[] = [];
  const supervisor = new Supervisor();
  let follower: ChannelFollower | null = null;
  try {
    if (options.workload === "bank") sink = await startWebhookSink();
    for (let i = 0; i < options.replicaCount; i++) cluster.launch(i);
    supervisor.start(cluster, log);
    const first = await waitFor(30_000, () => findPrimary(cluster));
    if (first === null) throw new Error(`no primary within 30 s of starting the cluster (logs in ${options.out})`);
    log(`${options.replicaCount} replicas up, replica ${first.replica} primary of view ${first.view}; ${options.workload} workload, ${options.clientCount} clients, nemesis ${options.nemesis.join(",")}, seed ${options.seed}`);
    if (sink !== null) await setUpBank(cluster.apiUrls, cluster.token, sink.url);
    if (sink !== null) {
      follower = new ChannelFollower(cluster.apiUrls, "transfers");
      follower.start();
    }

    const startedMs = performance.now();
    const nowMs = () => performance.now() - startedMs;
    const recorder = new HistoryRecorder(startedMs);
    let stopWorkload = () => {};
    const stop = new Promise<void>((resolve) => {
      stopWorkload = resolve;
    });
    const deadlineMs = 10_000;
    const workload: Promise<BankRecord | null> = options.workload === "kv"
      ? runKvWorkload({ addresses: cluster.apiUrls, token: cluster.token, clientCount: options.clientCount, keyCount: options.keyCount, random: () => workloadRandom.float(), recorder, stop, deadlineMs }).then(() => null)
      : runBankWorkload({ addresses: cluster.apiUrls, token: cluster.token, clientCount: options.clientCount, random: () => workloadRandom.float(), nowMs, stop, deadlineMs });
    const progress = setInterval(() => {
      const s = options.workload === "kv" ? recorder.stats : null;
      if (s !== null) log(`${(nowMs() / 1000).toFixed(0).padStart(6)} s  ok ${s.ok}  fail ${s.fail}  info ${s.info}`);
    }, 10_000);
    let nemesis: NemesisReport;
    let loadStoppedMs = Number.POSITIVE_INFINITY;
    try {
      nemesis = await runNemesis({ cluster, kinds: options.nemesis, seed: prng.next32(), nowMs, untilMs: options.durationS * 1000, log, supervisor });
      // The cluster is healed: keep the load on a little to see it serve again.
      await sleep(3000);
    } finally {
      // Availability is judged under load only: the final reads come after a quiet spell
      // (convergence), which is no stall. A stretch still open at the stop ends there.
      loadStoppedMs = nowMs();
      stopWorkload();
      clearInterval(progress);
    }
    const bank = await workload;
    const stats: OperationStats = bank?.stats ?? recorder.stats;
    log(`load stopped at ${(nowMs() / 1000).toFixed(1)} s; waiting for convergence`);

    // Convergence: a primary, (bank) an empty outbox, then every replica at one commit.
    const convergeStarted = performance.now();
    const primary = await waitFor(60_000, () => findPrimary(cluster));
    verdicts.push({ name: "primary after healing", ok: primary !== null, detail: primary === null ? "no normal primary within 60 s of healing" : `replica ${primary.replica}, view ${primary.view}` });

    let finals = new Map<string, string | null>();
    if (options.workload === "kv" && primary !== null) {
      finals = await readAllKeys({ addresses: cluster.apiUrls, token: cluster.token, keyCount: options.keyCount, recorder, firstProcess: 1_000_000, deadlineMs: 30_000 });
      const unread = [...finals.values()].filter((v) => v === null).length;
      verdicts.push({ name: "final reads", ok: unread === 0, detail: `${options.keyCount - unread} of ${options.keyCount} keys read after healing` });
    }
    if (options.workload === "bank" && primary !== null) {
      const drained = await waitFor(60_000, async () => {
        const p = await findPrimary(cluster);
        if (p === null) return null;
        try {
          const response = await fetch(`${cluster.apiUrls[p.replica]}/v1/effects?status=pending&limit=1`, { signal: AbortSignal.timeout(1000) });
          const page = await response.json() as { effects?: unknown[] };
          return Array.isArray(page.effects) && page.effects.length === 0 ? true : null;
        } catch {
          return null;
        }
      });
      verdicts.push({ name: "outbox drained", ok: drained !== null, detail: drained === null ? "effects still pending 60 s after healing" : "no pending effect" });
    }
    const converged = await waitFor(60_000, async () => {
      const reports = Array.from({ length: options.replicaCount }, (_, i) => cluster.stateReport(i));
      if (reports.some((r) => r === null || Date.now() - r.atMs > 2000)) return null;
      const commits = reports.map((r) => r!.commit);
      if (!commits.every((c) => c === commits[0])) return null;
      // Same commit in two reports in a row: settled (the executor applied it everywhere).
      await sleep(500);
      const again = Array.from({ length: options.replicaCount }, (_, i) => cluster.stateReport(i));
      if (again.some((r) => r === null || r.commit !== commits[0])) return null;
      return again.map((r) => r!);
    });
    const convergenceMs = Math.round(performance.now() - convergeStarted);
    if (converged === null) {
      const seen = Array.from({ length: options.replicaCount }, (_, i) => cluster.stateReport(i)).map((r, i) => `replica ${i}: ${r === null ? "no report" : `commit ${r.commit} view ${r.view} ${r.status}`}`).join("; ");
      verdicts.push({ name: "replicas converge", ok: false, detail: `no common commit within 60 s (${seen})` });
    } else {
      verdicts.push({ name: "replicas converge", ok: true, detail: `all at commit ${converged[0]!.commit} after ${convergenceMs} ms` });
      const hashes = new Set(converged.map((r) => r.stateHash));
      verdicts.push({
        name: "state hashes equal",
        ok: hashes.size === 1,
        detail: hashes.size === 1 ? `${converged[0]!.stateHash.slice(0, 16)}… on all ${options.replicaCount}` : converged.map((r, i) => `replica ${i} ${r.stateHash.slice(0, 16)}`).join(", "),
      });
    }

    // Workload verdicts.
    if (options.workload === "kv") {
      writeFileSync(join(options.out, "history.edn"), writeKvEdn(recorder.events));
      const checkStarted = performance.now();
      const result = check(kv, operationsFromEvents(recorder.events), { stepsMax: options.checkStepsMax });
      const checkMs = Math.round(performance.now() - checkStarted);
      verdicts.push({
        name: "linearizable",
        ok: result.ok,
        detail: `${result.kind}: ${result.operationCount} operations, ${result.partitionCount} keys, ${result.steps} steps, ${checkMs} ms${result.ok ? "" : `; ${result.explanation}`}`,
      });
      const lost = findLostWrites(recorder.events, finals);
      verdicts.push({
        name: "acknowledged writes present",
        ok: lost.length === 0,
        detail: lost.length === 0 ? `every acknowledged put is the final value or was overwritten` : lost.slice(0, 5).map((l) => `key ${l.key} value ${l.value}: ${l.why} (final ${JSON.stringify(l.finalValue)})`).join("; "),
      });
    } else if (bank !== null && sink !== null && primary !== null) {
      writeFileSync(join(options.out, "history.jsonl"), bank.transfers.map((t) => JSON.stringify(t) + "\n").join(""));
      const reader = follower!;
      await reader.stop();
      const caughtUp = await waitFor(30_000, async () => (await reader.poll()) ? true : null);
      const committedOps = reader.ops;
      verdicts.push({
        name: "transfers channel read completely",
        ok: caughtUp !== null && reader.missed === 0,
        detail: `${committedOps.size} committed transfers followed during the run; ${reader.missed} dropped by retention before they were read${caughtUp === null ? "; no replica answered the last read" : ""}`,
      });
      const { missing, doubled } = auditApplications(sink.applications().values(), committedOps);
      const admin = bankClient(cluster.apiUrls, cluster.token, 30_000);
      const total = await admin.query({ type: "total" }) as number;
      admin.close();
      const expected = bankAccounts.length * bankDepositEach;
      const acknowledged = bank.stats.ok;
      const unknown = bank.stats.info;
      verdicts.push({ name: "balances conserved", ok: total === expected, detail: `total ${total}, deposits ${expected}` });
      verdicts.push({ name: "effects applied once", ok: doubled === 0, detail: `${doubled} duplicate applications at the sink (${sink.counts().duplicateDeliveries} duplicate deliveries answered without applying)` });
      verdicts.push({ name: "no effect missing", ok: missing === 0, detail: `${missing} committed transfers without an applied webhook, of ${committedOps.size}` });
      verdicts.push({
        name: "acknowledged transfers committed",
        ok: committedOps.size >= acknowledged && committedOps.size <= acknowledged + unknown,
        detail: `committed ${committedOps.size}, acknowledged ${acknowledged}, unknown ${unknown}`,
      });
    }

    // Crashes: a replica that stopped itself other than on an injected EIO.
    await supervisor.stop();
    const crashes: string[] = [];
    for (let i = 0; i < options.replicaCount; i++) {
      for (const line of crashLines(cluster.logText(i))) crashes.push(`replica ${i}: ${line.trim()}`);
      for (const code of cluster.unexpectedExitCodes(i)) {
        if (code !== 70) crashes.push(`replica ${i}: exited with code ${code}`);
      }
    }
    verdicts.push({
      name: "no replica crashed by itself",
      ok: crashes.length === 0,
      detail: crashes.length === 0 ? "every exit was a SIGKILL of the nemesis or an injected EIO" : `${crashes.length}: ${[...new Set(crashes)].slice(0, 5).join("; ")}`,
    });

    const faultCounts: Record<string, number> = {};
    for (const fault of nemesis.faults) faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
    const last = await findPrimary(cluster);
    const failed = verdicts.filter((v) => !v.ok);
    const onlyUnknown = failed.length > 0 && failed.every((v) => v.name === "linearizable" && v.detail.startsWith("unknown"));
    const summary: ChaosSummary = {
      seed: options.seed,
      replicas: options.replicaCount,
      workload: options.workload,
      nemesis: options.nemesis,
      durationS: options.durationS,
      operations: { ok: stats.ok, fail: stats.fail, info: stats.info, ...(bank === null ? {} : { rejected: bank.rejected }) },
      latencyMs: {
        p50: round(percentile(stats.latenciesMs, 50)),
        p90: round(percentile(stats.latenciesMs, 90)),
        p99: round(percentile(stats.latenciesMs, 99)),
        max: round(percentile(stats.latenciesMs, 100)),
      },
      faults: nemesis.faults,
      faultCounts,
      viewChangesAfterPrimaryKill: nemesis.viewChanges,
      views: { first: first.view, last: last?.view ?? -1 },
      unavailability: unavailabilityByKind([...stats.okAtMs.filter((t) => t <= loadStoppedMs), loadStoppedMs], nemesis.faults).map((w) => ({ ...w, ms: Math.round(w.ms), fromMs: Math.round(w.fromMs) })),
      restartsAfterCrash: supervisor.restarts,
      bitFlips: nemesis.bitFlips,
      verdicts,
      result: failed.length === 0 ? "ok" : onlyUnknown ? "unknown" : "violation",
      convergenceMs,
    };
    writeFileSync(join(options.out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    writeFileSync(join(options.out, "summary.txt"), formatSummary(summary));
    return summary;
  } finally {
    await follower?.stop();
    await supervisor.stop();
    await cluster.close();
    await sink?.close();
  }
}

/** The human-readable summary. */
export function formatSummary(s: ChaosSummary): string {
  const lines: string[] = [];
  lines.push(`chronon chaos: seed ${s.seed}, ${s.replicas} replicas, ${s.workload}, nemesis ${s.nemesis.join(",")}, ${s.durationS} s`);
  lines.push(`  operations    ok ${s.operations.ok}  fail ${s.operations.fail}  info (unknown) ${s.operations.info}${s.operations.rejected === undefined ? "" : `  rejected ${s.operations.rejected}`}${s.workload === "kv" ? " (final reads included)" : ""}`);
  lines.push(`  latency ms    p50 ${s.latencyMs.p50}  p90 ${s.latencyMs.p90}  p99 ${s.latencyMs.p99}  max ${s.latencyMs.max}`);
  lines.push(`  faults        ${Object.entries(s.faultCounts).map(([k, n]) => `${k} ${n}`).join(", ") || "none"}; ${s.restartsAfterCrash} restarts after a crash, ${s.bitFlips} bits flipped`);
  for (const f of s.faults) lines.push(`    ${(f.startMs / 1000).toFixed(1).padStart(6)}-${(f.endMs / 1000).toFixed(1).padStart(6)} s  ${f.kind}: ${f.detail}`);
  lines.push(`  views         ${s.views.first} → ${s.views.last}`);
  for (const v of s.viewChangesAfterPrimaryKill) lines.push(`    primary ${v.killedReplica} killed in view ${v.oldView}: new primary in view ${v.newView} after ${v.ms} ms`);
  lines.push(`  longest stretch without an acknowledgement, per fault kind:`);
  for (const w of s.unavailability) lines.push(`    ${w.kind.padEnd(10)} ${w.ms} ms from ${(w.fromMs / 1000).toFixed(1)} s (${w.fault})`);
  lines.push(`  verdicts (convergence took ${s.convergenceMs} ms):`);
  for (const v of s.verdicts) lines.push(`    ${v.ok ? "ok  " : "FAIL"} ${v.name}: ${v.detail}`);
  lines.push(s.result === "ok" ? `chaos: every check holds (seed ${s.seed})` : `chaos: ${s.result.toUpperCase()} (replay with --seed ${s.seed})`);
  return lines.map((l) => l + "\n").join("");
}
