/**
 * Helpers for tests that run real replicas as child processes: free ports, a cluster file,
 * spawning with captured output, waiting for a primary, and stopping.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName } from "../src/cli/runtime.ts";
import { freePort } from "../src/net/free_port.ts";
export { freePort };

/** Repository root. */
export const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** A free TCP port on 127.0.0.1 (released before it is returned: a small race, fine in tests). */

/** A cluster file written to disk, with what clients need. */
export interface TestCluster {
  readonly configPath: string;
  readonly urls: string[];
  readonly busPorts: number[];
  readonly token: string;
  readonly secret: string;
}

/** Writes a cluster file for `count` replicas on 127.0.0.1 under `dir`. */
export async function writeCluster(dir: string, count: number, extra: Record<string, unknown> = {}): Promise<TestCluster> {
  const ports = await Promise.all(Array.from({ length: count * 2 }, () => freePort()));
  const token = randomBytes(16).toString("hex");
  const secret = randomBytes(24).toString("hex");
  const replicas = Array.from({ length: count }, (_, i) => ({
    bus: `127.0.0.1:${ports[i]}`,
    api: `127.0.0.1:${ports[count + i]}`,
    dataDir: join(dir, `replica-${i}`),
  }));
  const configPath = join(dir, "cluster.json");
  writeFileSync(configPath, JSON.stringify({
    cluster: `test-${randomBytes(4).toString("hex")}`,
    replicas,
    secret: { value: secret },
    token: { value: token },
    ...extra,
  }, null, 2));
  return { configPath, urls: replicas.map((r) => `http://${r.api}`), busPorts: ports.slice(0, count), token, secret };
}

/** A child process with its output kept for error messages. */
export interface Child {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

/** Spawns a process and captures stdout and stderr together. */
export function spawnChild(command: string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Child {
  const child = spawn(command, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout?.on("data", (chunk: Uint8Array) => { text += new TextDecoder().decode(chunk); });
  child.stderr?.on("data", (chunk: Uint8Array) => { text += new TextDecoder().decode(chunk); });
  // "close", not "exit": it comes after the output pipes are drained.
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return { child, exited, output: () => text };
}

/** How to run a TypeScript file as a program on the runtime running this test. */
export function runTsFile(file: string, args: string[]): { command: string; args: string[] } {
  const runtime = runtimeName();
  if (runtime === "bun") return { command: process.execPath, args: [file, ...args] };
  if (runtime === "deno") {
    return { command: process.execPath, args: ["run", "--quiet", "--allow-ffi", "--allow-net", "--allow-read", "--allow-write", "--allow-env", file, ...args] };
  }
  return { command: process.execPath, args: ["--import", "tsx", file, ...args] };
}

/** Sleeps. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Replica status as /v1/status answers it. */
export interface Status {
  replica: number;
  status: string;
  view: number;
  op: number;
  commit: number;
  primary: number;
}

/** /v1/status of one replica, or null when it does not answer. */
export async function statusOf(url: string): Promise<Status | null> {
  try {
    const response = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(1000) });
    return response.ok ? await response.json() as Status : null;
  } catch {
    return null;
  }
}

/** Polls `probe` until it returns a value, or throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>, detail: () => string = () => ""): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== null) return value;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail()}`);
}

/** The replica that is the normal primary, among `urls`, or null. */
export async function primaryOf(urls: readonly string[]): Promise<Status | null> {
  for (const url of urls) {
    const status = await statusOf(url);
    if (status !== null && status.status === "normal" && status.primary === status.replica) return status;
  }
  return null;
}

/** SIGTERMs a child and waits for it (SIGKILL after `graceMs`); resolves to the exit code. */
export async function stopChild(child: Child, graceMs = 5000): Promise<number | null> {
  if (child.child.exitCode !== null || child.child.signalCode !== null) return child.child.exitCode;
  child.child.kill("SIGTERM");
  const timer = setTimeout(() => child.child.kill("SIGKILL"), graceMs);
  const code = await child.exited;
  clearTimeout(timer);
  return code;
}
