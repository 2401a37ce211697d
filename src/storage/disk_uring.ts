/**
 * The io_uring Disk backend (and its ring-less sibling "direct-sync"), on the native-I/O
 * layer in ffi/. A synced write copies the caller's buffers into the file's aligned native
 * staging buffer and submits ONE chain: a write linked to an fdatasync. The event loop
 * goes on while the kernel works; completions come back through the ring's eventfd.
 *
 * Files are opened without O_DIRECT and O_DSYNC, except the synced writes of a file opened
 * `direct` (the journal's segments): those go through a second descriptor opened
 * O_DIRECT|O_DSYNC, as whole 4 KiB blocks (the partial blocks at either end are known from
 * the last write or read back), ONE ring write each: the device write and the barrier in
 * one request that the kernel starts at submission, where a page-cache write's fdatasync
 * is always handed to an io-wq worker (measured in C here: 1.1–1.35 x a blocking pwrite +
 * fdatasync for a lone 256 B appender, against 0.75–0.95 for the page-cache path).
 *
 * Directory calls (exists, list, mkdir, remove, syncDirectory) are rare and go through
 * the portable backend.
 * @module
 */
import { assert, assertCount } from "../assert.ts";
import { directBlockBytes, DiskError } from "./disk.ts";
import type { Disk, DiskFile, DiskOpenOptions, WriteOptions } from "./disk.ts";
import { PortableDisk } from "./disk_portable.ts";
import { RingScheduler } from "./ring_scheduler.ts";
import type { RingSchedulerOptions } from "./ring_scheduler.ts";
import { errnoName, IoError, loadNativeIo, NativeIoUnavailable } from "../../ffi/mod.ts";
import type { NativeBuffer, NativeIo, Ring } from "../../ffi/mod.ts";

/** Ring slots per Disk: 32 files can each have a write+fdatasync in flight. */
export const ringEntriesDefault = 64;

/** Alignment of staging buffers (a page: also right for O_DIRECT on 4 KiB devices). */
const stagingAlignment = 4096;

/** Largest staging buffer a file keeps between calls (8 MiB); a bigger one is freed after use. */
const stagingSizeKeepMax = 8 * 1024 * 1024;

/** readInto of at least this many bytes (1 MiB) is a pread on a pool thread, not a ring read. */
const bulkReadBytesMin = 1024 * 1024;

/** A bulk read is split into at most this many parts read at once (each at least bulkReadBytesMin). */
const bulkReadPartsMax = 4;

/** Largest single ring entry (the kernel's length field is 32-bit; stay well under it). */
const entryBytesMax = 1 << 30;

/**
 * Largest staging copy of one write to a page-cache file: larger writes are staged and
 * written in pieces of this size (see NativeFile's #writePieces). At most the inline
 * write size, so each piece is one pwrite on the calling thread of about 0.2–0.4 ms.
 */
const stagingPieceBytes = 1024 * 1024;
assert(stagingPieceBytes <= stagingSizeKeepMax, "a file keeps its piece-sized staging buffer between calls");

const ECANCELED = 125;

/** io_uring cannot be used here; `reason` is one sentence for the notice line. */
export class UringUnavailable extends Error {
  override readonly name = "UringUnavailable";
  /** errno name when the kernel refused ("EPERM", "ENOSYS"), else "". */
  readonly code: string;
  /** Why, and how to enable it where that is possible. */
  readonly reason: string;

  /** Creates the error. */
  constructor(reason: string, code = "") {
    super(`io_uring unavailable: ${reason}`);
    this.reason = reason;
    this.code = code;
  }
}

function diskError(operation: string, path: string, error: unknown): DiskError {
  if (error instanceof DiskError) return error;
  if (error instanceof IoError) return new DiskError(operation, path, error.code, error.message);
  throw error; // not an I/O failure: a bug, let it crash
}

/** Throws DiskError for an entry result that is -errno. */
function checkResult(operation: string, path: string, result: number): number {
  if (result < 0) throw new DiskError(operation, path, errnoName(-result));
  return result;
}

