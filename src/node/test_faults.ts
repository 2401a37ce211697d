/**
 * Test-only fault hooks of a real replica, for `chronon chaos` (docs/testing.md).
 *
 * Inert unless the environment variable `CHRONON_TEST_FAULTS` names a control file: then
 * the node prints a loud warning line, and every {@link controlPollMs} re-reads that JSON
 * file, which the chaos harness rewrites to arm faults while the replica runs:
 *
 *     { "clockSkewMs": 0, "syncEioProbability": 0, "tornWriteDelayMs": 0 }
 *
 * - `clockSkewMs` is added to the clock the replica stamps entries with;
 * - `syncEioProbability` and `tornWriteDelayMs` drive the disk wrapper of
 *   src/chaos/disk_faults.ts.
 * It also writes `{ commit, op, view, status, stateHash }` next to the control file
 * (`<control>.state.json`) so the harness can compare replicas' state hashes after a run.
 * Never set this variable in production.
 * @module
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import process from "node:process";
import type { Disk } from "../storage/disk.ts";
import type { ReplicaStatus } from "../vsr/replica_api.ts";

/** The environment variable (test-only) naming the control file. */
export const testFaultsEnv = "CHRONON_TEST_FAULTS";

/** How often the control file is re-read and the state file rewritten, ms. */
export const controlPollMs = 200;

/** Faults one replica applies to itself. */
export interface TestFaults {
  /** True when the hooks are live (the variable is set). */
  readonly active: boolean;
  /** The disk to use: `disk` itself when inactive. */
  wrapDisk(disk: Disk): Promise<Disk>;
  /** The replica's clock: Date.now() when inactive, skewed otherwise. */
  nowMs(): number;
  /** Called every tick: re-reads the control file, reports the state hash (rate-limited). */
  tick(status: ReplicaStatus, stateHash: () => Uint8Array): void;
}

interface Control {
  clockSkewMs: number;
  syncEioProbability: number;
  tornWriteDelayMs: number;
}

const inert: TestFaults = {
  active: false,
  wrapDisk: (disk) => Promise.resolve(disk),
  nowMs: () => Date.now(),
  tick: () => {},
};

function readControl(path: string, previous: Control): Control {
  try {
    const raw = JSON.parse(readFileSync(path, "utf8")) as Partial<Control>;
    const number = (value: unknown, fallback: number) => typeof value === "number" && Number.isFinite(value) ? value : fallback;
    return {
      clockSkewMs: number(raw.clockSkewMs, 0),
      syncEioProbability: Math.min(1, Math.max(0, number(raw.syncEioProbability, 0))),
      tornWriteDelayMs: Math.max(0, number(raw.tornWriteDelayMs, 0)),
    };
  } catch {
    // Mid-rewrite or missing: keep what was read last.
    return previous;
  }
}

/** The hooks for this process: inert unless `CHRONON_TEST_FAULTS` is set. */
export function testFaultsFromEnv(log: (line: string) => void): TestFaults {
  const controlPath = process.env[testFaultsEnv];
  if (controlPath === undefined || controlPath === "") return inert;
  log(`WARNING: ${testFaultsEnv}=${controlPath} is set: TEST-ONLY fault injection (clock skew, disk EIO, torn writes) is ENABLED; never run like this in production`);
  let control: Control = readControl(controlPath, { clockSkewMs: 0, syncEioProbability: 0, tornWriteDelayMs: 0 });
  let polledAt = 0;
  const statePath = `${controlPath}.state.json`;
  return {
    active: true,
    async wrapDisk(disk) {
      const { faultyDisk } = await import("../chaos/disk_faults.ts");
      return faultyDisk(disk, () => control);
    },
    nowMs: () => Date.now() + control.clockSkewMs,
    tick(status, stateHash) {
      const now = Date.now();
      if (now - polledAt < controlPollMs) return;
      polledAt = now;
      control = readControl(controlPath, control);
      const hash = Array.from(stateHash(), (b) => b.toString(16).padStart(2, "0")).join("");
      const report = { commit: status.commit, op: status.op, view: status.view, status: status.status, stateHash: hash, atMs: now };
      try {
        writeFileSync(`${statePath}.tmp`, JSON.stringify(report));
        renameSync(`${statePath}.tmp`, statePath);
      } catch {
        // The harness's directory went away: nothing to report to.
      }
    },
  };
}
