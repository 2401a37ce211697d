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
import { checksum, checksumHex } from "../codec/checksum.ts";
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

/**
 * The deterministic id of the `index`-th effect of sub-event `stream` of the entry with
 * header checksum `entryChecksum`: 128 bits of sha256 over the three, as hex. Stream 0 is
 * the entry's own event; stream k > 0 the k-th event it carries (a scheduled event or an
 * effect outcome). Entry checksums are unique in a log, so ids are unique in a cluster.
 */
export function effectId(entryChecksum: Uint8Array, stream: number, index: number): string {
  assert(Number.isSafeInteger(stream) && stream >= 0 && stream <= 0xffff_ffff, "effect stream out of range");
  assert(Number.isSafeInteger(index) && index >= 0 && index <= 0xffff_ffff, "effect index out of range");
  const position = new Uint8Array(8);
  const view = new DataView(position.buffer);
  view.setUint32(0, stream, true);
  view.setUint32(4, index, true);
  return checksumHex(checksum(entryChecksum, position));
}

/** Checks an effect id's shape (operator input). */
export function isEffectId(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
}