/**
 * The byte count of a direct write that returned `count`. A short one (a disk filling up)
 * must still end on a block boundary for the rest to be an aligned write; anything else
 * is an I/O error, reported, not an assertion.
 */
function directProgress(path: string, count: number): number {
  if (count > 0 && count % directBlockBytes === 0) return count;
  throw new DiskError("write", path, "EIO", `direct write made ${count} bytes of progress, not whole ${directBlockBytes}-byte blocks`);
}

/** How a NativeFile reaches the kernel. */
interface Engine {
  /** Writes all of `bytes` (native) at `position`; with `sync`, makes them durable. */
  write(file: NativeFile, bytes: Uint8Array, position: number, sync: boolean): Promise<void>;
  /** Reads into `bytes` (native) from `position`; returns the count (short only at EOF). */
  read(file: NativeFile, bytes: Uint8Array, position: number): Promise<number>;
  /** fdatasync (`dataOnly`) or fsync. */
  sync(file: NativeFile, dataOnly: boolean): Promise<void>;
  /**
   * Writes all of `bytes` (native, block-aligned, whole blocks) at `position` through
   * `fd`, a descriptor opened O_DIRECT|O_DSYNC: durable when it resolves.
   */
  writeDirect(file: NativeFile, fd: number, bytes: Uint8Array, position: number): Promise<void>;
}

/**
 * Default for {@link UringDiskOptions.inlineWriteBytesMax}: writes up to 1 MiB are copied
 * into the page cache on the calling thread (about 0.2 ms at most) and only the
 * fdatasync goes through the ring. See {@link RingEngine}.
 */
export const inlineWriteBytesMaxDefault = 1024 * 1024;

/**
 * Default for {@link UringDiskOptions.directBlockingBytesMax}: journal writes up to 256 KiB
 * (a batch of a few hundred entries; 0.1–0.5 ms on the SSDs measured) block the calling
 * thread in one O_DIRECT|O_DSYNC pwrite instead of going through the ring. A ring write's
 * completion comes back through the eventfd, read on the runtime's thread pool: a pool
 * thread and then the event loop must be woken and scheduled for every flush, which on a
 * 2-core machine shared by three replicas and their clients cost more than the wait
 * itself (`bench cluster` with the loop blocking in the write: 1 client 671–672 against
 * 381–417 requests/s through the ring, 64 clients 9.6–12.4k against 5.7–8.4k, interleaved
 * runs on a busy machine; docs/native-io.md). Larger writes stay on the ring, so a
 * multi-megabyte write never stalls the loop.
 */
export const directBlockingBytesMaxDefault = 256 * 1024;

/**
 * io_uring: each call is one chain on the Disk's ring.
 *
 * A synced write up to `inlineWriteBytesMax` is a pwrite on the calling thread followed by
 * an fdatasync through the ring, rather than a write linked to the fdatasync: the write
 * is a page-cache copy (microseconds for a journal batch), and a linked pair is worked
 * off by one io-wq worker, write then fdatasync, whenever the kernel cannot do the write
 * without blocking at submission (e.g. a file time to update), which costs the worker's
 * time on a 2-core machine where the flush of a lone appender is the critical path. Only
 * the fdatasync — the part that waits for the device — runs off the event loop either way.
 * Larger writes stay on the ring so that a multi-megabyte copy never stalls the loop.
 */
class RingEngine implements Engine {
  readonly #scheduler: RingScheduler;
  readonly #io: NativeIo;
  readonly #inlineWriteBytesMax: number;
  readonly #directBlockingBytesMax: number;
  constructor(scheduler: RingScheduler, io: NativeIo, inlineWriteBytesMax: number, directBlockingBytesMax: number) {
    assert(Number.isSafeInteger(inlineWriteBytesMax) && inlineWriteBytesMax >= 0, "inlineWriteBytesMax is a byte count");
    assert(Number.isSafeInteger(directBlockingBytesMax) && directBlockingBytesMax >= 0, "directBlockingBytesMax is a byte count");
    this.#scheduler = scheduler;
    this.#io = io;
    this.#inlineWriteBytesMax = inlineWriteBytesMax;
    this.#directBlockingBytesMax = directBlockingBytesMax;
  }

