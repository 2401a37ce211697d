import process from "node:process";

/** Which JavaScript runtime is executing this process. */
export type RuntimeName = "node" | "bun" | "deno";

/** Detects the runtime: Bun and Deno both also report `process.versions.node`. */
export function runtimeName(): RuntimeName {
  const global = globalThis as { Bun?: unknown; Deno?: unknown };
  if (global.Bun !== undefined) return "bun";
  if (global.Deno !== undefined) return "deno";
  return "node";
}

/** The version string of the running runtime. */
export function runtimeVersion(): string {
  const versions = process.versions as Record<string, string | undefined>;
  const name = runtimeName();
  return versions[name] ?? versions.node ?? "unknown";
}
