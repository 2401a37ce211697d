/**
 * Picks the Disk backend at start: io_uring when it can be had, the portable node:fs
 * backend otherwise, with one notice line saying why. `CHRONON_IO=auto|uring|sync`
 * overrides the "auto" default.
 * @module
 */
import process from "node:process";
import type { Disk } from "./disk.ts";
import { PortableDisk } from "./disk_portable.ts";
import { createDirectSyncDisk, createUringDisk, UringUnavailable } from "./disk_uring.ts";
import type { UringDiskOptions } from "./disk_uring.ts";

/**
 * `auto`: uring if available else portable; `uring`: uring or an error; `sync`: portable;
 * `direct`: the native layer without a ring ("direct-sync": every synced write blocks the
 * calling thread, O_DIRECT|O_DSYNC for the journal), or an error.
 */
export type DiskMode = "auto" | "uring" | "sync" | "direct";

const modes: readonly DiskMode[] = ["auto", "uring", "sync", "direct"];

/** A bad CHRONON_IO value, or `uring` asked for where it cannot be had. */
export class DiskSelectError extends Error {
  override readonly name = "DiskSelectError";
}

/** The mode to use: an explicit `uring`/`sync` wins; `auto` (the default) yields to CHRONON_IO. */
export function diskMode(mode: DiskMode = "auto", env: string | undefined = process.env.CHRONON_IO): DiskMode {
  if (mode !== "auto" || env === undefined || env === "") return mode;
  if (!(modes as readonly string[]).includes(env)) {
    throw new DiskSelectError(`CHRONON_IO=${env} is not one of ${modes.join(", ")}`);
  }
  return env as DiskMode;
}

/**
 * The Disk for this process. In `auto` mode, when io_uring is unavailable, calls `log`
 * once with a line naming the reason (default: stderr). `uring`: options of the io_uring
 * backend when it is chosen.
 * @example
 * const disk = await selectDisk(); // honours CHRONON_IO
 */
export async function selectDisk(
  mode: DiskMode = "auto",
  log: (line: string) => void = (line) => console.error(line),
  uring: UringDiskOptions = {},
): Promise<Disk> {
  const chosen = diskMode(mode);
  if (chosen === "sync") return new PortableDisk();
  if (chosen === "direct") {
    try {
      return await createDirectSyncDisk();
    } catch (error) {
      if (error instanceof UringUnavailable) throw new DiskSelectError(`CHRONON_IO=direct needs the native layer, but ${error.reason}`);
      throw error;
    }
  }
  try {
    return await createUringDisk(uring);
  } catch (error) {
    if (!(error instanceof UringUnavailable)) throw error;
    if (chosen === "uring") {
      const asked = mode === "uring" ? "the uring disk backend was required" : "CHRONON_IO=uring requires io_uring";
      throw new DiskSelectError(`${asked}, but ${error.reason}`);
    }
    log(`chronon: io_uring unavailable (${error.reason}); using the portable disk backend (CHRONON_IO=sync selects it without this notice)`);
    return new PortableDisk();
  }
}
