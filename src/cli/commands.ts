import type { Command } from "./command.ts";

/**
 * Every `chronon` sub-command, loaded lazily so that `chronon inspect` does not pay for
 * the simulator or the HTTP server. Add one line per command module.
 */
export const commands: Record<string, () => Promise<Command>> = {
  bench: () => import("./commands/bench.ts").then((m) => m.command),
  version: () => import("./commands/version.ts").then((m) => m.command),
};
