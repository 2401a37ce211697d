/**
 * The nemesis of a chaos run: one fault at a time, chosen by a seeded PRNG from the kinds
 * asked for, held for a while, then healed, with a pause between faults. The schedule of
 * choices (kind, victim, durations) is a function of the seed; the instants are wall-clock
 * and the victims named "primary" depend on who is primary then, so a replay repeats the
 * schedule, not the interleaving.
 *
 * One fault at a time keeps a quorum connected and alive except inside the fault itself
 * (a partition or a kill takes out at most a minority), so every stall that outlasts the
 * fault plus a view change is a liveness finding.
 * @module
 */
import { join } from "node:path";
import { Prng } from "../sim/prng.ts";
import { flipJournalBits } from "./bit_flip.ts";
import type { ChaosCluster } from "./cluster.ts";
import { controlOff } from "./cluster.ts";

/** Fault kinds `--nemesis` accepts. */
export const nemesisKinds = ["kill", "pause", "partition", "disk", "clock"] as const;

/** One fault kind. */
export type NemesisKind = typeof nemesisKinds[number];

/** A fault as it happened. */
export interface FaultRecord {
  readonly kind: NemesisKind;
  /** What exactly, e.g. "SIGKILL replica 1 (primary)". */
  readonly detail: string;
  /** Wall-clock ms since the run began. */
  readonly startMs: number;
  endMs: number;
}

/** A primary kill and how long the cluster took to have a new normal primary. */
export interface ViewChangeTiming {
  readonly killedReplica: number;
  readonly oldView: number;
  readonly newView: number;
  readonly ms: number;
}

/** Options of {@link runNemesis}. */
export interface NemesisOptions {
  readonly cluster: ChaosCluster;
  readonly kinds: readonly NemesisKind[];
  readonly seed: number;
  /** Ms since the run began. */
  readonly nowMs: () => number;
  /** The nemesis stops injecting at this instant (ms since the run began). */
  readonly untilMs: number;
  readonly log: (line: string) => void;
  /** Restarts replicas that exit by themselves; the nemesis tells it whom it holds down. */
  readonly supervisor: Supervisor;
}

/**
 * Restarts a replica that exited by itself (a fatal disk error: exit 70, or a crash), after
 * a short delay, like a process supervisor would; runs from the start of a run to its
 * verdicts, so a replica that crashes while the cluster converges is restarted too.
 */
export class Supervisor {
  /** Replicas the nemesis holds down on purpose (not restarted). */
  readonly downOnPurpose = new Set<number>();
  /** Restarts made. */
  restarts = 0;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();

  /** Starts watching `cluster`. */
  start(cluster: ChaosCluster, log: (line: string) => void): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        await sleep(200);
        for (let i = 0; i < cluster.replicaCount && !this.#stopped; i++) {
          if (cluster.running(i) || this.downOnPurpose.has(i)) continue;
          log(`replica ${i} exited by itself (code ${cluster.lastExitCode(i)}); restarting it`);
          await sleep(500);
          if (!this.#stopped && !cluster.running(i) && !this.downOnPurpose.has(i)) {
            cluster.launch(i);
            this.restarts++;
          }
        }
      }
    })();
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

