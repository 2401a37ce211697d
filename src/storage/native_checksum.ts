/**
 * Installs libcrypto's SHA-256 (ffi/libcrypto.ts) as the checksum implementation before a
 * data dir is opened: recovery hashes every header and body of the journal, and on Node
 * and Deno the native call costs well under node:crypto's per entry (see
 * src/codec/checksum.ts). Where it cannot be had, checksums stay on node:crypto: same
 * digests, only slower. `CHRONON_NATIVE_SHA256=0` keeps node:crypto (for comparisons).
 * @module
 */
import process from "node:process";
import { installSha256 } from "../codec/checksum.ts";
import { loadLibcryptoSha256 } from "../../ffi/libcrypto.ts";

let installing: Promise<boolean> | undefined;

/** Installs the native SHA-256 once per process; resolves to whether it is in use. */
export function useNativeChecksum(): Promise<boolean> {
  installing ??= install();
  return installing;
}

async function install(): Promise<boolean> {
  if (process.env.CHRONON_NATIVE_SHA256 === "0") return false;
  const native = await loadLibcryptoSha256();
  return native !== null && installSha256(native);
}
