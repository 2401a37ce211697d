/**
 * Frames of the replica bus: a fixed 48-byte header and a payload.
 *
 *     offset size field
 *          0    2 magic 0x63 0x68 ("ch")
 *          2    1 version (1)
 *          3    1 kind (1 hello, 2 proof, 3 message)
 *          4    4 payload size, u32 little-endian
 *          8    8 sequence, u64 little-endian (0 for handshake frames)
 *         16   16 checksum: sha256/128 over bytes 0..16 and the payload
 *         32   16 mac: HMAC-SHA256/128 (per-direction key) over bytes 0..32 and the
 *                 payload; zero for handshake frames
 *         48    … payload
 *
 * The checksum tells corruption (a flipped bit, a stray writer) from forgery (a MAC that
 * does not verify), so the two are counted apart. See docs/network.md.
 * @module
 */
import { createHmac } from "node:crypto";
import { assert } from "../assert.ts";
import { checksum, checksumEqual, checksumSize } from "../codec/checksum.ts";

/** Size of a frame header in bytes. */
export const frameHeaderSize = 48;
/** Size of a frame MAC in bytes (HMAC-SHA256 truncated to 128 bits). */
export const frameMacSize = 16;
/** First two bytes of every frame. */
export const frameMagic0 = 0x63;
/** Second byte of the magic. */
export const frameMagic1 = 0x68;
/** The frame format version this code speaks. */
export const frameVersion = 1;

/** Frame kinds. Handshake frames carry no MAC; message frames must. */
export const FrameKind = { hello: 1, proof: 2, message: 3 } as const;
/** A frame kind value. */
export type FrameKind = typeof FrameKind[keyof typeof FrameKind];

assert(frameHeaderSize === 16 + checksumSize + frameMacSize, "header layout: fields, checksum, mac");

/** A decoded frame header (fields only; checksum and mac are checked by {@link verifyFrame}). */
export interface FrameHeader {
  readonly kind: FrameKind;
  readonly payloadSize: number;
  readonly sequence: number;
}

/** Why a frame header was refused. */
export type FrameHeaderError = "garbage" | "oversized";

/**
 * Encodes one frame. `macKey` is null for handshake frames (mac left zero).
 * The result is a fresh buffer the caller may hand to a socket.
 */
export function encodeFrame(kind: FrameKind, sequence: number, payload: Uint8Array, macKey: Uint8Array | null): Uint8Array {
  const frame = new Uint8Array(frameHeaderSize + payload.length);
  frame.set(encodeFrameHeader(kind, sequence, payload, macKey), 0);
  frame.set(payload, frameHeaderSize);
  return frame;
}

/**
 * The 48-byte header of the frame carrying `payload`: written before the payload (two
 * writes of one corked flush leave in one writev), it spares the copy of the payload into
 * a frame of its own.
 */
export function encodeFrameHeader(kind: FrameKind, sequence: number, payload: Uint8Array, macKey: Uint8Array | null): Uint8Array {
  assert(Number.isSafeInteger(sequence) && sequence >= 0, "frame sequence is a safe integer");
  assert(payload.length <= 0xffff_ffff, "frame payload fits u32");
  assert((kind === FrameKind.message) === (macKey !== null), "message frames and only they carry a mac");
  const header = new Uint8Array(frameHeaderSize);
  const view = new DataView(header.buffer);
  header[0] = frameMagic0;
  header[1] = frameMagic1;
  header[2] = frameVersion;
  header[3] = kind;
  view.setUint32(4, payload.length, true);
  view.setBigUint64(8, BigInt(sequence), true);
  header.set(checksum(header.subarray(0, 16), payload), 16);
  if (macKey !== null) header.set(frameMac(macKey, header.subarray(0, 32), payload), 32);
  return header;
}

/** HMAC-SHA256 of the header's first 32 bytes and the payload, truncated to 128 bits. */
export function frameMac(key: Uint8Array, header32: Uint8Array, payload: Uint8Array): Uint8Array {
  assert(header32.length === 32, "mac covers the 32 header bytes before it");
  const digest = createHmac("sha256", key).update(header32).update(payload).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, frameMacSize).slice();
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
  const view = new DataView(header.buffer, header.byteOffset, frameHeaderSize);
  const payloadSize = view.getUint32(4, true);
  if (payloadSize > payloadSizeMax) return "oversized";
  const sequenceBig = view.getBigUint64(8, true);
  if (sequenceBig > BigInt(Number.MAX_SAFE_INTEGER)) return "garbage";
  return { kind, payloadSize, sequence: Number(sequenceBig) };
}

/** Why a whole frame failed verification. */
export type FrameVerifyError = "bad_checksum" | "bad_mac";

/**
 * Verifies a whole frame (header + payload): the checksum always, and the MAC when
 * `macKey` is given; a handshake frame must carry a zero MAC.
 */
export function verifyFrame(frame: Uint8Array, macKey: Uint8Array | null): FrameVerifyError | null {
  assert(frame.length >= frameHeaderSize, "a whole frame");
  const payload = frame.subarray(frameHeaderSize);
  if (!checksumEqual(checksum(frame.subarray(0, 16), payload), frame.subarray(16, 32))) return "bad_checksum";
  const mac = frame.subarray(32, 48);
  if (macKey === null) {
    for (const byte of mac) if (byte !== 0) return "bad_mac";
    return null;
  }
  if (!constantTimeEqual(frameMac(macKey, frame.subarray(0, 32), payload), mac)) return "bad_mac";
  return null;
}

/** Equality whose time does not depend on where the first difference is (MACs are secrets' proofs). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
