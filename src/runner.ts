/**
 * An application file as its own entry point: the app module ends with
 *
 *     if (isMain(import.meta)) await runMain(app);
 *
 * and then `bun app.ts start --config cluster.json --replica 0`, `deno run --allow-ffi
 * --allow-net --allow-read --allow-write --allow-env app.ts start …` and `node --import tsx
 * app.ts start …` each start a replica of that app. Single executables made by `chronon
 * build` use the same runner. Other words (`format`, `inspect`, `version`, …) run the
 * `chronon` command of that name.
 *
 * The server side (node driver, HTTP server, CLI) is imported only when the runner runs,
 * so importing an app module (from a test, a client, the simulator) stays cheap and free
 * of side effects.
 * @module
 */
import process from "node:process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { App } from "./app/app.ts";

/** The part of `import.meta` the guard reads (Bun and Deno set `main`; Node 20 does not). */
export interface ModuleMeta {
  readonly url: string;
  readonly main?: boolean;
}

const entryClaimed = Symbol.for("chronon.runner.entryClaimed");

/**
 * Marks the process as driven by another entry point (the one `chronon build` generates):
 * from then on {@link isMain} is false everywhere. A bundled executable is one module, so
 * `import.meta.main` would be true inside the app's own code too, and the app's guard
 * would start the runner before the entry had prepared the process.
 */
export function claimEntry(): void {
  (globalThis as Record<symbol, unknown>)[entryClaimed] = true;
}

/**
 * True when the module whose `import.meta` is given was the one the runtime was started
 * with (`bun app.ts`, `deno run app.ts`, `node --import tsx app.ts`), false when it was
 * imported by another module.
 *
 * @example
 * ```ts
 * import { defineApp, isMain, runMain } from "chronon";
 * const app = defineApp({ genesis: () => 0, apply: (n: number) => ({ state: n + 1 }), query: (n) => n });
 * export default app;
 * if (isMain(import.meta)) await runMain(app);
 * ```
 */
export function isMain(meta: ModuleMeta): boolean {
  if ((globalThis as Record<symbol, unknown>)[entryClaimed] === true) return false;
  if (typeof meta.main === "boolean") return meta.main;
  // Node 20 has no import.meta.main: compare the module with the script node was given.
  const script = process.argv[1];
  if (script === undefined || !meta.url.startsWith("file:")) return false;
  const modulePath = fileURLToPath(meta.url);
  const scriptPath = resolve(script);
  return modulePath === scriptPath || modulePath.replace(/\.[cm]?[jt]s$/, "") === scriptPath;
}

const usage = `usage: APP start --config cluster.json --replica N [--format] [--io auto|uring|sync]
       APP COMMAND …   (any other chronon command: format, inspect, version, …)

Starts replica N of the cluster described in cluster.json, running the application built
into this program (no --app). See docs/operations.md.`;

/**
 * Runs the command line `argv` (the words after the program name) for `app`, and resolves
 * to the exit code: `start …` runs a replica of `app` until SIGINT or SIGTERM.
 */
export async function main(app: App, argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const { UsageError } = await import("./cli/command.ts");
  if (name === "start") {
    const start = await import("./cli/commands/start.ts");
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(usage);
      return 0;
    }
    try {
      return await start.runStart(rest, app);
    } catch (error) {
      if (error instanceof UsageError) {
        console.error(`start: ${error.message}\n\n${usage}`);
        return 2;
      }
      throw error;
    }
  }
  const cli = await import("./cli/main.ts");
  return await cli.main([name, ...rest]);
}

/** Runs {@link main} with the process's arguments, then exits the process with its code. */
export async function runMain(app: App, argv: readonly string[] = process.argv.slice(2)): Promise<never> {
  const code = await main(app, argv);
  process.exit(code);
}