  async write(file: NativeFile, bytes: Uint8Array, position: number, sync: boolean): Promise<void> {
    if (bytes.length > 0 && bytes.length <= this.#inlineWriteBytesMax) {
      try {
        let done = 0;
        while (done < bytes.length) {
          const count = this.#io.pwrite(file.fd, done === 0 ? bytes : bytes.subarray(done), position + done);
          assert(count > 0, "pwrite made no progress");
          done += count;
        }
      } catch (error) {
        throw diskError("write", file.path, error);
      }
      if (sync) await this.sync(file, true);
      return;
    }
    let done = 0;
    while (done < bytes.length) {
      const length = Math.min(bytes.length - done, entryBytesMax);
      const write = { kind: "write", fd: file.fd, bytes: bytes.subarray(done, done + length), position: position + done } as const;
      // The fdatasync rides on the last write only; a short write cancels it (ECANCELED)
      // and the loop writes the rest, then the next chain carries the sync.
      const last = done + length === bytes.length;
      const results = await this.#scheduler.run(sync && last ? [write, { kind: "fsync", fd: file.fd, dataOnly: true }] : [write]);
      const count = checkResult("write", file.path, results[0]!);
      assert(count > 0, "write made no progress");
      done += count;
      if (results.length === 2 && count === length) {
        checkResult("fdatasync", file.path, results[1]!);
      } else if (results.length === 2) {
        assert(results[1] === -ECANCELED, "a short write must cancel its linked fdatasync");
        if (done === bytes.length) await this.sync(file, true);
      }
    }
    if (bytes.length === 0 && sync) await this.sync(file, true);
  }

  async read(file: NativeFile, bytes: Uint8Array, position: number): Promise<number> {
    let done = 0;
    while (done < bytes.length) {
      const length = Math.min(bytes.length - done, entryBytesMax);
      const [result] = await this.#scheduler.run([{ kind: "read", fd: file.fd, bytes: bytes.subarray(done, done + length), position: position + done }]);
      const count = checkResult("read", file.path, result!);
      if (count === 0) break; // end of file
      done += count;
    }
    return done;
  }

  async sync(file: NativeFile, dataOnly: boolean): Promise<void> {
    const [result] = await this.#scheduler.run([{ kind: "fsync", fd: file.fd, dataOnly }]);
    checkResult(dataOnly ? "fdatasync" : "fsync", file.path, result!);
  }

  async writeDirect(file: NativeFile, fd: number, bytes: Uint8Array, position: number): Promise<void> {
    if (bytes.length <= this.#directBlockingBytesMax) return blockingDirectWrite(this.#io, file, fd, bytes, position);
    let done = 0;
    while (done < bytes.length) {
      const length = Math.min(bytes.length - done, entryBytesMax);
      const [result] = await this.#scheduler.run([{ kind: "write", fd, bytes: bytes.subarray(done, done + length), position: position + done }]);
      done += directProgress(file.path, checkResult("write", file.path, result!));
    }
  }
}

/**
 * Writes whole blocks to a file's O_DIRECT|O_DSYNC descriptor with pwrite on the calling
 * thread: the device write and its barrier in one system call, which returns when both
 * are done (the thread sleeps in the kernel meanwhile, using no CPU).
 */
function blockingDirectWrite(io: NativeIo, file: NativeFile, fd: number, bytes: Uint8Array, position: number): Promise<void> {
  try {
    let done = 0;
    while (done < bytes.length) {
      done += directProgress(file.path, io.pwrite(fd, done === 0 ? bytes : bytes.subarray(done), position + done));
    }
  } catch (error) {
    return Promise.reject(diskError("write", file.path, error));
  }
  return Promise.resolve();
}

/** direct-sync: pwrite + fdatasync through FFI on the calling thread (blocks the event loop). */
class DirectSyncEngine implements Engine {
  readonly #io: NativeIo;
  constructor(io: NativeIo) {
    this.#io = io;
  }

