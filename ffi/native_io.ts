/**
 * The native-I/O interface: libc file calls, aligned native memory and an io_uring ring
 * (through liburing-shim), the same on Node (koffi), Bun (bun:ffi) and Deno (Deno.dlopen).
 * Types only; ffi/mod.ts picks the backend for the running runtime.
 *
 * Conventions every backend keeps:
 * - sizes, offsets and file positions are safe-integer `number`s, never BigInt;
 * - a failed call throws {@link IoError} (ffi/errors.ts) carrying the errno name;
 * - memory the kernel may still hold after a call returns (io_uring in flight, O_DIRECT)
 *   is a {@link NativeBuffer}: allocated by libc, aligned, never moved by the JS engine.
 * @module
 */

/** Which FFI serves a {@link NativeIo}. */
export type NativeIoBackend = "koffi" | "bun:ffi" | "Deno.dlopen";

/** open(2) flags for this platform (Linux; O_DIRECT differs between x86_64 and aarch64). */
export interface OpenFlags {
  readonly O_RDONLY: number;
  readonly O_RDWR: number;
  readonly O_CREAT: number;
  readonly O_TRUNC: number;
  readonly O_EXCL: number;
  readonly O_DSYNC: number;
  readonly O_DIRECT: number;
  readonly O_CLOEXEC: number;
}

/**
 * Native memory from aligned_alloc, mapped into JS. `bytes` (and any subarray of it) may
 * be handed to the kernel and kept by it until an io_uring completion arrives.
 */
export interface NativeBuffer {
  /** The memory as bytes; throws once the buffer is freed. */
  readonly bytes: Uint8Array;
  /** Size in bytes (a multiple of `alignment`). */
  readonly size: number;
  /** Alignment of the first byte, a power of two. */
  readonly alignment: number;
  /** True once {@link NativeIo.free} released it. */
  readonly freed: boolean;
}

/** One completion copied out of the ring. */
export interface Completion {
  /** The tag given when the entry was queued. */
  readonly tag: number;
  /** Bytes transferred, 0, or -errno. */
  readonly result: number;
}

/**
 * An io_uring instance with an eventfd that the kernel signals on each completion.
 * Entries are queued with `prep…`, handed to the kernel together by {@link submit}, and
 * their completions are collected with {@link reap} after {@link waitCompletions}.
 * Not for concurrent use by two owners: one ring belongs to one scheduler.
 */
export interface Ring {
  /** Submission slots (a power of two); the completion queue holds twice as many. */
  readonly entries: number;
  /** Submission slots free before the next {@link submit}. */
  sqSpace(): number;
  /**
   * Queues a write of `bytes` at file position `position`. `bytes` must lie in a
   * NativeBuffer and stay untouched until the entry's completion is reaped. With `link`
   * the next queued entry runs only if this one completes in full.
   */
  prepWrite(fd: number, bytes: Uint8Array, position: number, tag: number, link: boolean): void;
  /** Queues a read into `bytes` (in a NativeBuffer) from file position `position`. */
  prepRead(fd: number, bytes: Uint8Array, position: number, tag: number, link: boolean): void;
  /** Queues an fdatasync (`dataOnly`) or fsync of `fd`. */
  prepFsync(fd: number, dataOnly: boolean, tag: number, link: boolean): void;
  /** Hands all queued entries to the kernel in one system call; returns how many. */
  submit(): number;
  /** Completions ready now (never blocks), at most `countMax`. */
  reap(countMax: number): Completion[];
  /**
   * Resolves once at least one completion arrived since the previous call resolved,
   * without blocking the event loop. Call it only while entries are in flight, and only
   * after {@link reap} came back empty: completions reaped late do not signal again.
   */
  waitCompletions(): Promise<void>;
  /**
   * Blocks the calling thread (the event loop) until a completion is ready or `micros`
   * pass: true when one is ready, false when the time ran out. Null when the kernel has no
   * timed wait (IORING_FEAT_EXT_ARG, Linux 5.11): then never call it again.
   */
  waitMicros(micros: number): boolean | null;
  /** Releases the ring; every submitted entry must have completed. */
  close(): void;
}

/** Why no ring can be had, for the one-line notice. */
export interface RingUnavailable {
  readonly ok: false;
  /** errno name when the kernel refused ("EPERM", "ENOSYS"), else "". */
  readonly code: string;
  /** One sentence naming the cause and, where there is one, the remedy. */
  readonly reason: string;
}

/** The outcome of {@link NativeIo.openRing}. */
export type RingOpen = { readonly ok: true; readonly ring: Ring } | RingUnavailable;

/** libc and io_uring calls through the running runtime's FFI. All calls are synchronous unless they return a Promise. */
export interface NativeIo {
  /** Which FFI is in use. */
  readonly backend: NativeIoBackend;
  /** open(2) flags. */
  readonly flags: OpenFlags;
  /** Opens `path`; returns the file descriptor. */
  open(path: string, flags: number, mode: number): number;
  /** Closes `fd`. */
  close(fd: number): void;
  /** pwrite(2) of all of `bytes` (a short write is returned, not retried). */
  pwrite(fd: number, bytes: Uint8Array, position: number): number;
  /** pread(2) into `bytes`; returns the count read (0 at end of file). */
  pread(fd: number, bytes: Uint8Array, position: number): number;
  /**
   * pread(2) into `bytes` on a thread of the runtime's pool, so the copy out of the page
   * cache does not hold the event loop; resolves to the count read (0 at end of file).
   * `bytes` may be ordinary memory but must be large enough that the engine never moves it
   * (ArrayBuffers of several KiB and more are off the JS heap) and untouched until it
   * settles. For bulk reads (recovery's chunks).
   */
  preadOffThread(fd: number, bytes: Uint8Array, position: number): Promise<number>;
  /** fdatasync(2). */
  fdatasync(fd: number): void;
  /** fsync(2). */
  fsync(fd: number): void;
  /** The file's size in bytes (lseek(2) to the end; reads and writes never use the file offset). */
  fileSize(fd: number): number;
  /** ftruncate(2). */
  ftruncate(fd: number, size: number): void;
  /** Allocates `size` bytes (rounded up to `alignment`) of native memory aligned to `alignment`. */
  allocate(size: number, alignment: number): NativeBuffer;
  /** Frees a buffer; the kernel must no longer hold any part of it. */
  free(buffer: NativeBuffer): void;
  /**
   * Opens an io_uring of `entries` slots (a power of two) through the shim at
   * `options.shimPath` (default: ffi/platform.ts shimPath()), or says why it cannot.
   */
  openRing(entries: number, options?: { readonly shimPath?: string }): RingOpen;
}