/** What the nemesis did. */
export interface NemesisReport {
  readonly faults: FaultRecord[];
  readonly viewChanges: ViewChangeTiming[];
  bitFlips: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The replica that is normal primary in the highest view, with that view, or null. */
export async function findPrimary(cluster: ChaosCluster): Promise<{ replica: number; view: number } | null> {
  const statuses = await cluster.statuses(300);
  let best: { replica: number; view: number } | null = null;
  for (const status of statuses) {
    if (status === null || status.status !== "normal" || status.primary !== status.replica) continue;
    if (best === null || status.view > best.view) best = { replica: status.replica, view: status.view };
  }
  return best;
}

/** Injects faults until `untilMs`, healing each before the next; leaves the cluster healed. */
export async function runNemesis(options: NemesisOptions): Promise<NemesisReport> {
  const { cluster, log } = options;
  const prng = new Prng(options.seed);
  const n = cluster.replicaCount;
  const report: NemesisReport = { faults: [], viewChanges: [], bitFlips: 0 };
  const downOnPurpose = options.supervisor.downOnPurpose;

  const victim = async (primaryBias: number): Promise<{ replica: number; isPrimary: boolean; view: number }> => {
    const primary = await findPrimary(cluster);
    if (primary !== null && prng.chance(primaryBias)) return { replica: primary.replica, isPrimary: true, view: primary.view };
    const replica = prng.int(n);
    return { replica, isPrimary: primary?.replica === replica, view: primary?.view ?? -1 };
  };
  const name = (v: { replica: number; isPrimary: boolean }) => `replica ${v.replica}${v.isPrimary ? " (primary)" : ""}`;
  const begin = (kind: NemesisKind, detail: string): FaultRecord => {
    const record: FaultRecord = { kind, detail, startMs: options.nowMs(), endMs: -1 };
    report.faults.push(record);
    log(`${(record.startMs / 1000).toFixed(1).padStart(6)} s  ${kind}: ${detail}`);
    return record;
  };
  const end = (record: FaultRecord) => {
    record.endMs = options.nowMs();
  };
  const timeViewChange = async (killed: { replica: number; view: number }, killedAtMs: number) => {
    const deadline = killedAtMs + 20_000;
    while (options.nowMs() < deadline) {
      const primary = await findPrimary(cluster);
      if (primary !== null && primary.view > killed.view && primary.replica !== killed.replica) {
        const timing = { killedReplica: killed.replica, oldView: killed.view, newView: primary.view, ms: Math.round(options.nowMs() - killedAtMs) };
        report.viewChanges.push(timing);
        log(`         view change: replica ${primary.replica} is primary of view ${primary.view} ${timing.ms} ms after the kill`);
        return;
      }
      await sleep(25);
    }
    log(`         no new primary within 20 s of killing replica ${killed.replica}`);
  };

  try {
    await sleep(1000 + prng.int(1000));
    while (options.nowMs() < options.untilMs) {
      const kind = options.kinds[prng.int(options.kinds.length)]!;
      const holdMs = 1000 + prng.int(3000);
      switch (kind) {
        case "kill": {
          const v = await victim(0.6);
          downOnPurpose.add(v.replica);
          const record = begin("kill", `SIGKILL ${name(v)}, restart after ${holdMs} ms`);
          const killedAt = options.nowMs();
          await cluster.kill(v.replica);
          const timing = v.isPrimary ? timeViewChange(v, killedAt) : Promise.resolve();
          await sleep(holdMs);
          await timing;
          cluster.launch(v.replica);
          downOnPurpose.delete(v.replica);
          end(record);
          break;
        }
        case "pause": {
          const v = await victim(0.5);
          const record = begin("pause", `SIGSTOP ${name(v)} for ${holdMs} ms`);
          cluster.pause(v.replica);
          await sleep(holdMs);
          cluster.resume(v.replica);
          end(record);
          break;
        }
        case "partition": {
          const v = await victim(0.5);
          // Shapes: 0 isolated both ways, 1 and 2 one-way, 3 slow links; with 5 replicas also
          // 4: a minority of two (the victim and one more) cut from the majority.
          const shape = prng.int(n === 5 ? 5 : 4);
          const others = Array.from({ length: n }, (_, i) => i).filter((i) => i !== v.replica);
          let detail: string;
          if (shape === 0) {
            for (const o of others) cluster.setLink(v.replica, o, false, false);
            detail = `isolate ${name(v)} both ways`;
          } else if (shape === 1) {
            for (const o of others) cluster.setLink(v.replica, o, true, false);
            detail = `${name(v)} receives nothing (one-way: it still sends)`;
          } else if (shape === 2) {
            for (const o of others) cluster.setLink(v.replica, o, false, true);
            detail = `${name(v)} sends nothing (one-way: it still receives)`;
          } else if (shape === 3) {
            const delayMs = 50 + prng.int(450);
            for (const o of others) cluster.setLink(v.replica, o, true, true, delayMs);
            detail = `${name(v)}'s links slowed by ${delayMs} ms each way`;
          } else {
            const buddy = others[prng.int(others.length)]!;
            const minority = [v.replica, buddy];
            const majority = others.filter((o) => o !== buddy);
            for (const m of minority) for (const o of majority) cluster.setLink(m, o, false, false);
            detail = `split: replicas ${minority.join(",")} (${v.isPrimary ? "with the primary" : "minority"}) cut from ${majority.join(",")}`;
          }
          const record = begin("partition", `${detail} for ${holdMs} ms`);
          await sleep(holdMs);
          cluster.healLinks();
          end(record);
          break;
        }
        case "disk": {
          const v = await victim(0.4);
          const mode = prng.int(3);
          if (mode === 0) {
            const record = begin("disk", `fdatasync fails with EIO (p=0.3) on ${name(v)} for ${holdMs} ms`);
            cluster.control(v.replica, { ...controlOff, syncEioProbability: 0.3 });
            await sleep(holdMs);
            cluster.control(v.replica, controlOff);
            end(record);
          } else if (mode === 1) {
            downOnPurpose.add(v.replica);
            const record = begin("disk", `torn writes on ${name(v)}, then SIGKILL mid-write`);
            cluster.control(v.replica, { ...controlOff, tornWriteDelayMs: 20 });
            await sleep(300 + prng.int(700));
            await cluster.kill(v.replica);
            cluster.control(v.replica, controlOff);
            await sleep(holdMs);
            cluster.launch(v.replica);
            downOnPurpose.delete(v.replica);
            end(record);
          } else {
            downOnPurpose.add(v.replica);
            await cluster.kill(v.replica);
            const flips = flipJournalBits(join(cluster.dir, `replica-${v.replica}`), 1 + prng.int(3), () => prng.float());
            report.bitFlips += flips.length;
            const where = flips.length === 0 ? "none: journal too small yet" : flips.map((f) => `offset ${f.offset} bit ${f.bit}`).join(", ");
            const record = begin("disk", `SIGKILL ${name(v)}, flip bits in its journal (${where}), restart after ${holdMs} ms`);
            await sleep(holdMs);
            cluster.launch(v.replica);
            downOnPurpose.delete(v.replica);
            end(record);
          }
          break;
        }
        case "clock": {
          const v = await victim(0.6);
          const skewMs = (prng.chance(0.5) ? -1 : 1) * (1000 + prng.int(3_600_000));
          const record = begin("clock", `skew ${name(v)}'s clock by ${skewMs} ms for ${holdMs} ms`);
          cluster.control(v.replica, { ...controlOff, clockSkewMs: skewMs });
          await sleep(holdMs);
          cluster.control(v.replica, controlOff);
          end(record);
          break;
        }
      }
      await sleep(500 + prng.int(1500));
    }
  } finally {
    // Heal everything, whatever happened above.
    cluster.healLinks();
    for (let i = 0; i < n; i++) {
      cluster.control(i, controlOff);
      cluster.resume(i);
      if (!cluster.running(i)) cluster.launch(i);
    }
  }
  return report;
}
