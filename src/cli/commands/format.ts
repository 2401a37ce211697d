import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { formatClusterId, parseClusterId } from "../../storage/cluster_id.ts";
import { formatDataDir } from "../../storage/data_dir.ts";
import { defaultDisk, reportStorageError } from "./storage_common.ts";

const usage = `chronon format --cluster ID --replica N [--replicas COUNT] DIR

Creates a replica's data dir at DIR (identity file, superblock, first journal segment).
Refuses when DIR already holds anything.

  --cluster ID       the cluster's 128-bit id: decimal, 0x-hex (up to 32 digits), or any
                     other string, hashed to an id (SHA-256, first 16 bytes), so the same
                     name gives the same id on every replica
  --replica N        this replica's index, 0..COUNT-1
  --replicas COUNT   replicas in the cluster (default 3)`;

/** `chronon format`: creates a data dir. */
export const command: Command = {
  name: "format",
  summary: "create a replica's data dir (refuses to overwrite one)",
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { cluster: { type: "string" }, replica: { type: "string" }, replicas: { type: "string", default: "3" } },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError("give exactly one DIR");
    if (values.cluster === undefined) throw new UsageError("--cluster is required");
    if (values.replica === undefined || !/^\d+$/.test(values.replica)) throw new UsageError("--replica N is required (a number)");
    if (!/^\d+$/.test(values.replicas)) throw new UsageError("--replicas must be a number");
    let cluster: Uint8Array;
    try {
      cluster = parseClusterId(values.cluster);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const replica = Number(values.replica);
    const replicaCount = Number(values.replicas);
    if (replica >= replicaCount) throw new UsageError(`--replica ${replica} must be below --replicas ${replicaCount}`);
    const dir = positionals[0]!;
    const disk = await defaultDisk();
    try {
      await formatDataDir(disk, dir, { cluster, replica, replicaCount });
    } catch (error) {
      if (error instanceof RangeError) throw new UsageError(error.message);
      return reportStorageError("format", error);
    } finally {
      await disk.close();
    }
    console.log(`formatted ${dir}: cluster ${formatClusterId(cluster)}, replica ${replica} of ${replicaCount}`);
    return 0;
  },
};