  write(file: NativeFile, bytes: Uint8Array, position: number, sync: boolean): Promise<void> {
    try {
      let done = 0;
      while (done < bytes.length) {
        const count = this.#io.pwrite(file.fd, bytes.subarray(done), position + done);
        assert(count > 0, "pwrite made no progress");
        done += count;
      }
      if (sync) this.#io.fdatasync(file.fd);
    } catch (error) {
      return Promise.reject(diskError("write", file.path, error));
    }
    return Promise.resolve();
  }

  read(file: NativeFile, bytes: Uint8Array, position: number): Promise<number> {
    try {
      let done = 0;
      while (done < bytes.length) {
        const count = this.#io.pread(file.fd, bytes.subarray(done), position + done);
        if (count === 0) break;
        done += count;
      }
      return Promise.resolve(done);
    } catch (error) {
      return Promise.reject(diskError("read", file.path, error));
    }
  }

  writeDirect(file: NativeFile, fd: number, bytes: Uint8Array, position: number): Promise<void> {
    return blockingDirectWrite(this.#io, file, fd, bytes, position);
  }

  sync(file: NativeFile, dataOnly: boolean): Promise<void> {
    try {
      if (dataOnly) this.#io.fdatasync(file.fd);
      else this.#io.fsync(file.fd);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(diskError(dataOnly ? "fdatasync" : "fsync", file.path, error));
    }
  }
}

class NativeFile implements DiskFile {
  readonly path: string;
  readonly #disk: NativeDisk;
  #fd: number;
  #staging: NativeBuffer | null = null;
  /** Calls on one file run one at a time: they share the staging buffer. */
  #tail: Promise<unknown> = Promise.resolve();
  /** The O_DIRECT|O_DSYNC descriptor for synced writes; -1 when the file is not direct. */
  #directFd: number;
  /** The file's size as of the last call that changed it (direct files only). */
  #sizeKnown: number;
  /** A copy of the block last written direct, so that the next append need not read it back. */
  readonly #lastBlock: Uint8Array;
  /** Where {@link #lastBlock} starts in the file; -1 when nothing is cached. */
  #lastBlockAt = -1;

  constructor(disk: NativeDisk, path: string, fd: number, direct: { readonly fd: number; readonly size: number } | null) {
    this.#disk = disk;
    this.path = path;
    this.#fd = fd;
    this.#directFd = direct?.fd ?? -1;
    this.#sizeKnown = direct?.size ?? 0;
    this.#lastBlock = new Uint8Array(direct === null ? 0 : directBlockBytes);
  }

  /** True when synced writes go O_DIRECT (for tests). */
  get direct(): boolean {
    return this.#directFd >= 0;
  }

  /** The descriptor; throws DiskError once closed. */
  get fd(): number {
    if (this.#fd < 0) throw new DiskError("use", this.path, "EBADF", "file is closed");
    return this.#fd;
  }

  /** Runs `body` after every earlier call on this file settled. */
  #serial<T>(body: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(() => body());
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** A native buffer of at least `size` bytes, reused across calls. */
  #stagingFor(size: number): NativeBuffer {
    const io = this.#disk.io;
    if (this.#staging !== null && this.#staging.size >= size) return this.#staging;
    if (this.#staging !== null) io.free(this.#staging);
    this.#staging = null;
    let capacity = stagingAlignment;
    while (capacity < size) capacity *= 2;
    this.#staging = io.allocate(capacity, stagingAlignment);
    return this.#staging;
  }

  /** Frees a staging buffer too large to keep (only when nothing in flight uses it). */
  #trimStaging(): void {
    if (this.#staging !== null && this.#staging.size > stagingSizeKeepMax) {
      this.#disk.io.free(this.#staging);
      this.#staging = null;
    }
  }

  size(): Promise<number> {
    return this.#serial(() => {
      try {
        return Promise.resolve(this.#disk.io.fileSize(this.fd));
      } catch (error) {
        throw diskError("size", this.path, error);
      }
    });
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    assertCount(offset, "read offset");
    assertCount(length, "read length");
    return this.#serial(async () => {
      const fd = this.fd;
      assert(fd >= 0, "open file has a descriptor");
      if (length === 0) return new Uint8Array(0);
      const staging = this.#stagingFor(length).bytes.subarray(0, length);
      try {
        const count = await this.#disk.engine.read(this, staging, offset);
        return staging.slice(0, count);
      } finally {
        this.#trimStaging();
      }
    });
  }

