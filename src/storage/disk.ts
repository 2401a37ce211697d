/**
 * The `Disk` interface: the only way the journal, the superblock and checkpoints reach
 * storage. Backends: portable (node:fs writev + fdatasync), io_uring through the shim,
 * and an in-memory disk with injected faults for tests. One conformance suite runs
 * against all of them.
 *
 * Paths are absolute or relative to the process's working directory; a backend never
 * invents paths of its own.
 * @module
 */

/** Options for {@link DiskFile.write}. */
export interface WriteOptions {
  /**
   * When true the promise resolves only once every byte written is durable (fdatasync,
   * or O_DSYNC / O_DIRECT writes, or an io_uring write linked to an fdatasync).
   */
  readonly sync: boolean;
}

/**
 * The block size of direct files (see {@link DiskOpenOptions.direct}): their synced writes
 * cover whole aligned blocks of this many bytes, and their size may exceed the last byte
 * written by up to `directBlockBytes - 1` zero bytes. 4 KiB: the logical block size of
 * every current device and a multiple of the older 512.
 */
export const directBlockBytes = 4096;

/** Options for {@link Disk.open}. */
export interface DiskOpenOptions {
  /** Make the file when it is missing. */
  readonly create: boolean;
  /**
   * Append-heavy file whose synced writes may bypass the page cache (O_DIRECT|O_DSYNC
   * through the ring: the device write and the barrier in one request, measured faster
   * than a page-cache write plus an fdatasync on an io-wq worker). Such a write covers
   * whole {@link directBlockBytes} blocks: the bytes around the written range are read back
   * (or known) and written again unchanged, and the file may grow to the end of the last
   * block with zero bytes. A reader of the file must therefore accept up to
   * `directBlockBytes - 1` zero bytes after its data (the journal's recovery does). A
   * backend without direct I/O, or a file system that refuses O_DIRECT, ignores it.
   */
  readonly direct?: boolean;
}

/** An open file on a {@link Disk}. Not safe for overlapping writes to the same range. */
export interface DiskFile {
  /** The path it was opened with. */
  readonly path: string;
  /** Current size in bytes. */
  size(): Promise<number>;
  /**
   * Reads `length` bytes at `offset`. Resolves to fewer bytes only at end of file.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Reads up to `target.length` bytes at `offset` into `target` and resolves to the count
   * (short only at end of file). For scans that reuse their buffers (recovery reads a
   * whole journal: fresh 8 MiB buffers per chunk cost more in page faults than the copy).
   * Optional: a backend without it is read with {@link read}. `target` must not be
   * touched until the promise settles.
   */
  readInto?(offset: number, target: Uint8Array): Promise<number>;
  /**
   * Writes `buffers` back to back starting at `offset`, in one call where the backend can
   * (writev, one io_uring submission). The caller may reuse the buffers once it resolves.
   */
  write(offset: number, buffers: readonly Uint8Array[], options: WriteOptions): Promise<void>;
  /** Makes every completed write durable (fdatasync). */
  sync(): Promise<void>;
  /** Sets the file's size, then makes the new size durable. */
  truncate(size: number): Promise<void>;
  /** Closes the file; later calls fail. */
  close(): Promise<void>;
}

/** A storage backend. */
export interface Disk {
  /** Backend name for logs and `chronon inspect`: "portable", "uring", "memory", … */
  readonly name: string;
  /** Opens a file for reading and writing; with `create`, makes it when missing. */
  open(path: string, options: DiskOpenOptions): Promise<DiskFile>;
  /** True when a file or directory exists at `path`. */
  exists(path: string): Promise<boolean>;
  /** File names (not paths) in a directory, sorted. */
  list(directory: string): Promise<string[]>;
  /** Creates a directory and its parents. */
  mkdir(directory: string): Promise<void>;
  /** Removes a file (whole segment files only: never called on a file a reader holds). */
  remove(path: string): Promise<void>;
  /** Makes a directory's entries (created and removed files) durable. */
  syncDirectory(directory: string): Promise<void>;
  /** Releases the backend's resources (rings, staging buffers). */
  close(): Promise<void>;
}

/** An I/O failure from a Disk backend, with the errno name when the OS gave one. */
export class DiskError extends Error {
  override readonly name = "DiskError";
  /** errno name such as "EIO", "ENOSPC", "ENOENT", or "" when not from the OS. */
  readonly code: string;
  /** The path involved. */
  readonly path: string;

  /** Creates an error for `operation` on `path`. */
  constructor(operation: string, path: string, code: string, detail = "") {
    super(`${operation} ${path}: ${code}${detail === "" ? "" : ` (${detail})`}`);
    this.code = code;
    this.path = path;
  }
}
