/**
 * OpenSSL's SHA-256 (libcrypto.so.3, present wherever OpenSSL 3 is) through the running
 * runtime's FFI, for checksums of whole journals: the call costs less than node:crypto's
 * on Node (koffi: about 0.4 µs + 2.6 µs for a 112-byte header and a 4 KiB body, against
 * 1.3 µs + 3.7 µs) and on Deno (Deno.dlopen: 0.5 µs + 2.9 µs, against 3.8 µs + 6.8 µs).
 * Bun's node:crypto is already as fast (0.3 µs + 2.5 µs), so Bun gets null.
 *
 * The low-level SHA256_Init/Update/Final with one reused context: the one-shot SHA256()
 * looks the digest up on every call (measured 3.7 µs per 4 KiB against 2.9 µs on Deno).
 * The calls are synchronous, so one context and a plain Uint8Array input are safe.
 * @module
 */

/** A SHA-256 implementation: writes the 32-byte digest of `bytes` into `out`. */
export interface NativeSha256 {
  readonly name: string;
  digestInto(bytes: Uint8Array, out: Uint8Array): void;
  /** SHA-256(`first` ‖ `second`) into `out` (32 bytes): one more Update, no join. */
  digestPairInto(first: Uint8Array, second: Uint8Array, out: Uint8Array): void;
  /**
   * A function writing SHA-256(`prefix` ‖ bytes) into a 32-byte `out`: the context after
   * `prefix` is kept and copied per call (SHA256_CTX is a plain struct with no pointers,
   * so copying its bytes copies the state). HMAC's padded keys are absorbed once.
   */
  prefixed(prefix: Uint8Array): (bytes: Uint8Array, out: Uint8Array) => void;
}

/** Library names to try, in order. */
const libraryNames = ["libcrypto.so.3", "libcrypto.so"];

/** sizeof(SHA256_CTX) is 112 bytes; room to spare. */
const contextSize = 256;

type Fn = (...args: any[]) => any;

/** The slice of the Deno namespace used here (no Deno types under tsc). */
interface DenoSlice {
  permissions: { querySync?(descriptor: { name: "ffi" }): { state: string } };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: Record<string, Fn> };
}

function make(name: string, init: Fn, update: Fn, final: Fn): NativeSha256 {
  const context = new Uint8Array(contextSize);
  const fail = (): never => {
    throw new Error(`${name}: SHA-256 call failed`);
  };
  return {
    name,
    digestInto(bytes, out) {
      if (out.length < 32) throw new RangeError("SHA256_Final writes 32 bytes");
      if (init(context) !== 1 || update(context, bytes, bytes.length) !== 1 || final(out, context) !== 1) fail();
    },
    digestPairInto(first, second, out) {
      if (out.length < 32) throw new RangeError("SHA256_Final writes 32 bytes");
      if (init(context) !== 1 || update(context, first, first.length) !== 1) fail();
      if (update(context, second, second.length) !== 1 || final(out, context) !== 1) fail();
    },
    prefixed(prefix) {
      const start = new Uint8Array(contextSize);
      if (init(start) !== 1 || update(start, prefix, prefix.length) !== 1) fail();
      return (bytes, out) => {
        if (out.length < 32) throw new RangeError("SHA256_Final writes 32 bytes");
        context.set(start);
        if (update(context, bytes, bytes.length) !== 1 || final(out, context) !== 1) fail();
      };
    },
  };
}

function denoSha256(deno: DenoSlice): NativeSha256 | null {
  try {
    // Never prompt for a permission: use FFI only when it was granted on the command line.
    if (deno.permissions.querySync?.({ name: "ffi" }).state !== "granted") return null;
  } catch {
    return null;
  }
  for (const path of libraryNames) {
    try {
      const { symbols } = deno.dlopen(path, {
        SHA256_Init: { parameters: ["buffer"], result: "i32" },
        SHA256_Update: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
        SHA256_Final: { parameters: ["buffer", "buffer"], result: "i32" },
      });
      return make(`${path} (Deno.dlopen)`, symbols["SHA256_Init"]!, symbols["SHA256_Update"]!, symbols["SHA256_Final"]!);
    } catch {
      // Not under this name, or without these symbols: try the next.
    }
  }
  return null;
}

async function koffiSha256(): Promise<NativeSha256 | null> {
  let koffi: typeof import("koffi").default;
  try {
    koffi = (await import("koffi")).default;
  } catch {
    return null;
  }
  for (const path of libraryNames) {
    try {
      const lib = koffi.load(path);
      return make(
        `${path} (koffi)`,
        lib.func("int SHA256_Init(void *ctx)"),
        lib.func("int SHA256_Update(void *ctx, const void *data, size_t len)"),
        lib.func("int SHA256_Final(void *md, void *ctx)"),
      );
    } catch {
      // Not under this name, or without these symbols: try the next.
    }
  }
  return null;
}

let loading: Promise<NativeSha256 | null> | undefined;

/**
 * libcrypto's SHA-256 for this runtime, or null where it cannot be had or would not be
 * faster (Bun; Deno without --allow-ffi; no libcrypto). Loaded once per process.
 */
export function loadLibcryptoSha256(): Promise<NativeSha256 | null> {
  loading ??= load();
  return loading;
}

function load(): Promise<NativeSha256 | null> {
  const global = globalThis as { Bun?: unknown; Deno?: DenoSlice };
  if (global.Bun !== undefined) return Promise.resolve(null);
  if (global.Deno !== undefined) return Promise.resolve(denoSha256(global.Deno));
  return koffiSha256();
}