  readInto(offset: number, target: Uint8Array): Promise<number> {
    assertCount(offset, "read offset");
    return this.#serial(async () => {
      const fd = this.fd;
      assert(fd >= 0, "open file has a descriptor");
      if (target.length === 0) return 0;
      if (target.length >= bulkReadBytesMin) {
        // Bulk reads (recovery's chunks) go straight into the caller's buffer on a pool
        // thread: through the ring they would need the staging copy, and a read of cached
        // pages completes at submission, on the event-loop thread (together 0.4 s per GiB
        // of the scan's main thread, measured).
        // In parts read at once on different pool threads: a cold sequential read of one
        // stream got about 540 MB/s from this VM's disk, two streams about 1,070 MB/s.
        const parts = Math.min(bulkReadPartsMax, Math.floor(target.length / bulkReadBytesMin));
        const partBytes = Math.ceil(target.length / parts);
        const counts: Promise<number>[] = [];
        for (let at = 0; at < target.length; at += partBytes) {
          counts.push(this.#preadAll(fd, target.subarray(at, Math.min(target.length, at + partBytes)), offset + at));
        }
        const done = await Promise.all(counts);
        // Short only at the end of the file: the bytes count up to the first short part.
        let total = 0;
        for (let i = 0; i < done.length; i++) {
          total += done[i]!;
          if (done[i]! < Math.min(partBytes, target.length - i * partBytes)) break;
        }
        return total;
      }
      // The kernel needs native memory: read into staging, then one copy into the caller's
      // (reused, already faulted-in) buffer.
      const staging = this.#stagingFor(target.length).bytes.subarray(0, target.length);
      try {
        const count = await this.#disk.engine.read(this, staging, offset);
        target.set(count === staging.length ? staging : staging.subarray(0, count));
        return count;
      } finally {
        this.#trimStaging();
      }
    });
  }

  /** Reads into all of `target` at `position` on a pool thread; the count is short only at the end of the file. */
  async #preadAll(fd: number, target: Uint8Array, position: number): Promise<number> {
    let done = 0;
    try {
      while (done < target.length) {
        const count = await this.#disk.io.preadOffThread(fd, done === 0 ? target : target.subarray(done), position + done);
        if (count === 0) break; // end of file
        done += count;
      }
    } catch (error) {
      throw diskError("read", this.path, error);
    }
    return done;
  }

  write(offset: number, buffers: readonly Uint8Array[], options: WriteOptions): Promise<void> {
    assertCount(offset, "write offset");
    return this.#serial(async () => {
      const fd = this.fd;
      assert(fd >= 0, "open file has a descriptor");
      let size = 0;
      for (const buffer of buffers) size += buffer.length;
      assertCount(offset + size, "write end");
      if (size === 0) {
        if (options.sync) await this.#disk.engine.sync(this, true);
        return;
      }
      if (this.#directFd >= 0) {
        if (options.sync) return await this.#writeDirect(offset, buffers, size);
        // An unsynced write goes through the page cache; the cached block may be stale now.
        this.#lastBlockAt = -1;
        this.#sizeKnown = Math.max(this.#sizeKnown, offset + size);
      }
      if (size > stagingPieceBytes) return await this.#writePieces(offset, buffers, size, options.sync);
      // The kernel reads the staging copy after this returns to the event loop, so the
      // caller may reuse its buffers as soon as the promise resolves (or even before).
      const staging = this.#stagingFor(size).bytes;
      let at = 0;
      for (const buffer of buffers) {
        staging.set(buffer, at);
        at += buffer.length;
      }
      assert(at === size, "staged every byte");
      try {
        await this.#disk.engine.write(this, staging.subarray(0, size), offset, options.sync);
      } finally {
        this.#trimStaging();
      }
    });
  }

  /**
   * A write larger than {@link stagingPieceBytes} (a checkpoint of tens of megabytes): the
   * buffers go through one staging buffer of that size a piece at a time, one event-loop
   * turn apart, then one barrier. Staging the whole write at once took a native buffer of
   * its size and one copy of it on the event loop (10–15 ms for 18 MB, at the checkpoint's
   * op on every replica).
   */
  async #writePieces(offset: number, buffers: readonly Uint8Array[], size: number, sync: boolean): Promise<void> {
    const staging = this.#stagingFor(stagingPieceBytes).bytes;
    try {
      let written = 0;
      let buffer = 0;
      let within = 0;
      while (written < size) {
        const length = Math.min(stagingPieceBytes, size - written);
        let filled = 0;
        while (filled < length) {
          const source = buffers[buffer]!;
          const take = Math.min(length - filled, source.length - within);
          staging.set(take === source.length ? source : source.subarray(within, within + take), filled);
          filled += take;
          within += take;
          if (within === source.length) {
            buffer++;
            within = 0;
          }
        }
        await this.#disk.engine.write(this, staging.subarray(0, length), offset + written, false);
        written += length;
        if (written < size) await new Promise<void>((resolve) => setImmediate(resolve));
      }
      assert(written === size, "wrote every piece");
      if (sync) await this.#disk.engine.sync(this, true);
    } finally {
      this.#trimStaging();
    }
  }

  /**
   * A synced write of a direct file: the whole blocks that `[offset, offset + size)` touches,
   * with the bytes around that range as they were (from the cached last block, read back,
   * or zero past the end of the file), in one O_DIRECT|O_DSYNC write.
   */
  async #writeDirect(offset: number, buffers: readonly Uint8Array[], size: number): Promise<void> {
    const block = directBlockBytes;
    const start = offset - (offset % block);
    const end = offset + size;
    const alignedEnd = Math.ceil(end / block) * block;
    const length = alignedEnd - start;
    const staging = this.#stagingFor(length).bytes;
    try {
      // The partial blocks at either end, the last one only when it is not the first.
      const lastAt = alignedEnd - block;
      const headPartial = offset > start;
      if (headPartial) this.#fillBlock(staging, 0, start);
      if (end < alignedEnd && !(headPartial && lastAt === start)) this.#fillBlock(staging, lastAt - start, lastAt);
      let at = offset - start;
      for (const buffer of buffers) {
        staging.set(buffer, at);
        at += buffer.length;
      }
      assert(at === end - start, "staged every byte");
      this.#lastBlockAt = -1; // unknown until the write succeeded
      await this.#disk.engine.writeDirect(this, this.#directFd, staging.subarray(0, length), start);
      this.#lastBlock.set(staging.subarray(length - block, length));
      this.#lastBlockAt = lastAt;
      this.#sizeKnown = Math.max(this.#sizeKnown, alignedEnd);
    } finally {
      this.#trimStaging();
    }
  }

  /** Puts the file's current block at `blockAt` into `staging` at `into`. */
  #fillBlock(staging: Uint8Array, into: number, blockAt: number): void {
    const target = staging.subarray(into, into + directBlockBytes);
    if (blockAt === this.#lastBlockAt) {
      target.set(this.#lastBlock);
      return;
    }
    let done = 0;
    if (blockAt < this.#sizeKnown) {
      // Rare (the first append after open, a repair): a block's pread from the page cache.
      try {
        while (done < target.length) {
          const count = this.#disk.io.pread(this.fd, target.subarray(done), blockAt + done);
          if (count === 0) break;
          done += count;
        }
      } catch (error) {
        throw diskError("read", this.path, error);
      }
    }
    target.fill(0, done);
  }

  sync(): Promise<void> {
    return this.#serial(() => this.#disk.engine.sync(this, true));
  }

  truncate(size: number): Promise<void> {
    assertCount(size, "truncate size");
    return this.#serial(async () => {
      this.#lastBlockAt = -1;
      this.#sizeKnown = size;
      try {
        this.#disk.io.ftruncate(this.fd, size);
      } catch (error) {
        throw diskError("ftruncate", this.path, error);
      }
      await this.#disk.engine.sync(this, false);
    });
  }

  close(): Promise<void> {
    return this.#serial(() => {
      const fd = this.fd;
      const directFd = this.#directFd;
      this.#fd = -1;
      this.#directFd = -1;
      this.#disk.forget(this);
      if (this.#staging !== null) this.#disk.io.free(this.#staging);
      this.#staging = null;
      try {
        if (directFd >= 0) this.#disk.io.close(directFd);
        this.#disk.io.close(fd);
      } catch (error) {
        throw diskError("close", this.path, error);
      }
      return Promise.resolve();
    });
  }
}

