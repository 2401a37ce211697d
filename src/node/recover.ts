/**
 * Builds what the replica needs at start from its own disk: the superblock, the latest
 * valid checkpoint, the headers of the entries after it, and the ops that failed
 * verification (to be repaired from peers).
 * @module
 */
import { randomInt } from "node:crypto";
import { join } from "node:path";
import type { CheckpointStore, CheckpointFault } from "../storage/checkpoint_store.ts";
import type { Disk } from "../storage/disk.ts";
import type { DataDir } from "../storage/data_dir.ts";
import type { RecoveredState } from "../vsr/replica_api.ts";

/** The recovered state plus what an operator should hear about. */
export interface Recovery {
  readonly state: RecoveredState;
  /** Checkpoint files that were newer than the one used but could not be trusted. */
  readonly checkpointFaults: readonly CheckpointFault[];
}

/** Reads the replica's durable state from an open data dir. */
export async function recoverReplicaState(dataDir: DataDir, checkpoints: CheckpointStore, intact: boolean): Promise<Recovery> {
  const superblock = dataDir.superblock.state;
  const journal = dataDir.journal;
  const { latest, faults } = await checkpoints.latest();
  const checkpointOp = latest?.op ?? 0;
  const faulty = new Set(journal.faultyOps());
  const headers: Uint8Array[] = [];
  const first = Math.max(checkpointOp + 1, journal.opMin);
  for (let op = first; op <= journal.opHead; op++) {
    if (faulty.has(op)) continue;
    const header = await journal.headerAt(op);
    if (header !== null) headers.push(header);
  }
  return {
    state: {
      superblock: {
        view: superblock.view,
        logView: superblock.logView,
        commit: superblock.commit,
        checkpointOp: Math.max(checkpointOp, 0),
      },
      checkpoint: latest === null ? null : { op: latest.op, bytes: latest.bytes },
      headers,
      faultyOps: [...faulty].filter((op) => op > checkpointOp).sort((a, b) => a - b),
      intact,
      // A fresh random nonce per start: tags this incarnation's recovery round (replica_api.ts).
      nonce: randomInt(0, 2 ** 47),
    },
    checkpointFaults: faults,
  };
}

/**
 * Name of the file that marks a data dir as a replaced disk: formatted anew for a replica
 * that belonged to the cluster before (`chronon start --replace`). While it exists the
 * replica recovers with `intact: false`, so it does not vote (in view changes or commit
 * quorums) until it has caught up from its peers; it is removed once the replica reports
 * `voting: true`. Without it, a replica with an empty disk could help elect a primary that
 * lacks writes it had acknowledged before losing the disk.
 */
export const replacedMarkerName = "replaced";

/** Durably marks `dataDir` (just formatted) as a replaced disk. */
export async function markReplaced(disk: Disk, dataDir: string): Promise<void> {
  const file = await disk.open(join(dataDir, replacedMarkerName), { create: true });
  try {
    await file.write(0, [new TextEncoder().encode("this data dir replaces a lost disk: not voting until caught up\n")], { sync: true });
    await file.sync();
  } finally {
    await file.close();
  }
  await disk.syncDirectory(dataDir);
}

/** True when the data dir is intact: not a replaced disk still catching up. */
export async function dataDirIntact(disk: Disk, dataDir: string): Promise<boolean> {
  return !(await disk.exists(join(dataDir, replacedMarkerName)));
}

/** Removes the marker once the replica votes again (durably: a crash may not bring it back mid-way). */
export async function clearReplaced(disk: Disk, dataDir: string): Promise<void> {
  await disk.remove(join(dataDir, replacedMarkerName));
  await disk.syncDirectory(dataDir);
}
