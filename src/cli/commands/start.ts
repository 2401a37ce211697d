import process from "node:process";
import { parseArgs } from "node:util";
import type { App } from "../../app/app.ts";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { ConfigError, loadConfig } from "../../node/config.ts";
import { AppModuleError, loadApp } from "../../node/load_app.ts";
import { createReplica } from "../../node/replica_factory.ts";
import { startReplica } from "../../node/replica_node.ts";
import { StorageError } from "../../storage/errors.ts";

/** The usage text of `start`. */
export const usage = `chronon start --config cluster.json --replica N --app app.ts [--format] [--io auto|uring|sync]

Starts replica N of the cluster described in cluster.json, running the application whose
module (default export: defineApp({...})) is app.ts. The data dir named in the config must
exist (chronon format) unless --format is given, which creates it on first start. A data
dir of another cluster or replica is refused.

  --config FILE   the cluster configuration (see docs/configuration.md)
  --replica N     this replica's index in the config's replicas list
  --app FILE      the application module
  --format        create the data dir when it does not exist
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
    const application = app ?? await loadApp(values.app!);
    const running = await startReplica({
      config,
      replica,
      app: application,
      createReplica,
      format: values.format === true,
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
    if (error instanceof ConfigError || error instanceof AppModuleError || error instanceof StorageError) {
      console.error(`chronon start: ${error.message}`);
      return 1;
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
