/**
 * The native-I/O layer on Deno.dlopen. Pointers are PointerObjects (null for NULL), 64-bit
 * returns may be BigInt, errno is read through `__errno_location`, `open` is bound with a
 * fixed third argument (ABI-compatible with the variadic one on x86_64 and aarch64 Linux).
 * Completions are awaited with a `nonblocking: true` read(2) of the ring's eventfd, which
 * Deno runs on a blocking-task thread and returns as a Promise.
 *
 * Needs --allow-ffi (and --allow-read for the shim path); `deno test -A` grants both.
 * There are no Deno types under tsc, so the slice of Deno used here is typed locally.
 * @module
 */
import { Buffer } from "node:buffer";
import { IoError, NativeIoUnavailable } from "./errors.ts";
import type { Completion, NativeBuffer, NativeIo, Ring, RingOpen } from "./native_io.ts";
import { openFlags, libcName, seekEnd, ringRefused, shimMissing, shimPath, shimVersion } from "./platform.ts";
import {
  alignedSize, assert, assertRingEntries, assertTag, check, checkShim, decodeCompletions,
  NativeBufferState, NativeMemoryRegistry, ringWaitOutcome,
} from "./shared.ts";

type Fn = (...args: any[]) => any;
/** Deno's opaque pointer (a PointerObject), or null for NULL. */
type Pointer = object | null;

interface SymbolDefinition {
  name?: string;
  parameters: string[];
  result: string;
  nonblocking?: boolean;
}

/** The slice of the Deno namespace this module uses. */
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, SymbolDefinition>): { symbols: Record<string, Fn>; close(): void };
  UnsafePointer: { offset(pointer: Pointer, offset: number): Pointer; value(pointer: Pointer): bigint | number };
  UnsafePointerView: {
    new (pointer: Pointer): { getInt32(offset?: number): number };
    getArrayBuffer(pointer: Pointer, byteLength: number, offset?: number): ArrayBuffer;
  };
}

class DenoBuffer extends NativeBufferState implements NativeBuffer {
  readonly pointer: Pointer;
  constructor(bytes: Uint8Array, alignment: number, pointer: Pointer) {
    super(bytes, alignment);
    this.pointer = pointer;
  }
}

