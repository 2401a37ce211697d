/**
 * Entry point of the native-I/O layer: {@link loadNativeIo} picks the FFI of the running
 * runtime (bun:ffi on Bun, Deno.dlopen on Deno, koffi on Node) once per process.
 * @example
 * const io = await loadNativeIo();
 * const ring = io.openRing(64);
 * if (!ring.ok) console.log(`io_uring unavailable: ${ring.reason}`);
 * @module
 */
import type { NativeIo } from "./native_io.ts";

export type { Completion, NativeBuffer, NativeIo, NativeIoBackend, OpenFlags, Ring, RingOpen, RingUnavailable } from "./native_io.ts";
export { errnoName, IoError, NativeIoUnavailable } from "./errors.ts";

let loading: Promise<NativeIo> | undefined;

/**
 * The native-I/O layer for this runtime, loaded on first call. Rejects with
 * NativeIoUnavailable when the runtime's FFI cannot bind libc (e.g. Deno without
 * --allow-ffi).
 */
export function loadNativeIo(): Promise<NativeIo> {
  loading ??= load();
  return loading;
}

async function load(): Promise<NativeIo> {
  const global = globalThis as { Bun?: unknown; Deno?: unknown };
  // Literal dynamic imports: a bundler keeps each runtime's module out of the others' paths.
  if (global.Bun !== undefined) return (await import("./bun.ts")).createBunNativeIo();
  if (global.Deno !== undefined) return (await import("./deno.ts")).createDenoNativeIo();
  return (await import("./koffi.ts")).createKoffiNativeIo();
}
