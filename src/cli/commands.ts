import type { Command } from "./command.ts";

/**
 * Every `chronon` sub-command, loaded lazily so that `chronon inspect` does not pay for
 * the simulator or the HTTP server. Add one line per command module.
 */
export const commands: Record<string, () => Promise<Command>> = {
  bench: () => import("./commands/bench.ts").then((m) => m.command),
  build: () => import("./commands/build.ts").then((m) => m.command),
  chaos: () => import("./commands/chaos.ts").then((m) => m.command),
  "crash-test": () => import("./commands/crash_test.ts").then((m) => m.command),
  format: () => import("./commands/format.ts").then((m) => m.command),
  inspect: () => import("./commands/inspect.ts").then((m) => m.command),
  dev: () => import("./commands/dev.ts").then((m) => m.command),
  "demo-one-node": () => import("./commands/demo_one_node.ts").then((m) => m.command),
  demo: () => import("./commands/demo.ts").then((m) => m.command),
  lincheck: () => import("./commands/lincheck.ts").then((m) => m.command),
  start: () => import("./commands/start.ts").then((m) => m.command),
  sim: () => import("./commands/sim.ts").then((m) => m.command),
  version: () => import("./commands/version.ts").then((m) => m.command),
};