const libcSymbols = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  fdatasync: { parameters: ["i32"], result: "i32" },
  fsync: { parameters: ["i32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  aligned_alloc: { parameters: ["usize", "usize"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
  __errno_location: { parameters: [], result: "pointer" },
  // Runs on a Deno blocking thread and returns a Promise: the eventfd wait.
  read: { parameters: ["i32", "pointer", "usize"], result: "isize", nonblocking: true },
  // The same pread(2), run by Deno on a blocking-task thread (Deno's node:fs knows only its
  // own descriptors, so the Node/Bun route through fs.read is not open here).
  pread_nonblocking: { name: "pread", parameters: ["i32", "buffer", "usize", "i64"], result: "isize", nonblocking: true },
} satisfies Record<string, SymbolDefinition>;

const shimSymbols = {
  chronon_shim_version: { parameters: [], result: "i32" },
  chronon_ring_size: { parameters: [], result: "u32" },
  chronon_ring_init: { parameters: ["pointer", "u32"], result: "i32" },
  chronon_ring_eventfd: { parameters: ["pointer"], result: "i32" },
  chronon_ring_sq_space: { parameters: ["pointer"], result: "u32" },
  chronon_ring_exit: { parameters: ["pointer"], result: "void" },
  chronon_ring_prep_write: { parameters: ["pointer", "i32", "pointer", "u32", "i64", "u32", "i32"], result: "i32" },
  chronon_ring_prep_read: { parameters: ["pointer", "i32", "pointer", "u32", "i64", "u32", "i32"], result: "i32" },
  chronon_ring_prep_fsync: { parameters: ["pointer", "i32", "i32", "u32", "i32"], result: "i32" },
  chronon_ring_submit: { parameters: ["pointer"], result: "i32" },
  chronon_ring_reap: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  chronon_ring_wait_micros: { parameters: ["pointer", "u32"], result: "i32" },
} satisfies Record<string, SymbolDefinition>;

/** Creates the Deno.dlopen backend; throws NativeIoUnavailable without FFI permission or libc. */
export function createDenoNativeIo(): NativeIo {
  const deno = (globalThis as any).Deno as DenoFfi;
  let c: Record<keyof typeof libcSymbols, Fn>;
  try {
    c = deno.dlopen(libcName, libcSymbols).symbols as Record<keyof typeof libcSymbols, Fn>;
  } catch (error) {
    throw new NativeIoUnavailable(`Deno.dlopen cannot load ${libcName} (run with --allow-ffi): ${error instanceof Error ? error.message : String(error)}`);
  }
  const errno = () => new deno.UnsafePointerView(c.__errno_location() as Pointer).getInt32();
  const memory = new NativeMemoryRegistry<Pointer>();
  const shims = new Map<string, Record<keyof typeof shimSymbols, Fn> | string>();

  const nativePointer = (bytes: Uint8Array): Pointer => {
    const base = memory.baseOf(bytes);
    assert(base !== undefined, "a buffer the kernel keeps must be a NativeBuffer (or a subarray of one)");
    return deno.UnsafePointer.offset(base, bytes.byteOffset);
  };

  const io: NativeIo = {
    backend: "Deno.dlopen",
    flags: openFlags,
    open: (path, flags, mode) => check("open", c.open(Buffer.from(`${path}\0`), flags, mode), errno),
    close: (fd) => void check("close", c.close(fd), errno),
    // A "buffer" argument passes the view's own address, so native views keep their alignment.
    pwrite: (fd, bytes, position) => check("pwrite", Number(c.pwrite(fd, bytes, bytes.length, position)), errno),
    pread: (fd, bytes, position) => check("pread", Number(c.pread(fd, bytes, bytes.length, position)), errno),
    async preadOffThread(fd, bytes, position) {
      // errno of a nonblocking call is the worker thread's: a failure is reported as EIO.
      const count = Number(await c.pread_nonblocking(fd, bytes, bytes.length, position));
      if (count < 0) throw new IoError("pread", 5, "pread on a blocking-task thread failed");
      return count;
    },
    fdatasync: (fd) => void check("fdatasync", c.fdatasync(fd), errno),
    fsync: (fd) => void check("fsync", c.fsync(fd), errno),
    fileSize: (fd) => check("lseek", Number(c.lseek(fd, 0, seekEnd)), errno),
    ftruncate: (fd, size) => void check("ftruncate", c.ftruncate(fd, size), errno),
    allocate(size, alignment) {
      const total = alignedSize(size, alignment);
      const pointer = c.aligned_alloc(alignment, total) as Pointer;
      if (pointer === null) throw new IoError("aligned_alloc", errno() || 12);
      const bytes = new Uint8Array(deno.UnsafePointerView.getArrayBuffer(pointer, total));
      memory.add(bytes.buffer, pointer);
      return new DenoBuffer(bytes, alignment, pointer);
    },
    free(buffer) {
      assert(buffer instanceof DenoBuffer, "free: not a Deno.dlopen NativeBuffer");
      memory.remove(buffer.release().buffer as ArrayBuffer);
      c.free(buffer.pointer);
    },
    openRing(entries, options = {}): RingOpen {
      assertRingEntries(entries);
      const path = options.shimPath ?? shimPath();
      let shim = shims.get(path);
      if (shim === undefined) {
        try {
          shim = deno.dlopen(path, shimSymbols).symbols as Record<keyof typeof shimSymbols, Fn>;
        } catch (error) {
          shim = error instanceof Error ? error.message : String(error);
        }
        shims.set(path, shim);
      }
      if (typeof shim === "string") return shimMissing(path, shim);
      const s = shim;
      const version = s.chronon_shim_version() as number;
      if (version !== shimVersion) return shimMissing(path, `shim version ${version}, expected ${shimVersion}`);
      const state = io.allocate(s.chronon_ring_size() as number, 64) as DenoBuffer;
      const result = s.chronon_ring_init(state.pointer, entries) as number;
      if (result < 0) {
        io.free(state);
        return ringRefused(-result);
      }
      const eventfd = s.chronon_ring_eventfd(state.pointer) as number;
      const records = new Int32Array(2 * entries * 2);
      // The nonblocking read writes after this call returns: it needs memory V8 cannot move.
      const scratch = io.allocate(8, 8) as DenoBuffer;
      let closed = false;
      const ring: Ring = {
        entries,
        sqSpace: () => s.chronon_ring_sq_space(state.pointer) as number,
        prepWrite(fd, bytes, position, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep write", s.chronon_ring_prep_write(state.pointer, fd, nativePointer(bytes), bytes.length, position, tag, link ? 1 : 0));
        },
        prepRead(fd, bytes, position, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep read", s.chronon_ring_prep_read(state.pointer, fd, nativePointer(bytes), bytes.length, position, tag, link ? 1 : 0));
        },
        prepFsync(fd, dataOnly, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep fsync", s.chronon_ring_prep_fsync(state.pointer, fd, dataOnly ? 1 : 0, tag, link ? 1 : 0));
        },
        submit: () => checkShim("io_uring submit", s.chronon_ring_submit(state.pointer)),
        reap(countMax): Completion[] {
          const max = Math.min(countMax, records.length / 2);
          return decodeCompletions(records, s.chronon_ring_reap(state.pointer, records, max) as number);
        },
        waitMicros: (micros) => ringWaitOutcome(s.chronon_ring_wait_micros(state.pointer, micros) as number),
        async waitCompletions() {
          // errno of a nonblocking call is the worker thread's, so only the count is checked.
          const count = Number(await c.read(eventfd, scratch.pointer, 8));
          if (count !== 8) throw new IoError("read eventfd", 5, `returned ${count}`);
        },
        close() {
          assert(!closed, "ring closed twice");
          closed = true;
          s.chronon_ring_exit(state.pointer);
          io.free(state);
          io.free(scratch);
        },
      };
      return { ok: true, ring };
    },
  };
  return io;
}
