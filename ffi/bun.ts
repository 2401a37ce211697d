/**
 * The native-I/O layer on bun:ffi. Pointers are numbers, 64-bit returns use `i64_fast`
 * (a number while it is safe), errno is read through `__errno_location`, `open` is bound
 * with a fixed third argument (variadic calls are not supported; passing the mode as a
 * fixed unsigned argument is ABI-compatible on x86_64 and aarch64 Linux). bun:ffi has no
 * asynchronous calls, so completions are awaited by reading the ring's eventfd through
 * node:fs, whose reads run on Bun's thread pool.
 *
 * bun:ffi is imported with a computed specifier: a literal one would be hoisted by
 * bundlers and refused by `deno check`.
 * @module
 */
import { Buffer } from "node:buffer";
import { IoError, NativeIoUnavailable } from "./errors.ts";
import type { Completion, NativeBuffer, NativeIo, Ring, RingOpen } from "./native_io.ts";
import { openFlags, libcName, seekEnd, ringRefused, shimMissing, shimPath, shimVersion } from "./platform.ts";
import {
  alignedSize, assert, assertRingEntries, assertTag, check, checkShim, decodeCompletions,
  NativeBufferState, NativeMemoryRegistry, preadOnPool, readEventfd, ringWaitOutcome,
} from "./shared.ts";

type Fn = (...args: any[]) => any;

/** The slice of bun:ffi this module uses. */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, Fn>; close(): void };
  toArrayBuffer(pointer: number, byteOffset: number, byteLength: number): ArrayBuffer;
  read: { i32(pointer: number, byteOffset?: number): number };
}

class BunBuffer extends NativeBufferState implements NativeBuffer {
  readonly address: number;
  constructor(bytes: Uint8Array, alignment: number, address: number) {
    super(bytes, alignment);
    this.address = address;
  }
}

const libcSymbols = {
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  pwrite: { args: ["i32", "ptr", "u64", "i64"], returns: "i64_fast" },
  pread: { args: ["i32", "ptr", "u64", "i64"], returns: "i64_fast" },
  fdatasync: { args: ["i32"], returns: "i32" },
  fsync: { args: ["i32"], returns: "i32" },
  ftruncate: { args: ["i32", "i64"], returns: "i32" },
  lseek: { args: ["i32", "i64", "i32"], returns: "i64_fast" },
  aligned_alloc: { args: ["u64", "u64"], returns: "ptr" },
  free: { args: ["ptr"], returns: "void" },
  __errno_location: { args: [], returns: "ptr" },
};

const shimSymbols = {
  chronon_shim_version: { args: [], returns: "i32" },
  chronon_ring_size: { args: [], returns: "u32" },
  chronon_ring_init: { args: ["ptr", "u32"], returns: "i32" },
  chronon_ring_eventfd: { args: ["ptr"], returns: "i32" },
  chronon_ring_sq_space: { args: ["ptr"], returns: "u32" },
  chronon_ring_exit: { args: ["ptr"], returns: "void" },
  chronon_ring_prep_write: { args: ["ptr", "i32", "ptr", "u32", "i64", "u32", "i32"], returns: "i32" },
  chronon_ring_prep_read: { args: ["ptr", "i32", "ptr", "u32", "i64", "u32", "i32"], returns: "i32" },
  chronon_ring_prep_fsync: { args: ["ptr", "i32", "i32", "u32", "i32"], returns: "i32" },
  chronon_ring_submit: { args: ["ptr"], returns: "i32" },
  chronon_ring_reap: { args: ["ptr", "ptr", "u32"], returns: "i32" },
  chronon_ring_wait_micros: { args: ["ptr", "u32"], returns: "i32" },
};

