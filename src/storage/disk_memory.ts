/**
 * An in-memory Disk with injected faults, for unit tests and the simulator. For every file
 * it keeps the durable bytes (as of the last sync) and the bytes a reader sees now (durable
 * plus unsynced writes); `crash()` throws the unsynced writes away, optionally keeping a
 * torn prefix of them at sector granularity (drawn from a seeded PRNG). Created and removed
 * files become durable only with `syncDirectory` of their directory, as on Linux.
 * @module
 */
import { dirname } from "node:path";
import { assert, assertCount } from "../assert.ts";
import { directBlockBytes, DiskError } from "./disk.ts";
import type { Disk, DiskFile, DiskOpenOptions, WriteOptions } from "./disk.ts";
import type { Random } from "./seeded_random.ts";
import { concatBytes } from "../codec/bytes.ts";

/** Sector size of the simulated device: a tear keeps whole sectors only. */
export const memorySectorSize = 512;

interface PendingWrite {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** One file's contents: durable state plus the writes not yet synced. */
class Inode {
  durable: Uint8Array = new Uint8Array(0);
  current: Uint8Array = new Uint8Array(0);
  pending: PendingWrite[] = [];
}

function place(target: Uint8Array, offset: number, bytes: Uint8Array): Uint8Array {
  const end = offset + bytes.length;
  let out: Uint8Array = target;
  if (end > target.length) {
    out = new Uint8Array(end);
    out.set(target);
  }
  out.set(bytes, offset);
  return out;
}

/** Options for {@link MemoryDisk.crash}. */
export interface CrashOptions {
  /** When given, each file keeps a random sector-aligned prefix of its unsynced writes. */
  readonly tear?: Random;
}

class MemoryFile implements DiskFile {
  readonly path: string;
  readonly #disk: MemoryDisk;
  readonly #inode: Inode;
  readonly #generation: number;
  /** Opened `direct` on a disk that pads direct files like the io_uring backend. */
  readonly #padded: boolean;
  #closed = false;

  constructor(disk: MemoryDisk, path: string, inode: Inode, generation: number, padded: boolean) {
    this.#disk = disk;
    this.path = path;
    this.#inode = inode;
    this.#generation = generation;
    this.#padded = padded;
  }

  #check(operation: string): Inode {
    if (this.#closed) throw new DiskError(operation, this.path, "EBADF", "file is closed");
    if (this.#generation !== this.#disk.generation) throw new DiskError(operation, this.path, "EBADF", "disk crashed");
    return this.#inode;
  }

  async size(): Promise<number> {
    await Promise.resolve();
    return this.#check("fstat").current.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    assertCount(offset, "read offset");
    assertCount(length, "read length");
    await Promise.resolve();
    const inode = this.#check("read");
    return inode.current.slice(Math.min(offset, inode.current.length), Math.min(offset + length, inode.current.length));
  }

  async readInto(offset: number, target: Uint8Array): Promise<number> {
    assertCount(offset, "read offset");
    await Promise.resolve();
    const inode = this.#check("read");
    const bytes = inode.current.subarray(Math.min(offset, inode.current.length), Math.min(offset + target.length, inode.current.length));
    target.set(bytes);
    return bytes.length;
  }

  async write(offset: number, buffers: readonly Uint8Array[], options: WriteOptions): Promise<void> {
    assertCount(offset, "write offset");
    await Promise.resolve();
    const inode = this.#check("write");
    this.#disk.writeCount++;
    const bytes = concatBytes(buffers);
    const target = offset + this.#disk.takeMisdirection(this.path);
    inode.current = place(inode.current, target, bytes);
    inode.pending.push({ offset: target, bytes });
    if (this.#padded && options.sync) {
      // As an O_DIRECT write of whole blocks: the file grows to the end of the last block.
      const length = inode.current.length;
      const alignedEnd = Math.ceil((target + bytes.length) / directBlockBytes) * directBlockBytes;
      if (alignedEnd > length) {
        const zeros = new Uint8Array(alignedEnd - length);
        inode.current = place(inode.current, length, zeros);
        inode.pending.push({ offset: length, bytes: zeros });
      }
    }
    if (options.sync) await this.sync();
  }

  async sync(): Promise<void> {
    await Promise.resolve();
    const inode = this.#check("fdatasync");
    this.#disk.syncCount++;
    if (this.#disk.takeSyncFailure(this.path)) {
      // Linux may drop the dirty pages after a failed fdatasync: model the worst case.
      inode.current = inode.durable.slice();
      inode.pending = [];
      throw new DiskError("fdatasync", this.path, "EIO", "injected");
    }
    inode.durable = inode.current.slice();
    inode.pending = [];
  }

  async truncate(size: number): Promise<void> {
    assertCount(size, "truncate size");
    await Promise.resolve();
    const inode = this.#check("ftruncate");
    const out = new Uint8Array(size);
    out.set(inode.current.subarray(0, Math.min(size, inode.current.length)));
    inode.current = out;
    inode.durable = out.slice();
    inode.pending = [];
  }

  async close(): Promise<void> {
    await Promise.resolve();
    this.#check("close");
    this.#closed = true;
  }
}

/**
 * In-memory Disk with faults. All fault switches are off until a test turns them on.
 * @example
 * const disk = new MemoryDisk();
 * const file = await disk.open("/d/x", { create: true });
 * await file.write(0, [new Uint8Array(10)], { sync: false });
 * disk.crash(); // the unsynced write is gone
 */
export class MemoryDisk implements Disk {
  readonly name = "memory";
  /** Bumped by every crash: handles opened before a crash fail. */
  generation = 0;
  /** Number of write calls, for tests that count coalescing. */
  writeCount = 0;
  /** Number of sync calls (explicit or through `write(…, {sync: true})`). */
  syncCount = 0;
  readonly #files = new Map<string, Inode>();
  /** Directory entries as of the last syncDirectory: what a crash falls back to. */
  readonly #durableEntries = new Map<string, Inode>();
  readonly #directories = new Set<string>(["/", "."]);
  readonly #syncFailures: (string | null)[] = [];
  readonly #misdirections = new Map<string, number>();
  /**
   * When true, files opened `direct` grow to a whole {@link directBlockBytes} block with
   * zeros on every synced write, as on the io_uring backend: tests of the journal's
   * recovery run on that layout without a ring.
   */
  padDirectFiles = false;

