/**
 * What the commands that run a whole cluster on this machine (demo, dev, bench cluster)
 * do before any replica starts: create every replica's data dir.
 *
 * Starting the replicas with `--format` each instead raced: `start --format` refuses a new
 * data dir when a peer already reports history (a replaced disk must not vote), so a
 * replica that started late, after the other two had elected a primary and committed op 1,
 * refused to start, and the cluster ran on two replicas (the demo then had no quorum after
 * it killed the primary).
 * @module
 */
import { loadConfig } from "../../node/config.ts";
import { formatDataDir } from "../../storage/data_dir.ts";
import { defaultDisk } from "./storage_common.ts";

/** Formats the data dir of every replica named in the config at `configPath`; they must not exist yet. */
export async function formatLocalCluster(configPath: string): Promise<void> {
  const config = loadConfig(configPath);
  const disk = await defaultDisk();
  try {
    for (let replica = 0; replica < config.replicas.length; replica++) {
      await formatDataDir(disk, config.replicas[replica]!.dataDir, { cluster: config.cluster, replica, replicaCount: config.replicas.length });
    }
  } finally {
    await disk.close();
  }
}
