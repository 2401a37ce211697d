/**
 * Cluster ids: 128-bit numbers, stored little-endian in 16 bytes. On the command line an id
 * is written as decimal (`340282366920938463463374607431768211455` at most), as hex with a
 * `0x` prefix (up to 32 digits), or as any other string, which is hashed to an id (the
 * first 16 bytes of SHA-256 of its UTF-8 bytes, read little-endian) so that `--cluster
 * payments-prod` names the same cluster everywhere. Zero is reserved and refused.
 * @module
 */
import { checksum } from "../codec/checksum.ts";

const max = (1n << 128n) - 1n;

/** Parses a cluster id as described in the module doc; throws RangeError when out of range. */
export function parseClusterId(text: string): Uint8Array {
  let value: bigint;
  if (/^0x[0-9a-fA-F]{1,32}$/.test(text)) value = BigInt(text);
  else if (/^\d+$/.test(text)) {
    value = BigInt(text);
    if (value > max) throw new RangeError(`cluster id ${text} does not fit 128 bits`);
  } else if (text.length > 0 && !text.startsWith("0x")) {
    return checksum(new TextEncoder().encode(text));
  } else throw new RangeError(`cluster id '${text}' is neither decimal, 0x-hex of up to 32 digits, nor a name`);
  if (value === 0n) throw new RangeError("cluster id 0 is reserved");
  return clusterIdBytes(value);
}

/** The 16 little-endian bytes of a 128-bit id. */
export function clusterIdBytes(value: bigint): Uint8Array {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/** A cluster id for display: 0x and 32 hex digits, most significant first. */
export function formatClusterId(bytes: Uint8Array): string {
  let out = "0x";
  for (let i = 15; i >= 0; i--) out += bytes[i]!.toString(16).padStart(2, "0");
  return out;
}
