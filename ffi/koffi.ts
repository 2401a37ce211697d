/**
 * The native-I/O layer on koffi (Node; koffi also loads under Bun and Deno). Pointers are
 * BigInt, 64-bit returns are numbers, errno comes from koffi.errno(), and open(2) is bound
 * with its real variadic signature.
 * @module
 */
import koffi from "koffi";
import { IoError, NativeIoUnavailable } from "./errors.ts";
import type { Completion, NativeBuffer, NativeIo, Ring, RingOpen } from "./native_io.ts";
import { openFlags, libcName, seekEnd, ringRefused, shimMissing, shimPath, shimVersion } from "./platform.ts";
import {
  alignedSize, assert, assertRingEntries, assertTag, check, checkShim, decodeCompletions,
  NativeBufferState, NativeMemoryRegistry, preadOnPool, readEventfd, ringWaitOutcome,
} from "./shared.ts";

type Fn = (...args: any[]) => any;

class KoffiBuffer extends NativeBufferState implements NativeBuffer {
  readonly address: bigint;
  constructor(bytes: Uint8Array, alignment: number, address: bigint) {
    super(bytes, alignment);
    this.address = address;
  }
}

interface Shim {
  version: Fn; size: Fn; init: Fn; eventfd: Fn; sqSpace: Fn; exit: Fn;
  prepWrite: Fn; prepRead: Fn; prepFsync: Fn; submit: Fn; reap: Fn; waitMicros: Fn;
}

