/**
 * Pieces the three FFI backends share: argument checks, the registry of native memory,
 * the eventfd wait through node:fs, and decoding reaped completions.
 * @module
 */
import fs from "node:fs";
import { IoError } from "./errors.ts";
import type { Completion } from "./native_io.ts";

/** Thrown when the layer is misused (a bug in the caller, never an I/O failure). */
export class NativeIoMisuse extends Error {
  override readonly name = "NativeIoMisuse";
}

/** ffi/ imports nothing from src/, so it keeps its own assertion. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new NativeIoMisuse(message);
}

function assertCount(n: number, what: string): void {
  assert(Number.isSafeInteger(n) && n >= 0, `${what} must be a non-negative safe integer, got ${n}`);
}

/** Largest ring the layer opens (submission slots). */
export const ringEntriesMax = 4096;

/** Largest alignment accepted for native buffers (one huge-page-free 64 KiB). */
export const alignmentMax = 65536;

/** Checks allocate()'s arguments and returns the size rounded up to the alignment. */
export function alignedSize(size: number, alignment: number): number {
  assertCount(size, "native buffer size");
  assert(size > 0, "native buffer size must be positive");
  assert(Number.isSafeInteger(alignment) && alignment >= 8 && alignment <= alignmentMax, `alignment ${alignment} out of range`);
  assert((alignment & (alignment - 1)) === 0, `alignment ${alignment} is not a power of two`);
  return Math.ceil(size / alignment) * alignment;
}

/** Checks a ring size: a power of two between 1 and ringEntriesMax. */
export function assertRingEntries(entries: number): void {
  assert(Number.isSafeInteger(entries) && entries >= 1 && entries <= ringEntriesMax, `ring entries ${entries} out of range`);
  assert((entries & (entries - 1)) === 0, `ring entries ${entries} is not a power of two`);
}

/** Checks a tag for the 32-bit user_data field. */
export function assertTag(tag: number): void {
  assert(Number.isInteger(tag) && tag >= 0 && tag <= 0x7fffffff, `ring tag ${tag} out of range`);
}

/**
 * Maps each native ArrayBuffer to its base address, so a subarray can be turned back
 * into a pointer and so buffers the kernel keeps are proven to be native memory.
 */
export class NativeMemoryRegistry<Address> {
  readonly #bases = new WeakMap<ArrayBuffer, Address>();

  /** Records `buffer` as a view of native memory at `base`. */
  add(buffer: ArrayBuffer, base: Address): void {
    this.#bases.set(buffer, base);
  }

  /** Forgets `buffer` (freed memory must never be handed out again). */
  remove(buffer: ArrayBuffer): void {
    this.#bases.delete(buffer);
  }

  /** The base address of `bytes`' native memory, or undefined for ordinary JS memory. */
  baseOf(bytes: Uint8Array): Address | undefined {
    return this.#bases.get(bytes.buffer as ArrayBuffer);
  }
}

/** Throws IoError when a libc call returned -1. */
export function check(operation: string, result: number, errno: () => number): number {
  if (result === -1) throw new IoError(operation, errno());
  return result;
}

/** Throws IoError when a shim call returned -errno. */
export function checkShim(operation: string, result: number): number {
  if (result < 0) throw new IoError(operation, -result);
  return result;
}

const errnoTime = 62;
const errnoInterrupted = 4;
const errnoNotSupported = 95;

/**
 * The outcome of chronon_ring_wait_micros: true when a completion is ready, false when the
 * time passed (or a signal cut the wait short), null when the kernel has no timed wait
 * (no IORING_FEAT_EXT_ARG); throws on any other failure.
 */
export function ringWaitOutcome(result: number): boolean | null {
  if (result === 0) return true;
  if (result === -errnoTime || result === -errnoInterrupted) return false;
  if (result === -errnoNotSupported) return null;
  throw new IoError("io_uring wait", -result);
}

/**
 * Waits for the ring's eventfd with an asynchronous node:fs read: a thread of the
 * runtime's pool blocks in read(2) until the kernel signals a completion, while the event
 * loop runs on. Works on Node and Bun.
 */
export function readEventfd(eventfd: number, scratch: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.read(eventfd, scratch, 0, 8, null, (error, count) => {
      if (error !== null) reject(new IoError("read eventfd", Math.abs(error.errno ?? 5)));
      else if (count !== 8) reject(new IoError("read eventfd", 5, `read ${count} bytes`));
      else resolve();
    });
  });
}

/**
 * pread(2) of a raw descriptor on the runtime's thread pool through node:fs (Node and Bun
 * accept raw descriptors; Deno's node:fs does not, see deno.ts).
 */
export function preadOnPool(fd: number, bytes: Uint8Array, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, bytes, 0, bytes.length, position, (error, count) => {
      if (error !== null) reject(new IoError("pread", Math.abs(error.errno ?? 5)));
      else resolve(count);
    });
  });
}

/** Decodes `count` (tag, result) pairs written by chronon_ring_reap. */
export function decodeCompletions(records: Int32Array, count: number): Completion[] {
  assert(count >= 0 && count * 2 <= records.length, "reap overflowed its record array");
  const out: Completion[] = [];
  for (let i = 0; i < count; i++) out.push({ tag: records[2 * i]!, result: records[2 * i + 1]! });
  return out;
}

/** Bookkeeping every NativeBuffer implementation shares. */
export class NativeBufferState {
  #bytes: Uint8Array | null;
  readonly size: number;
  readonly alignment: number;

  constructor(bytes: Uint8Array, alignment: number) {
    this.#bytes = bytes;
    this.size = bytes.length;
    this.alignment = alignment;
  }

  /** The bytes; throws once freed. */
  get bytes(): Uint8Array {
    assert(this.#bytes !== null, "native buffer used after free");
    return this.#bytes;
  }

  /** True once freed. */
  get freed(): boolean {
    return this.#bytes === null;
  }

  /** Marks the buffer freed and returns its bytes for the last time. */
  release(): Uint8Array {
    const bytes = this.bytes;
    this.#bytes = null;
    return bytes;
  }
}
