/**
 * The outbox: effects that must happen outside the cluster (http, log, custom kinds),
 * recorded in replicated state when the event that produced them commits, and removed
 * only when their outcome commits.
 *
 * Lifecycle of an entry:
 *
 *     apply returns it ──▶ pending ──(op 17 acknowledged)──▶ removed (+ onEffectResult)
 *                            │  ▲
 *     (op 17 dead_lettered)  │  │ (op 19 operator retry: generation + 1)
 *                            ▼  │
 *                        dead_lettered ──(op 20 operator discard)──▶ removed
 *
 * An outcome names the generation it executed; one for another generation, for an id no
 * longer pending, or for an unknown id is ignored, so every outcome applies at most once.
 * @module
 */
import type { CustomEffect, HttpEffect, LogEffect } from "../app/effects.ts";
import { assert } from "../assert.ts";

/** Effects that go through the outbox. */
export type OutboxEffect = HttpEffect | LogEffect | CustomEffect;

/** Status of an outbox entry. */
export type OutboxStatus = "pending" | "dead_lettered";

/** One effect in the outbox (replicated state: plain data only). */
export interface OutboxEntry {
  /** 32 hex digits, derived from the producing entry's checksum (see {@link effectId}). */
  readonly id: string;
  readonly effect: OutboxEffect;
  /** Log op of the event that produced it. */
  readonly eventIndex: number;
  /** blockTime of that event. */
  readonly createdMs: number;
  status: OutboxStatus;
  /** Bumped by each operator retry; outcomes of older generations are ignored. */
  generation: number;
  /** Attempts reported by runners so far (across generations). */
  attempts: number;
  /** The last error a runner reported, or null. */
  lastError: string | null;
}

const hexDigitCodes: number[] = Array.from("0123456789abcdef", (digit) => digit.charCodeAt(0));
/** Char codes of the id being built (reused: ids are built one at a time, synchronously). */
const idCodes: number[] = new Array<number>(32).fill(0x30);

function putHexByte(at: number, byte: number): void {
  idCodes[at] = hexDigitCodes[byte >>> 4]!;
  idCodes[at + 1] = hexDigitCodes[byte & 15]!;
}

/** Lower-case hex of 16 bytes (on the apply path: one string, no concatenation). */
export function hex128(bytes: Uint8Array): string {
  assert(bytes.length >= 16, "hex128 needs 16 bytes");
  for (let i = 0; i < 16; i++) putHexByte(2 * i, bytes[i]!);
  return String.fromCharCode.apply(null, idCodes);
}

/**
 * The deterministic id of the `index`-th effect of sub-event `stream` of the entry with
 * header checksum `entryChecksum`: the checksum with `stream` XORed into bytes 8..11 and
 * `index` into bytes 12..15 (both little-endian u32), as 32 hex digits. Stream 0 is the
 * entry's own event; stream k > 0 the k-th event it carries (a scheduled event or an
 * effect outcome). Entry checksums are unique 128-bit hashes, so two ids collide only if
 * two checksums differ in exactly those XOR masks: probability about 2^-128 per pair.
 * (No hash and no allocation but the string: this is on the apply path.)
 */
export function effectId(entryChecksum: Uint8Array, stream: number, index: number): string {
  assert(Number.isSafeInteger(stream) && stream >= 0 && stream <= 0xffff_ffff, "effect stream out of range");
  assert(Number.isSafeInteger(index) && index >= 0 && index <= 0xffff_ffff, "effect index out of range");
  assert(entryChecksum.length >= 16, "entry checksum must hold 16 bytes");
  const c = entryChecksum;
  for (let i = 0; i < 8; i++) putHexByte(2 * i, c[i]!);
  const word8 = (c[8]! | (c[9]! << 8) | (c[10]! << 16) | (c[11]! << 24)) ^ stream;
  const word12 = (c[12]! | (c[13]! << 8) | (c[14]! << 16) | (c[15]! << 24)) ^ index;
  for (let k = 0; k < 4; k++) {
    putHexByte(16 + 2 * k, (word8 >>> (8 * k)) & 0xff);
    putHexByte(24 + 2 * k, (word12 >>> (8 * k)) & 0xff);
  }
  return String.fromCharCode.apply(null, idCodes);
}

/** Checks an effect id's shape (operator input). */
export function isEffectId(value: unknown): value is string {
  if (typeof value !== "string" || value.length !== 32) return false;
  for (let i = 0; i < 32; i++) {
    const code = value.charCodeAt(i);
    if (!((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66))) return false;
  }
  return true;
}
