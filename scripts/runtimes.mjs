// Where the three runtimes live after `npm install`. The bun and deno binaries come inside
// registry packages; we call them directly because npm 11 skips their install scripts
// (which leaves node_modules/.bin/bun a placeholder and .bin/deno a slow Node wrapper).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** Absolute path of the repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const candidates = {
  bun: [
    "node_modules/@oven/bun-linux-x64/bin/bun",
    "node_modules/@oven/bun-linux-x64-baseline/bin/bun",
    "node_modules/@oven/bun-linux-aarch64/bin/bun",
  ],
  deno: [
    "node_modules/@deno/linux-x64-glibc/deno",
    "node_modules/@deno/linux-arm64-glibc/deno",
  ],
};

/**
 * Path of the bun or deno binary shipped by npm, or null when it is missing.
 * @param {"bun"|"deno"} name
 */
export function runtimeBinary(name) {
  for (const relative of candidates[name]) {
    const path = join(root, relative);
    if (existsSync(path)) return path;
  }
  return null;
}

/** The command line that runs a TypeScript file on Node (tsx as an ESM loader). */
export function nodeTsArgs() {
  return ["--import", "tsx"];
}