/** A Disk on the native-I/O layer: "uring" with a ring, "direct-sync" without. */
class NativeDisk implements Disk {
  readonly name: string;
  readonly io: NativeIo;
  readonly engine: Engine;
  readonly #ring: Ring | null;
  readonly #scheduler: RingScheduler | null;
  readonly #directories = new PortableDisk();
  readonly #files = new Set<NativeFile>();
  /** Whether files opened `direct` get O_DIRECT synced writes ({@link UringDiskOptions.directWrites}). */
  readonly #directWrites: boolean;
  #closed = false;

  constructor(io: NativeIo, ring: Ring | null, options: UringDiskOptions = {}) {
    this.io = io;
    this.#directWrites = options.directWrites ?? true;
    this.#ring = ring;
    this.#scheduler = ring === null ? null : new RingScheduler(ring, options.pollMicros === undefined ? {} : { pollMicros: options.pollMicros });
    this.engine = this.#scheduler === null
      ? new DirectSyncEngine(io)
      : new RingEngine(
        this.#scheduler, io, options.inlineWriteBytesMax ?? inlineWriteBytesMaxDefault,
        options.directBlockingBytesMax ?? directBlockingBytesMaxDefault,
      );
    this.name = ring === null ? "direct-sync" : "uring";
  }

  /** Chains submitted to the ring so far (0 without a ring): which path writes took, for tests. */
  get ringChains(): number {
    return this.#scheduler?.chainsSubmitted ?? 0;
  }

