/**
 * The portable Disk backend: node:fs with file descriptors. A synced write is one write
 * call (the buffers coalesced into one, which runtimes.md measured as the fastest way)
 * followed by one fdatasync, by default on the calling thread (see the constructor); the
 * non-blocking io_uring backend is the one that overlaps flushes with other work.
 * @module
 */
import fs from "node:fs";
import { dirname } from "node:path";
import { assert, assertCount } from "../assert.ts";
import { DiskError } from "./disk.ts";
import type { Disk, DiskFile, DiskOpenOptions, WriteOptions } from "./disk.ts";
import { concatBytes } from "../codec/bytes.ts";

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

function wrap(operation: string, path: string, error: unknown): DiskError {
  return new DiskError(operation, path, codeOf(error), error instanceof Error ? error.message : String(error));
}

/** Runs a node:fs callback function as a promise, mapping failures to DiskError. */
function call<T>(operation: string, path: string, start: (done: (error: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, value) => (error ? reject(wrap(operation, path, error)) : resolve(value as T)));
  });
}

/** Largest staging buffer a file keeps between writes (8 MiB). */
const stagingSizeKeepMax = 8 * 1024 * 1024;

/** Joins buffers into one so the kernel sees a single write. */
function coalesce(buffers: readonly Uint8Array[]): Uint8Array {
  return buffers.length === 1 ? buffers[0]! : concatBytes(buffers);
}

class PortableFile implements DiskFile {
  readonly path: string;
  readonly #blocking: boolean;
  #fd: number;
  #staging: Uint8Array = new Uint8Array(0);

  constructor(path: string, fd: number, blocking: boolean) {
    this.path = path;
    this.#fd = fd;
    this.#blocking = blocking;
  }

  #open(): number {
    if (this.#fd < 0) throw new DiskError("use", this.path, "EBADF", "file is closed");
    return this.#fd;
  }

  /**
   * Coalesces into a staging buffer reused across blocking writes (they complete before
   * returning, so reuse is safe): no 256 KiB allocation and copy-to-garbage per batch.
   */
  #stage(buffers: readonly Uint8Array[]): Uint8Array {
    if (buffers.length === 1) return buffers[0]!;
    let size = 0;
    for (const buffer of buffers) size += buffer.length;
    if (this.#staging.length < size) this.#staging = new Uint8Array(Math.max(size, this.#staging.length * 2));
    let at = 0;
    for (const buffer of buffers) {
      this.#staging.set(buffer, at);
      at += buffer.length;
    }
    const staged = this.#staging.subarray(0, size);
    // A huge one-off batch should not pin its buffer for the life of the file.
    if (this.#staging.length > stagingSizeKeepMax) this.#staging = new Uint8Array(0);
    return staged;
  }

  async size(): Promise<number> {
    const fd = this.#open();
    const stat = await call<fs.Stats>("fstat", this.path, (done) => fs.fstat(fd, done));
    return stat.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    assertCount(offset, "read offset");
    assertCount(length, "read length");
    const fd = this.#open();
    const buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const count = await call<number>("read", this.path, (cb) => fs.read(fd, buffer, done, length - done, offset + done, cb));
      if (count === 0) break; // end of file
      done += count;
    }
    return done === length ? buffer : buffer.subarray(0, done);
  }

  async readInto(offset: number, target: Uint8Array): Promise<number> {
    assertCount(offset, "read offset");
    const fd = this.#open();
    let done = 0;
    while (done < target.length) {
      const count = await call<number>("read", this.path, (cb) => fs.read(fd, target, done, target.length - done, offset + done, cb));
      if (count === 0) break; // end of file
      done += count;
    }
    return done;
  }

  async write(offset: number, buffers: readonly Uint8Array[], options: WriteOptions): Promise<void> {
    assertCount(offset, "write offset");
    const fd = this.#open();
    if (this.#blocking && options.sync && byteLength(buffers) <= blockingWriteSizeMax) {
      const bytes = this.#stage(buffers);
      // Measured faster here than two thread-pool hops (runtimes.md, bench journal): the
      // event loop waits for the flush, which it would only wait for anyway.
      try {
        let at = 0;
        while (at < bytes.length) at += fs.writeSync(fd, bytes, at, bytes.length - at, offset + at);
        fs.fdatasyncSync(fd);
      } catch (error) {
        throw wrap("write", this.path, error);
      }
      return;
    }
    // Small buffers are joined into one write; large ones (a checkpoint image) are written
    // as they are rather than copied into a second buffer of megabytes.
    const pieces = writePieces(buffers);
    let at = offset;
    for (const bytes of pieces) {
      let done = 0;
      while (done < bytes.length) {
        const count = await call<number>(
          "write",
          this.path,
          (cb) => fs.write(fd, bytes, done, bytes.length - done, at + done, cb),
        );
        assert(count > 0, "write made no progress");
        done += count;
      }
      at += bytes.length;
    }
    if (options.sync) await this.sync();
  }

