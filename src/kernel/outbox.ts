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

const hexByte: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lower-case hex of 16 bytes through a table (on the apply path: no per-byte padStart). */
export function hex128(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < 16; i++) out += hexByte[bytes[i]!]!;
  return out;
}

/**
 * The deterministic id of the `index`-th effect of sub-event `stream` of the entry with
 * header checksum `entryChecksum`: the checksum with `stream` XORed into bytes 8..11 and
 * `index` into bytes 12..15, as 32 hex digits. Stream 0 is the entry's own event; stream
 * k > 0 the k-th event it carries (a scheduled event or an effect outcome). Entry
 * checksums are unique 128-bit hashes, so two ids collide only if two checksums differ
 * in exactly those XOR masks: probability about 2^-128 per pair. (No hash per effect:
 * this is on the apply path.)
 */
export function effectId(entryChecksum: Uint8Array, stream: number, index: number): string {
  assert(Number.isSafeInteger(stream) && stream >= 0 && stream <= 0xffff_ffff, "effect stream out of range");
  assert(Number.isSafeInteger(index) && index >= 0 && index <= 0xffff_ffff, "effect index out of range");
  assert(entryChecksum.length >= 16, "entry checksum must hold 16 bytes");
  const bytes = entryChecksum.slice(0, 16);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, view.getUint32(8, true) ^ stream, true);
  view.setUint32(12, view.getUint32(12, true) ^ index, true);
  return hex128(bytes);
}

/** Checks an effect id's shape (operator input). */
export function isEffectId(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
}