  async open(path: string, options: DiskOpenOptions): Promise<DiskFile> {
    await Promise.resolve();
    let inode = this.#files.get(path);
    if (inode === undefined) {
      if (!options.create) throw new DiskError("open", path, "ENOENT");
      if (!this.#directories.has(dirname(path))) throw new DiskError("open", path, "ENOENT", "no such directory");
      inode = new Inode();
      this.#files.set(path, inode);
    }
    return new MemoryFile(this, path, inode, this.generation, this.padDirectFiles && options.direct === true);
  }

  async exists(path: string): Promise<boolean> {
    await Promise.resolve();
    return this.#files.has(path) || this.#directories.has(path);
  }

  async list(directory: string): Promise<string[]> {
    await Promise.resolve();
    if (!this.#directories.has(directory)) throw new DiskError("readdir", directory, "ENOENT");
    const names: string[] = [];
    for (const path of [...this.#files.keys(), ...this.#directories]) {
      if (path !== directory && dirname(path) === directory) names.push(path.slice(directory.length + 1));
    }
    return names.sort();
  }

  async mkdir(directory: string): Promise<void> {
    await Promise.resolve();
    for (let path = directory; !this.#directories.has(path); path = dirname(path)) this.#directories.add(path);
  }

  async remove(path: string): Promise<void> {
    await Promise.resolve();
    if (!this.#files.delete(path)) throw new DiskError("unlink", path, "ENOENT");
  }

  async syncDirectory(directory: string): Promise<void> {
    await Promise.resolve();
    for (const path of [...this.#durableEntries.keys()]) {
      if (dirname(path) === directory && !this.#files.has(path)) this.#durableEntries.delete(path);
    }
    for (const [path, inode] of this.#files) {
      if (dirname(path) === directory) this.#durableEntries.set(path, inode);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Simulates power loss: unsynced writes are lost (or torn, with `options.tear`), files
   * created or removed since their directory's last sync revert, and open handles fail.
   */
  crash(options: CrashOptions = {}): void {
    this.generation++;
    this.#files.clear();
    for (const [path, inode] of this.#durableEntries) {
      let current = inode.durable;
      if (options.tear !== undefined) current = torn(inode, options.tear);
      inode.durable = current.slice();
      inode.current = current.slice();
      inode.pending = [];
      this.#files.set(path, inode);
    }
    this.#syncFailures.length = 0;
    this.#misdirections.clear();
  }

  /** Flips one bit of a file, in its durable and current bytes: silent corruption. */
  flipBit(path: string, offset: number, bit = 0): void {
    const inode = this.#files.get(path);
    assert(inode !== undefined, `flipBit: no file ${path}`);
    assert(offset < inode.current.length, `flipBit: offset ${offset} past the end of ${path}`);
    inode.current[offset]! ^= 1 << bit;
    if (offset < inode.durable.length) inode.durable[offset]! ^= 1 << bit;
  }

  /** Makes the next sync (of `path`, or of any file) fail with EIO, losing its writes. */
  failNextSync(path?: string): void {
    this.#syncFailures.push(path ?? null);
  }

  /** Makes the next write to `path` land `deltaBytes` away from where it was aimed. */
  misdirectNextWrite(path: string, deltaBytes: number): void {
    this.#misdirections.set(path, deltaBytes);
  }

  /** The bytes a reader of `path` sees now (a copy), for tests. */
  bytes(path: string): Uint8Array {
    const inode = this.#files.get(path);
    assert(inode !== undefined, `bytes: no file ${path}`);
    return inode.current.slice();
  }

  /** Internal: consumes a pending sync failure for `path`. */
  takeSyncFailure(path: string): boolean {
    const at = this.#syncFailures.findIndex((p) => p === null || p === path);
    if (at < 0) return false;
    this.#syncFailures.splice(at, 1);
    return true;
  }

  /** Internal: consumes a pending misdirection for `path`. */
  takeMisdirection(path: string): number {
    const delta = this.#misdirections.get(path);
    if (delta === undefined) return 0;
    this.#misdirections.delete(path);
    return delta;
  }
}

/** Durable bytes plus a random prefix of the unsynced writes, cut at a sector boundary. */
function torn(inode: Inode, random: Random): Uint8Array {
  let total = 0;
  for (const write of inode.pending) total += write.bytes.length;
  let keep = Math.floor(random() * (total + 1));
  let out: Uint8Array = inode.durable.slice();
  for (const write of inode.pending) {
    if (keep >= write.bytes.length) {
      out = place(out, write.offset, write.bytes);
      keep -= write.bytes.length;
      continue;
    }
    const end = write.offset + keep;
    const sectorEnd = end - (end % memorySectorSize);
    if (sectorEnd > write.offset) out = place(out, write.offset, write.bytes.subarray(0, sectorEnd - write.offset));
    break;
  }
  return out;
}