  sync(): Promise<void> {
    const fd = this.#open();
    return call<void>("fdatasync", this.path, (cb) => fs.fdatasync(fd, cb));
  }

  async truncate(size: number): Promise<void> {
    assertCount(size, "truncate size");
    const fd = this.#open();
    await call<void>("ftruncate", this.path, (cb) => fs.ftruncate(fd, size, cb));
    await call<void>("fsync", this.path, (cb) => fs.fsync(fd, cb));
  }

  async close(): Promise<void> {
    const fd = this.#open();
    this.#fd = -1;
    await call<void>("close", this.path, (cb) => fs.close(fd, cb));
  }
}

/**
 * Largest synced write done on the calling thread with `blockingSync` (the same bound as
 * the io_uring backend's inline writes). Journal batches are mostly smaller; a checkpoint
 * image of tens of megabytes takes tens of milliseconds to write and flush, which would
 * stall every request of the replica: it goes through the thread pool.
 */
export const blockingWriteSizeMax = 1024 * 1024;

function byteLength(buffers: readonly Uint8Array[]): number {
  let total = 0;
  for (const buffer of buffers) total += buffer.length;
  return total;
}

/**
 * The buffers of a thread-pool write as few pieces as possible without copying
 * megabytes: runs of smaller buffers are joined into pieces of at most
 * `blockingWriteSizeMax`, a buffer of that size or more is written as it is.
 */
function writePieces(buffers: readonly Uint8Array[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const endRun = () => {
    if (run.length > 0) pieces.push(coalesce(run));
    run = [];
    runBytes = 0;
  };
  for (const buffer of buffers) {
    if (buffer.length >= blockingWriteSizeMax) {
      endRun();
      pieces.push(buffer);
      continue;
    }
    if (runBytes + buffer.length > blockingWriteSizeMax) endRun();
    run.push(buffer);
    runBytes += buffer.length;
  }
  endRun();
  return pieces;
}

/**
 * node:fs backend; available on every runtime.
 * @example
 * const disk = new PortableDisk();
 * const file = await disk.open("/tmp/x", { create: true });
 * await file.write(0, [new Uint8Array([1, 2, 3])], { sync: true });
 */
export class PortableDisk implements Disk {
  readonly name = "portable";
  readonly #blocking: boolean;

  /**
   * With `blockingSync` (the default) a synced write of up to {@link blockingWriteSizeMax}
   * bytes is one writeSync + fdatasyncSync on the calling thread: it blocks the event loop
   * for the flush (about 0.2-0.4 ms here) but saves two thread-pool round trips, which
   * measured 25-40% more durable appends/s for one appender. Larger synced writes, unsynced
   * writes, reads and directory calls use the thread pool.
   */
  constructor(options: { readonly blockingSync?: boolean } = {}) {
    this.#blocking = options.blockingSync ?? true;
  }

  async open(path: string, options: DiskOpenOptions): Promise<DiskFile> {
    const flags = options.create ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDWR;
    const fd = await call<number>("open", path, (cb) => fs.open(path, flags, 0o644, cb));
    return new PortableFile(path, fd, this.#blocking);
  }

  exists(path: string): Promise<boolean> {
    return new Promise((resolve) => fs.stat(path, (error) => resolve(error === null)));
  }

  async list(directory: string): Promise<string[]> {
    const names = await call<string[]>("readdir", directory, (cb) => fs.readdir(directory, cb));
    return names.sort();
  }

  async mkdir(directory: string): Promise<void> {
    await call<unknown>("mkdir", directory, (cb) => fs.mkdir(directory, { recursive: true }, cb));
    await this.syncDirectory(dirname(directory));
  }

  remove(path: string): Promise<void> {
    return call<void>("unlink", path, (cb) => fs.unlink(path, cb));
  }

  async syncDirectory(directory: string): Promise<void> {
    const fd = await call<number>("open", directory, (cb) => fs.open(directory, fs.constants.O_RDONLY, cb));
    try {
      await call<void>("fsync", directory, (cb) => fs.fsync(fd, cb));
    } finally {
      await call<void>("close", directory, (cb) => fs.close(fd, cb));
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
