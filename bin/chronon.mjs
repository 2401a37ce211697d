#!/usr/bin/env node
// The `chronon` command. On Node it loads the TypeScript sources through tsx; with
// `--runtime bun|deno` it re-runs the same entry point under that runtime instead.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { root, runtimeBinary } from "../scripts/runtimes.mjs";

const argv = process.argv.slice(2);
const at = argv.indexOf("--runtime");
const runtime = at >= 0 ? argv[at + 1] : "node";
if (at >= 0) argv.splice(at, 2);

if (runtime === "node") {
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import("../src/cli/main.ts");
  process.exitCode = await main(argv);
} else if (runtime === "bun" || runtime === "deno") {
  const binary = runtimeBinary(runtime);
  if (binary === null) {
    console.error(`chronon: ${runtime} is not installed in node_modules; run npm install`);
    process.exit(2);
  }
  const entry = join(root, "src/cli/entry.ts");
  const args = runtime === "bun" ? [entry, ...argv] : ["run", "-A", "--quiet", entry, ...argv];
  const result = spawnSync(binary, args, { stdio: "inherit" });
  process.exit(result.status ?? 1);
} else {
  console.error(`chronon: --runtime must be node, bun or deno (got ${runtime})`);
  process.exit(2);
}
