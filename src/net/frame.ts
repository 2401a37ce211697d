/**
 * Frames of the replica bus: a fixed 48-byte header and a payload.
 *
 *     offset size field
 *          0    2 magic 0x63 0x68 ("ch")
 *          2    1 version (2)
 *          3    1 kind (1 hello, 2 proof, 3 message)
 *          4    4 payload size, u32 little-endian
 *          8    8 sequence, u64 little-endian (0 for handshake frames)
 *         16   16 checksum: the first 128 bits of D = SHA-256(bytes 0..16 ‖ payload)
 *         32   16 mac: HMAC-SHA256/128 (per-direction key) of D, all 32 bytes of it;
 *                 zero for handshake frames
 *         48    … payload
 *
 * One pass over the payload per side: D is the checksum and the MAC's message at once
 * (version 1 hashed the payload a second time for its MAC). The MAC of D is as strong as
 * a MAC of the bytes because D is the whole SHA-256 (forging needs a SHA-256 collision),
 * not the truncated checksum. The checksum tells corruption (a flipped bit, a stray
 * writer) from forgery (a MAC that does not verify), so the two are counted apart. See
 * docs/network.md.
 * @module
 */
import { assert } from "../assert.ts";
import { checksumSize, sha256PairInto } from "../codec/checksum.ts";
import { HmacSha256, hmacSha256Size } from "../codec/hmac_sha256.ts";

/** Size of a frame header in bytes. */
export const frameHeaderSize = 48;
/** Size of a frame MAC in bytes (HMAC-SHA256 truncated to 128 bits). */
export const frameMacSize = 16;
/** First two bytes of every frame. */
export const frameMagic0 = 0x63;
/** Second byte of the magic. */
export const frameMagic1 = 0x68;
/** The frame format version this code speaks (2: the MAC covers the digest, not the bytes again). */
export const frameVersion = 2;
/** Bytes of the header covered by the checksum digest, before the checksum itself. */
const fieldsSize = 16;

/** Frame kinds. Handshake frames carry no MAC; message frames must. */
export const FrameKind = { hello: 1, proof: 2, message: 3 } as const;
/** A frame kind value. */
export type FrameKind = typeof FrameKind[keyof typeof FrameKind];

assert(frameHeaderSize === fieldsSize + checksumSize + frameMacSize, "header layout: fields, checksum, mac");
assert(frameMacSize <= hmacSha256Size, "the mac is a truncated HMAC-SHA256");

/**
 * A direction's MAC key: the raw 32-byte key from the handshake, or (on the hot path)
 * the same key prepared once with {@link frameKeyOf}.
 */
export type FrameKey = Uint8Array | HmacSha256;

/** The key prepared for many frames (its HMAC pads absorbed once). */
export function frameKeyOf(key: FrameKey): HmacSha256 {
  return key instanceof HmacSha256 ? key : new HmacSha256(key);
}

/** A decoded frame header (fields only; checksum and mac are checked by {@link verifyFrame}). */
export interface FrameHeader {
  readonly kind: FrameKind;
  readonly payloadSize: number;
  readonly sequence: number;
}

/** Why a frame header was refused. */
export type FrameHeaderError = "garbage" | "oversized";

// Scratch for one frame at a time: encoding and verification are synchronous.
const digestScratch = new Uint8Array(32);
const macScratch = new Uint8Array(hmacSha256Size);

/**
 * Encodes one frame. `macKey` is null for handshake frames (mac left zero).
 * The result is a fresh buffer the caller may hand to a socket.
 */
export function encodeFrame(kind: FrameKind, sequence: number, payload: Uint8Array, macKey: FrameKey | null): Uint8Array {
  const frame = new Uint8Array(frameHeaderSize + payload.length);
  encodeFrameHeaderInto(frame, 0, kind, sequence, payload, macKey === null ? null : frameKeyOf(macKey));
  frame.set(payload, frameHeaderSize);
  return frame;
}

/**
 * The 48-byte header of the frame carrying `payload`: written before the payload (two
 * writes of one corked flush leave in one writev), it spares the copy of the payload into
 * a frame of its own.
 */
export function encodeFrameHeader(kind: FrameKind, sequence: number, payload: Uint8Array, macKey: FrameKey | null): Uint8Array {
  const header = new Uint8Array(frameHeaderSize);
  encodeFrameHeaderInto(header, 0, kind, sequence, payload, macKey === null ? null : frameKeyOf(macKey));
  return header;
}

/**
 * Writes the header of the frame carrying `payload` into `target` at `offset` (48
 * bytes; the payload itself is not written), without allocating: the bus writes many
 * frames' headers and small payloads into one buffer.
 */
