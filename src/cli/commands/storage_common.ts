/**
 * What the storage commands (format, inspect, crash-test, bench journal) share: picking a
 * Disk backend, a progress line for long scans on a terminal, and printing storage errors.
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../runtime.ts";
import type { Disk } from "../../storage/disk.ts";
import { PortableDisk } from "../../storage/disk_portable.ts";
import { StorageError } from "../../storage/errors.ts";

/** A backend the commands can run on. */
export interface DiskBackend {
  readonly name: string;
  make(): Promise<Disk>;
}

const portable: DiskBackend = { name: "portable", make: () => Promise.resolve(new PortableDisk()) };

/** Loads a module of the io layer that may not exist yet in this tree (null when absent). */
async function optionalModule(path: string): Promise<Record<string, unknown> | null> {
  try {
    return await import(path) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The io_uring backend when its module is present and io_uring works here, else null. */
export async function uringBackend(): Promise<DiskBackend | null> {
  const module = await optionalModule("../../storage/disk_uring.ts");
  if (module === null) return null;
  for (const name of ["createUringDisk", "openUringDisk", "uringDisk"]) {
    const factory = module[name];
    if (typeof factory !== "function") continue;
    const make = async () => await (factory as () => Promise<Disk> | Disk)();
    try {
      await (await make()).close();
    } catch {
      return null;
    }
    return { name: "uring", make };
  }
  return null;
}

/**
 * The backend chosen the way a replica chooses it (selectDisk, honouring CHRONON_IO) when
 * the io layer provides it; the portable backend otherwise.
 */
export async function defaultDisk(): Promise<Disk> {
  const module = await optionalModule("../../storage/disk_select.ts");
  const select = module?.selectDisk;
  if (typeof select === "function") return await (select as () => Promise<Disk>)();
  return new PortableDisk();
}

/** Backends for `--backend portable|uring|all`. */
export async function backendsFor(choice: string): Promise<DiskBackend[]> {
  const uring = choice === "portable" ? null : await uringBackend();
  if (choice === "uring" && uring === null) throw new Error("the uring backend is not available here (no shim built, or io_uring refused)");
  if (choice === "uring") return [uring!];
  if (choice === "all") return uring === null ? [portable] : [portable, uring];
  return [portable];
}

/** A progress reporter that redraws one line on stderr when it is a terminal. */
export function ttyProgress(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - last < 200 && done < total) return;
    last = now;
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
  if (runtime === "deno") return { command: process.execPath, args: ["run", "-A", "--quiet", entry, ...args], cwd: root };
  return { command: process.execPath, args: ["--import", "tsx", entry, ...args], cwd: root };
}