function bindShim(path: string): Shim | string {
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(path);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  try {
    return bindSymbols(lib);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

function bindSymbols(lib: ReturnType<typeof koffi.load>): Shim {
  return {
    version: lib.func("int chronon_shim_version(void)"),
    size: lib.func("unsigned int chronon_ring_size(void)"),
    init: lib.func("int chronon_ring_init(void *ring, unsigned int entries)"),
    eventfd: lib.func("int chronon_ring_eventfd(void *ring)"),
    sqSpace: lib.func("unsigned int chronon_ring_sq_space(void *ring)"),
    exit: lib.func("void chronon_ring_exit(void *ring)"),
    prepWrite: lib.func("int chronon_ring_prep_write(void *ring, int fd, void *buf, unsigned int len, int64_t off, unsigned int tag, int link)"),
    prepRead: lib.func("int chronon_ring_prep_read(void *ring, int fd, void *buf, unsigned int len, int64_t off, unsigned int tag, int link)"),
    prepFsync: lib.func("int chronon_ring_prep_fsync(void *ring, int fd, int datasync, unsigned int tag, int link)"),
    submit: lib.func("int chronon_ring_submit(void *ring)"),
    reap: lib.func("int chronon_ring_reap(void *ring, _Inout_ int32_t *out, unsigned int max)"),
    waitMicros: lib.func("int chronon_ring_wait_micros(void *ring, unsigned int micros)"),
  };
}

/** Creates the koffi backend; throws NativeIoUnavailable when libc cannot be bound. */
export function createKoffiNativeIo(): NativeIo {
  let libc: ReturnType<typeof koffi.load>;
  try {
    libc = koffi.load(libcName);
  } catch (error) {
    throw new NativeIoUnavailable(`koffi cannot load ${libcName}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const c = {
    open: libc.func("int open(const char *path, int flags, ...)"),
    close: libc.func("int close(int fd)"),
    pwrite: libc.func("int64_t pwrite(int fd, void *buf, size_t count, int64_t offset)"),
    pread: libc.func("int64_t pread(int fd, void *buf, size_t count, int64_t offset)"),
    fdatasync: libc.func("int fdatasync(int fd)"),
    fsync: libc.func("int fsync(int fd)"),
    ftruncate: libc.func("int ftruncate(int fd, int64_t length)"),
    lseek: libc.func("int64_t lseek(int fd, int64_t offset, int whence)"),
    alignedAlloc: libc.func("void *aligned_alloc(size_t alignment, size_t size)"),
    free: libc.func("void free(void *ptr)"),
  };
  const errno = () => koffi.errno();
  const memory = new NativeMemoryRegistry<bigint>();
  const shims = new Map<string, Shim | string>();

  /** Address of `bytes` when native, else the typed array itself (koffi passes its data pointer). */
  const pointerOf = (bytes: Uint8Array): bigint | Uint8Array => {
    const base = memory.baseOf(bytes);
    return base === undefined ? bytes : base + BigInt(bytes.byteOffset);
  };
  const nativePointer = (bytes: Uint8Array): bigint => {
    const base = memory.baseOf(bytes);
    assert(base !== undefined, "a buffer the kernel keeps must be a NativeBuffer (or a subarray of one)");
    return base + BigInt(bytes.byteOffset);
  };

  const io: NativeIo = {
    backend: "koffi",
    flags: openFlags,
    open: (path, flags, mode) => check("open", c.open(path, flags, "uint32_t", mode), errno),
    close: (fd) => void check("close", c.close(fd), errno),
    pwrite: (fd, bytes, position) => check("pwrite", c.pwrite(fd, pointerOf(bytes), bytes.length, position), errno),
    pread: (fd, bytes, position) => check("pread", c.pread(fd, pointerOf(bytes), bytes.length, position), errno),
    preadOffThread: preadOnPool,
    fdatasync: (fd) => void check("fdatasync", c.fdatasync(fd), errno),
    fsync: (fd) => void check("fsync", c.fsync(fd), errno),
    fileSize: (fd) => check("lseek", c.lseek(fd, 0, seekEnd), errno),
    ftruncate: (fd, size) => void check("ftruncate", c.ftruncate(fd, size), errno),
    allocate(size, alignment) {
      const total = alignedSize(size, alignment);
      const address = c.alignedAlloc(alignment, total) as bigint | null;
      if (address === null || address === 0n) throw new IoError("aligned_alloc", errno() || 12);
      const bytes = new Uint8Array(koffi.view(address, total));
      memory.add(bytes.buffer, address);
      return new KoffiBuffer(bytes, alignment, address);
    },
    free(buffer) {
      assert(buffer instanceof KoffiBuffer, "free: not a koffi NativeBuffer");
      memory.remove(buffer.release().buffer as ArrayBuffer);
      c.free(buffer.address);
    },
    openRing(entries, options = {}): RingOpen {
      assertRingEntries(entries);
      const path = options.shimPath ?? shimPath();
      const shim = shims.get(path) ?? bindShim(path);
      shims.set(path, shim);
      if (typeof shim === "string") return shimMissing(path, shim);
      const s = shim;
      if (s.version() !== shimVersion) return shimMissing(path, `shim version ${s.version()}, expected ${shimVersion}`);
      const state = io.allocate(s.size() as number, 64) as KoffiBuffer;
      const result = s.init(state.address, entries) as number;
      if (result < 0) {
        io.free(state);
        return ringRefused(-result);
      }
      const eventfd = s.eventfd(state.address) as number;
      const records = new Int32Array(2 * entries * 2);
      const scratch = new Uint8Array(8);
      let closed = false;
      const ring: Ring = {
        entries,
        sqSpace: () => s.sqSpace(state.address) as number,
        prepWrite(fd, bytes, position, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep write", s.prepWrite(state.address, fd, nativePointer(bytes), bytes.length, position, tag, link ? 1 : 0));
        },
        prepRead(fd, bytes, position, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep read", s.prepRead(state.address, fd, nativePointer(bytes), bytes.length, position, tag, link ? 1 : 0));
        },
        prepFsync(fd, dataOnly, tag, link) {
          assertTag(tag);
          checkShim("io_uring prep fsync", s.prepFsync(state.address, fd, dataOnly ? 1 : 0, tag, link ? 1 : 0));
        },
        submit: () => checkShim("io_uring submit", s.submit(state.address)),
        reap(countMax): Completion[] {
          const max = Math.min(countMax, records.length / 2);
          return decodeCompletions(records, s.reap(state.address, records, max) as number);
        },
        waitCompletions: () => readEventfd(eventfd, scratch),
        waitMicros: (micros) => ringWaitOutcome(s.waitMicros(state.address, micros) as number),
        close() {
          assert(!closed, "ring closed twice");
          closed = true;
          s.exit(state.address);
          io.free(state);
        },
      };
      return { ok: true, ring };
    },
  };
  return io;
}