export function encodeFrameHeaderInto(target: Uint8Array, offset: number, kind: FrameKind, sequence: number, payload: Uint8Array, macKey: HmacSha256 | null): void {
  assert(Number.isSafeInteger(sequence) && sequence >= 0, "frame sequence is a safe integer");
  assert(payload.length <= 0xffff_ffff, "frame payload fits u32");
  assert((kind === FrameKind.message) === (macKey !== null), "message frames and only they carry a mac");
  assert(offset >= 0 && target.length - offset >= frameHeaderSize, "room for a header");
  const size = payload.length;
  const sequenceHigh = Math.floor(sequence / 0x1_0000_0000);
  const sequenceLow = sequence - sequenceHigh * 0x1_0000_0000;
  target[offset] = frameMagic0;
  target[offset + 1] = frameMagic1;
  target[offset + 2] = frameVersion;
  target[offset + 3] = kind;
  writeU32(target, offset + 4, size);
  writeU32(target, offset + 8, sequenceLow);
  writeU32(target, offset + 12, sequenceHigh);
  sha256PairInto(target.subarray(offset, offset + fieldsSize), payload, digestScratch);
  target.set(digestScratch.subarray(0, checksumSize), offset + fieldsSize);
  if (macKey === null) {
    target.fill(0, offset + fieldsSize + checksumSize, offset + frameHeaderSize);
  } else {
    macKey.macInto(digestScratch, macScratch);
    target.set(macScratch.subarray(0, frameMacSize), offset + fieldsSize + checksumSize);
  }
}

/** HMAC-SHA256/128 of a frame whose header's first 16 bytes are `fields` (the MAC of its digest). */
export function frameMac(key: FrameKey, fields: Uint8Array, payload: Uint8Array): Uint8Array {
  assert(fields.length >= fieldsSize, "the mac covers the 16 header field bytes");
  sha256PairInto(fields.subarray(0, fieldsSize), payload, digestScratch);
  frameKeyOf(key).macInto(digestScratch, macScratch);
  return macScratch.slice(0, frameMacSize);
}

/**
 * Decodes the fixed header fields, refusing a wrong magic/version/kind ("garbage") or a
 * payload larger than `payloadSizeMax` ("oversized") before any payload is buffered.
 */
export function decodeFrameHeader(header: Uint8Array, payloadSizeMax: number): FrameHeader | FrameHeaderError {
  assert(header.length >= frameHeaderSize, "a whole header");
  if (header[0] !== frameMagic0 || header[1] !== frameMagic1 || header[2] !== frameVersion) return "garbage";
  const kind = header[3];
  if (kind !== FrameKind.hello && kind !== FrameKind.proof && kind !== FrameKind.message) return "garbage";
  const payloadSize = readU32(header, 4);
  if (payloadSize > payloadSizeMax) return "oversized";
  const sequenceHigh = readU32(header, 12);
  // Number.MAX_SAFE_INTEGER is 2^53 - 1: the high word has 21 bits.
  if (sequenceHigh > 0x1f_ffff) return "garbage";
  return { kind, payloadSize, sequence: sequenceHigh * 0x1_0000_0000 + readU32(header, 8) };
}

/** Why a whole frame failed verification. */
export type FrameVerifyError = "bad_checksum" | "bad_mac";

/**
 * Verifies a whole frame (header + payload): the checksum always, and the MAC when
 * `macKey` is given; a handshake frame must carry a zero MAC.
 */
export function verifyFrame(frame: Uint8Array, macKey: FrameKey | null): FrameVerifyError | null {
  assert(frame.length >= frameHeaderSize, "a whole frame");
  return verifyFrameParts(frame.subarray(0, frameHeaderSize), frame.subarray(frameHeaderSize), macKey === null ? null : frameKeyOf(macKey));
}

/**
 * {@link verifyFrame} for a header and a payload held apart (the connection reads the
 * payload into a buffer of its own): one SHA-256 pass over the payload, then two
 * compressions for the MAC.
 */
export function verifyFrameParts(header: Uint8Array, payload: Uint8Array, macKey: HmacSha256 | null): FrameVerifyError | null {
  assert(header.length === frameHeaderSize, "a whole header");
  sha256PairInto(header.subarray(0, fieldsSize), payload, digestScratch);
  for (let i = 0; i < checksumSize; i++) if (digestScratch[i] !== header[fieldsSize + i]) return "bad_checksum";
  const macAt = fieldsSize + checksumSize;
  if (macKey === null) {
    for (let i = macAt; i < frameHeaderSize; i++) if (header[i] !== 0) return "bad_mac";
    return null;
  }
  macKey.macInto(digestScratch, macScratch);
  let diff = 0;
  // Constant time: the comparison's duration does not say where the MACs differ.
  for (let i = 0; i < frameMacSize; i++) diff |= macScratch[i]! ^ header[macAt + i]!;
  return diff === 0 ? null : "bad_mac";
}

/** Equality whose time does not depend on where the first difference is (MACs are secrets' proofs). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function writeU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value;
  target[at + 1] = value >>> 8;
  target[at + 2] = value >>> 16;
  target[at + 3] = value >>> 24;
}

function readU32(source: Uint8Array, at: number): number {
  return (source[at]! | (source[at + 1]! << 8) | (source[at + 2]! << 16)) + source[at + 3]! * 0x100_0000;
}