/** Creates the bun:ffi backend; throws NativeIoUnavailable when libc cannot be bound. */
export async function createBunNativeIo(): Promise<NativeIo> {
  const ffi = await import("bun:" + "ffi") as BunFfi;
  let c: Record<string, Fn>;
  try {
    c = ffi.dlopen(libcName, libcSymbols).symbols;
  } catch (error) {
    throw new NativeIoUnavailable(`bun:ffi cannot load ${libcName}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const errno = () => ffi.read.i32(c.__errno_location!() as number);
  const memory = new NativeMemoryRegistry<number>();
  const shims = new Map<string, Record<string, Fn> | string>();

  /** Address of native `bytes`; bun:ffi passes a typed array's data pointer, so plain arrays go as they are. */
  const pointerOf = (bytes: Uint8Array): number | Uint8Array => {
    const base = memory.baseOf(bytes);
    return base === undefined ? bytes : base + bytes.byteOffset;
  };
  const nativePointer = (bytes: Uint8Array): number => {
    const base = memory.baseOf(bytes);
    assert(base !== undefined, "a buffer the kernel keeps must be a NativeBuffer (or a subarray of one)");
    return base + bytes.byteOffset;
  };
  const call = c as Record<keyof typeof libcSymbols, Fn>;

  const io: NativeIo = {
    backend: "bun:ffi",
    flags: openFlags,
    open: (path, flags, mode) => check("open", call.open(Buffer.from(`${path}\0`), flags, mode), errno),
    close: (fd) => void check("close", call.close(fd), errno),
    pwrite: (fd, bytes, position) => check("pwrite", call.pwrite(fd, pointerOf(bytes), bytes.length, position), errno),
    pread: (fd, bytes, position) => check("pread", call.pread(fd, pointerOf(bytes), bytes.length, position), errno),
    preadOffThread: preadOnPool,
    fdatasync: (fd) => void check("fdatasync", call.fdatasync(fd), errno),
    fsync: (fd) => void check("fsync", call.fsync(fd), errno),
    fileSize: (fd) => check("lseek", call.lseek(fd, 0, seekEnd), errno),
    ftruncate: (fd, size) => void check("ftruncate", call.ftruncate(fd, size), errno),
    allocate(size, alignment) {
      const total = alignedSize(size, alignment);
      const address = call.aligned_alloc(alignment, total) as number | null;
      if (address === null || address === 0) throw new IoError("aligned_alloc", errno() || 12);
      const bytes = new Uint8Array(ffi.toArrayBuffer(address, 0, total));
      memory.add(bytes.buffer, address);
      return new BunBuffer(bytes, alignment, address);
    },
    free(buffer) {
      assert(buffer instanceof BunBuffer, "free: not a bun:ffi NativeBuffer");
      memory.remove(buffer.release().buffer as ArrayBuffer);
      call.free(buffer.address);
    },
    openRing(entries, options = {}): RingOpen {
      assertRingEntries(entries);
      const path = options.shimPath ?? shimPath();
      let shim = shims.get(path);
      if (shim === undefined) {
        try {
          shim = ffi.dlopen(path, shimSymbols).symbols;
        } catch (error) {
          shim = error instanceof Error ? error.message : String(error);
        }
        shims.set(path, shim);
      }
      if (typeof shim === "string") return shimMissing(path, shim);
      const s = shim as Record<keyof typeof shimSymbols, Fn>;
      const version = s.chronon_shim_version() as number;
      if (version !== shimVersion) return shimMissing(path, `shim version ${version}, expected ${shimVersion}`);
      const state = io.allocate(s.chronon_ring_size() as number, 64) as BunBuffer;
      const result = s.chronon_ring_init(state.address, entries) as number;
      if (result < 0) {
        io.free(state);
        return ringRefused(-result);
      }
      const eventfd = s.chronon_ring_eventfd(state.address) as number;
      const records = new Int32Array(2 * entries * 2);
      const scratch = new Uint8Array(8);
      let closed = false;
      const ring: Ring = {
        entries,
        sqSpace: () => s.chronon_ring_sq_space(state.address) as number,
        prepWrite(fd, bytes, position, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep write", s.chronon_ring_prep_write(state.address, fd, nativePointer(bytes), bytes.length, position, tag, link ? 1 : 0));
        },
        prepRead(fd, bytes, position, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep read", s.chronon_ring_prep_read(state.address, fd, nativePointer(bytes), bytes.length, position, tag, link ? 1 : 0));
        },
        prepFsync(fd, dataOnly, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep fsync", s.chronon_ring_prep_fsync(state.address, fd, dataOnly ? 1 : 0, tag, link ? 1 : 0));
        },
        submit: () => checkShim("io_uring submit", s.chronon_ring_submit(state.address)),
        reap(countMax): Completion[] {
          const max = Math.min(countMax, records.length / 2);
          return decodeCompletions(records, s.chronon_ring_reap(state.address, records, max) as number);
        },
        waitCompletions: () => readEventfd(eventfd, scratch),
        waitMicros: (micros) => ringWaitOutcome(s.chronon_ring_wait_micros(state.address, micros) as number),
        close() {
          assert(!closed, "ring closed twice");
          closed = true;
          s.chronon_ring_exit(state.address);
          io.free(state);
        },
      };
      return { ok: true, ring };
    },
  };
  return io;
}
