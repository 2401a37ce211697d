/**
 * A fault-injecting {@link Disk} wrapper for chaos runs (never for production: the node
 * builds it only when the test-only `CHRONON_TEST_FAULTS` variable is set, see
 * src/node/test_faults.ts).
 *
 * The faults are read from a settings getter on every call, so the chaos nemesis can arm
 * and disarm them while the replica runs:
 * - `syncEioProbability`: a durable write (`write` with `sync: true`, `sync`, `truncate`)
 *   fails with EIO with this probability, as a failing device would. The journal and the
 *   node treat it as fatal (the kernel may have dropped dirty pages) and exit.
 * - `tornWriteDelayMs`: a durable write is issued in two halves with this pause between
 *   them, before its fdatasync, so a SIGKILL during the pause leaves a torn, unsynced tail
 *   (which recovery must truncate, never mistake for a committed entry).
 * Bit flips in closed data are injected by the harness on the files of a stopped replica
 * (src/chaos/bit_flip.ts), not here: a running replica holds them in its own caches.
 * @module
 */
import type { Disk, DiskFile, WriteOptions } from "../storage/disk.ts";
import { DiskError } from "../storage/disk.ts";
import { concatBytes } from "../codec/bytes.ts";

/** The disk faults armed at one instant. */
export interface DiskFaultSettings {
  /** Probability in [0, 1] that a durable write or sync fails with EIO. */
  readonly syncEioProbability: number;
  /** Pause between the two halves of a durable write, ms (0: writes are not split). */
  readonly tornWriteDelayMs: number;
}

/** No faults. */
export const diskFaultsOff: DiskFaultSettings = { syncEioProbability: 0, tornWriteDelayMs: 0 };

/** Longest pause between the halves of a torn write (keeps a replica responsive). */
export const tornWriteDelayMsMax = 1000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Wraps `inner` so that the faults returned by `settings()` apply to every file it opens. */
export function faultyDisk(inner: Disk, settings: () => DiskFaultSettings, random: () => number = Math.random): Disk {
  const failSync = (operation: string, path: string): void => {
    const p = settings().syncEioProbability;
    if (p > 0 && random() < p) throw new DiskError(operation, path, "EIO", "injected by CHRONON_TEST_FAULTS");
  };
  const wrapFile = (file: DiskFile): DiskFile => {
    const wrapped: DiskFile = {
      path: file.path,
      size: () => file.size(),
      read: (offset, length) => file.read(offset, length),
      async write(offset: number, buffers: readonly Uint8Array[], options: WriteOptions): Promise<void> {
        if (!options.sync) return await file.write(offset, buffers, options);
        const delayMs = Math.min(settings().tornWriteDelayMs, tornWriteDelayMsMax);
        if (delayMs > 0) {
          // First half of the bytes reach the file unsynced, then a pause in which a kill
          // leaves a torn tail, then the rest with the barrier.
          const joined = concatBytes(buffers);
          const half = Math.floor(joined.length / 2);
          await file.write(offset, [joined.subarray(0, half)], { sync: false });
          await sleep(delayMs);
          failSync("fdatasync", file.path);
          return await file.write(offset + half, [joined.subarray(half)], { sync: true });
        }
        failSync("fdatasync", file.path);
        return await file.write(offset, buffers, options);
      },
      async sync(): Promise<void> {
        failSync("fdatasync", file.path);
        return await file.sync();
      },
      async truncate(size: number): Promise<void> {
        failSync("ftruncate+fdatasync", file.path);
        return await file.truncate(size);
      },
      close: () => file.close(),
    };
    if (file.readInto !== undefined) {
      const readInto = file.readInto.bind(file);
      return { ...wrapped, readInto: (offset, target) => readInto(offset, target) };
    }
    return wrapped;
  };
  return {
    name: `${inner.name}+faults`,
    open: async (path, options) => wrapFile(await inner.open(path, options)),
    exists: (path) => inner.exists(path),
    list: (directory) => inner.list(directory),
    mkdir: (directory) => inner.mkdir(directory),
    remove: (path) => inner.remove(path),
    syncDirectory: (directory) => inner.syncDirectory(directory),
    close: () => inner.close(),
  };
}
