import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import type { App } from "../../app/app.ts";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { apiAccess, ConfigError, loadConfig } from "../../node/config.ts";
import type { ClusterConfig } from "../../node/config.ts";
import { AppModuleError, loadApp } from "../../node/load_app.ts";
import { createReplica } from "../../node/replica_factory.ts";
import { ListenError, startReplica, storageFailureExitCode } from "../../node/replica_node.ts";
import { StorageError } from "../../storage/errors.ts";
import { DiskError } from "../../storage/disk.ts";

/** How long `start --format` waits for each peer's status before assuming a new cluster. */
const peerProbeTimeoutMs = 1000;

/**
 * The first peer (by index) whose API reports a log (op > 0), or null when none answers
 * with one: either the cluster is new, or the peers are down (then `--format` proceeds,
 * which is why an operator replacing a disk says `--replace`).
 */
export async function peerHistory(config: ClusterConfig, replica: number): Promise<{ replica: number; op: number } | null> {
  const access = apiAccess(config);
  const headers: Record<string, string> = access.token === undefined ? {} : { authorization: `Bearer ${access.token}` };
  const answers = await Promise.all(config.replicas.map(async (peer, index) => {
    if (index === replica) return null;
    try {
      const response = await fetch(`${peer.apiUrl}/v1/status`, { headers, signal: AbortSignal.timeout(peerProbeTimeoutMs) });
      if (!response.ok) return null;
      const status = await response.json() as { op?: unknown };
      return typeof status.op === "number" && status.op > 0 ? { replica: index, op: status.op } : null;
    } catch {
      return null;
    }
  }));
  return answers.find((answer) => answer !== null) ?? null;
}

/** The usage text of `start`. */
export const usage = `chronon start --config cluster.json --replica N --app app.ts [--format] [--io auto|uring|sync]

Starts replica N of the cluster described in cluster.json, running the application whose
module (default export: defineApp({...})) is app.ts. The data dir named in the config must
exist (chronon format) unless --format is given, which creates it on first start. A data
dir of another cluster or replica is refused.

  --config FILE   the cluster configuration (see docs/configuration.md)
  --replica N     this replica's index in the config's replicas list
  --app FILE      the application module
  --format        create the data dir when it does not exist (a new cluster member; refused
                  when a peer reports a log: that is a replaced disk, use --replace)
  --replace       this replica's disk was lost or replaced: create the missing data dir and
                  keep the replica from voting until it has caught up from its peers
  --io MODE       disk backend: auto (io_uring when available), uring, or sync (portable);
                  defaults to $CHRONON_IO, then auto

Stops cleanly on SIGINT or SIGTERM.`;

/**
 * Runs `start` with `argv` (the words after `start`). `app` is the application when the
 * caller already holds it (an app file run as its own entry point, a single binary); then
 * `--app` is not needed. Resolves to the exit code once the replica stopped.
 */
export async function runStart(argv: string[], app: App | null): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        replica: { type: "string" },
        app: { type: "string" },
        format: { type: "boolean", default: false },
        replace: { type: "boolean", default: false },
        io: { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.config === undefined) throw new UsageError("--config is required");
  if (app === null && values.app === undefined) throw new UsageError("--app is required");
  if (app !== null && values.app !== undefined) throw new UsageError("--app is not taken here: the application is built in");
  const replica = Number(values.replica);
  if (values.replica === undefined || !/^[0-9]+$/.test(values.replica) || !Number.isSafeInteger(replica)) {
    throw new UsageError("--replica N is required (0, 1, …)");
  }
  const io = values.io;
  if (io !== undefined && io !== "auto" && io !== "uring" && io !== "sync") throw new UsageError("--io must be auto, uring or sync");
  try {
    const config = loadConfig(values.config);
    if (replica >= config.replicas.length) throw new UsageError(`--replica ${replica}: the config lists ${config.replicas.length} replicas`);
    if (values.format === true && values.replace === true) throw new UsageError("--format and --replace exclude each other");
    const application = app ?? await loadApp(values.app!);
    const dataDir = config.replicas[replica]!.dataDir;
    if (values.format === true && !existsSync(join(dataDir, "identity"))) {
      // A fresh data dir for a cluster that already has history is a replaced disk: an
      // intact-looking empty replica could vote a primary in that lacks acknowledged writes.
      const history = await peerHistory(config, replica);
      if (history !== null) {
        console.error(`chronon start: replica ${history.replica} reports op ${history.op}: this cluster has history, so a new data dir for replica ${replica} is a replaced disk; start it with --replace (not --format) so it catches up before it votes (docs/operations.md, "Replace a replica")`);
        return 1;
      }
    }
    const running = await startReplica({
      config,
      replica,
      app: application,
      createReplica,
      format: values.format === true,
      replace: values.replace === true,
      ...(io === undefined ? {} : { io }),
    });
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await running.stop();
    console.error(`chronon[${replica}] stopped cleanly`);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof AppModuleError || error instanceof StorageError || error instanceof ListenError) {
      console.error(`chronon start: ${error.message}`);
      return 1;
    }
    if (error instanceof DiskError) {
      // The disk failed while the replica opened or recovered its data dir: the same kind of
      // failure as a failed write while running, so the same exit code (70) for supervisors.
      console.error(`chronon[${replica}] FATAL storage failure while starting (recovery runs again from what is on disk at the next start): ${error.message}`);
      return storageFailureExitCode;
    }
    throw error;
  }
}

/** `chronon start`: one replica of a real cluster. */
export const command: Command = {
  name: "start",
  summary: "run one replica of a cluster (--config cluster.json --replica N --app app.ts)",
  usage,
  run: (argv) => runStart(argv, null),
};