  /** Drops a closed file from the set the Disk closes on close(). */
  forget(file: NativeFile): void {
    this.#files.delete(file);
  }

  open(path: string, options: DiskOpenOptions): Promise<DiskFile> {
    assert(!this.#closed, "disk used after close");
    const flags = this.io.flags;
    let fd = -1;
    try {
      fd = this.io.open(path, flags.O_RDWR | flags.O_CLOEXEC | (options.create ? flags.O_CREAT : 0), 0o644);
      const direct = options.direct === true && this.#directWrites ? this.#openDirect(path, fd) : null;
      const file = new NativeFile(this, path, fd, direct);
      this.#files.add(file);
      return Promise.resolve(file);
    } catch (error) {
      if (fd >= 0) this.io.close(fd);
      return Promise.reject(diskError("open", path, error));
    }
  }

  /**
   * The O_DIRECT|O_DSYNC descriptor of a direct file and its size, or null where the file
   * system refuses O_DIRECT (EINVAL: tmpfs, some FUSE and network file systems): that file
   * then takes the page-cache path.
   */
  #openDirect(path: string, fd: number): { fd: number; size: number } | null {
    const flags = this.io.flags;
    try {
      const directFd = this.io.open(path, flags.O_RDWR | flags.O_CLOEXEC | flags.O_DIRECT | flags.O_DSYNC, 0o644);
      return { fd: directFd, size: this.io.fileSize(fd) };
    } catch (error) {
      if (error instanceof IoError && error.code === "EINVAL") return null;
      throw error;
    }
  }

