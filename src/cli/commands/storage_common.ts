/**
 * What the storage commands (format, inspect, crash-test, bench journal) share: picking a
 * Disk backend, a progress line for long scans on a terminal, and printing storage errors.
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../runtime.ts";
import { heapGrowthPercentDefault } from "../../node/config.ts";
import { replicaV8StartFlags } from "../../node/heap_growth.ts";
import type { Disk } from "../../storage/disk.ts";
import { PortableDisk } from "../../storage/disk_portable.ts";
import { selectDisk } from "../../storage/disk_select.ts";
import { createDirectSyncDisk, createUringDisk, probeUring } from "../../storage/disk_uring.ts";
import { StorageError } from "../../storage/errors.ts";

/** A backend the commands can run on. */
export interface DiskBackend {
  readonly name: string;
  make(): Promise<Disk>;
}

const portable: DiskBackend = { name: "portable", make: () => Promise.resolve(new PortableDisk()) };

/** The io_uring backend when io_uring and the shim work here, else null. */
export async function uringBackend(): Promise<DiskBackend | null> {
  const probe = await probeUring();
  return probe.ok ? { name: "uring", make: () => createUringDisk() } : null;
}

/** The ring-less native backend (pwrite + fdatasync through FFI) when the shim loads, else null. */
export async function directSyncBackend(): Promise<DiskBackend | null> {
  try {
    await (await createDirectSyncDisk()).close();
  } catch {
    return null;
  }
  return { name: "direct-sync", make: () => createDirectSyncDisk() };
}

/** The backend chosen the way a replica chooses it (selectDisk, honouring CHRONON_IO). */
export function defaultDisk(): Promise<Disk> {
  return selectDisk();
}

/** Backends for `--backend portable|uring|direct-sync|all` (all: every one available here). */
export async function backendsFor(choice: string): Promise<DiskBackend[]> {
  if (choice === "portable") return [portable];
  if (choice === "uring" || choice === "direct-sync") {
    const backend = choice === "uring" ? await uringBackend() : await directSyncBackend();
    if (backend === null) throw new Error(`the ${choice} backend is not available here (no shim built, or io_uring refused)`);
    return [backend];
  }
  const out = [portable];
  for (const backend of [await uringBackend(), await directSyncBackend()]) if (backend !== null) out.push(backend);
  return out;
}

/** Scans shorter than this (64 MiB) draw no progress line. */
const progressBytesMin = 64 * 1024 * 1024;

/** A progress reporter that redraws one line on stderr when it is a terminal. */
export function ttyProgress(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  let finished = false;
  return (done, total) => {
    if (total < progressBytesMin || finished) return; // short scans finish before a line is worth drawing
    const now = Date.now();
    if (now - last < 200 && done < total) return;
    last = now;
    finished = done >= total;
    const mib = (n: number) => (n / 1048576).toFixed(0);
    process.stderr.write(`\r${label}: ${mib(done)} / ${mib(total)} MiB${done >= total ? "\n" : ""}`);
  };
}

/** Prints a storage operating error and returns exit code 1; rethrows anything else. */
export function reportStorageError(command: string, error: unknown): number {
  if (error instanceof StorageError) {
    console.error(`chronon ${command}: ${error.name}: ${error.message}`);
    return 1;
  }
  throw error;
}

/**
 * How to run `chronon ARGS…` in a child process on the runtime running this one (node with
 * tsx, bun, or deno run -A), from the repository root.
 */
export function sameRuntimeCommand(args: string[]): { command: string; args: string[]; cwd: string } {
  const entry = fileURLToPath(new URL("../entry.ts", import.meta.url));
  const root = fileURLToPath(new URL("../../..", import.meta.url));
  const runtime = runtimeName();
  if (runtime === "bun") return { command: process.execPath, args: [entry, ...args], cwd: root };
  // Deno takes the heap growth only as a V8 flag at start (src/node/heap_growth.ts), and the
  // young generation's cap as Node does; the configs the local cluster commands write use
  // the default growth (harmless for other children).
  if (runtime === "deno") {
    return { command: process.execPath, args: ["run", "-A", "--quiet", `--v8-flags=--heap-growing-percent=${heapGrowthPercentDefault},${replicaV8StartFlags.join(",")}`, entry, ...args], cwd: root };
  }
  // Node takes the young generation's size only at start too (replicaV8StartFlags).
  return { command: process.execPath, args: [...replicaV8StartFlags, "--import", "tsx", entry, ...args], cwd: root };
}