  exists(path: string): Promise<boolean> {
    return this.#directories.exists(path);
  }

  list(directory: string): Promise<string[]> {
    return this.#directories.list(directory);
  }

  mkdir(directory: string): Promise<void> {
    return this.#directories.mkdir(directory);
  }

  remove(path: string): Promise<void> {
    return this.#directories.remove(path);
  }

  syncDirectory(directory: string): Promise<void> {
    return this.#directories.syncDirectory(directory);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const file of [...this.#files]) await file.close();
    if (this.#scheduler !== null) await this.#scheduler.drain();
    this.#ring?.close();
    await this.#directories.close();
  }
}

/** Options of {@link createUringDisk}. */
export interface UringDiskOptions extends RingSchedulerOptions {
  /** Ring slots (a power of two; default {@link ringEntriesDefault}). */
  readonly ringEntries?: number;
  /**
   * Writes up to this many bytes are pwrite(2) calls on the calling thread, and only a
   * synced write's fdatasync goes through the ring (default
   * {@link inlineWriteBytesMaxDefault}; 0: every write goes through the ring, linked to
   * its fdatasync).
   */
  readonly inlineWriteBytesMax?: number;
  /**
   * Files opened with `direct` get O_DIRECT|O_DSYNC synced writes (default true; false:
   * every file takes the page-cache path, for comparison).
   */
  readonly directWrites?: boolean;
  /**
   * Synced writes to a `direct` file (the journal's segments) up to this many bytes are a
   * pwrite on its O_DIRECT|O_DSYNC descriptor on the calling thread, not a ring write
   * (default {@link directBlockingBytesMaxDefault}; 0: every one goes through the ring).
   */
  readonly directBlockingBytesMax?: number;
}

/** Loads the native layer, mapping "cannot load" to UringUnavailable. */
async function nativeIo(): Promise<NativeIo> {
  try {
    return await loadNativeIo();
  } catch (error) {
    if (error instanceof NativeIoUnavailable) throw new UringUnavailable(error.message);
    throw error;
  }
}

/**
 * The io_uring Disk. Rejects with {@link UringUnavailable} naming the cause (no shim
 * built, EPERM from seccomp, ENOSYS, kernel.io_uring_disabled, no FFI permission).
 * @example
 * try { disk = await createUringDisk(); } catch (e) { if (e instanceof UringUnavailable) console.log(e.reason); }
 */
export async function createUringDisk(options: UringDiskOptions = {}): Promise<Disk> {
  const io = await nativeIo();
  const opened = io.openRing(options.ringEntries ?? ringEntriesDefault);
  if (!opened.ok) throw new UringUnavailable(opened.reason, opened.code);
  return new NativeDisk(io, opened.ring, options);
}

/**
 * The ring-less native Disk ("direct-sync"): one coalesced pwrite + fdatasync through FFI
 * per synced write, on the calling thread. For comparison with "uring" and "portable".
 */
export async function createDirectSyncDisk(options: Pick<UringDiskOptions, "directWrites"> = {}): Promise<Disk> {
  return new NativeDisk(await nativeIo(), null, options);
}

/** Whether io_uring can be had here, and if not, why (opens and closes a ring). */
export async function probeUring(): Promise<{ readonly ok: true } | { readonly ok: false; readonly code: string; readonly reason: string }> {
  try {
    await (await createUringDisk({ ringEntries: 2 })).close();
    return { ok: true };
  } catch (error) {
    if (error instanceof UringUnavailable) return { ok: false, code: error.code, reason: error.reason };
    throw error;
  }
}
