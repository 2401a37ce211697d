/**
 * Verdicts and figures over what a chaos run recorded: acknowledged writes that the final
 * state lost, latency percentiles, and the longest stretch without an acknowledgement
 * during each fault kind.
 * @module
 */
import type { KvHistoryEvent } from "./workload_kv.ts";
import type { FaultRecord, NemesisKind } from "./nemesis.ts";

/** A put the final state contradicts. */
export interface LostWrite {
  readonly key: string;
  /** The acknowledged value that should have survived (or been overwritten by a later write). */
  readonly value: string;
  /** What the final read returned ("" for missing). */
  readonly finalValue: string;
  readonly why: string;
}

interface PutRecord {
  readonly value: string;
  readonly call: number;
  readonly returned: number | undefined;
  readonly acknowledged: boolean;
}

/**
 * Acknowledged writes missing from the final state. For each key whose final read
 * returned V: every put acknowledged before the final read must be V's put or have been
 * overwritten, so (a) V = "" while a put was acknowledged is a loss, (b) V must be the
 * value of some put, and (c) an acknowledged put invoked after V's put had returned
 * should have replaced V: it was lost. Complements the linearizability check with a
 * verdict that names the key and the value.
 */
export function findLostWrites(events: readonly KvHistoryEvent[], finals: ReadonlyMap<string, string | null>): LostWrite[] {
  const open = new Map<number, { key: string; value: string; call: number }>();
  const puts = new Map<string, PutRecord[]>();
  for (const event of events) {
    if (event.kind === "invoke") {
      if (event.input.f === "put") open.set(event.client, { key: event.input.key, value: event.input.value, call: event.time });
      continue;
    }
    const put = open.get(event.client);
    if (put === undefined) continue;
    open.delete(event.client);
    if (event.kind === "fail") continue;
    const list = puts.get(put.key) ?? [];
    list.push({ value: put.value, call: put.call, returned: event.kind === "ok" ? event.time : undefined, acknowledged: event.kind === "ok" });
    puts.set(put.key, list);
  }
  // Puts still open (no completion at all) may have taken effect.
  for (const put of open.values()) {
    const list = puts.get(put.key) ?? [];
    list.push({ value: put.value, call: put.call, returned: undefined, acknowledged: false });
    puts.set(put.key, list);
  }
  const lost: LostWrite[] = [];
  for (const [key, finalValue] of finals) {
    if (finalValue === null) continue;
    const list = puts.get(key) ?? [];
    const acknowledged = list.filter((p) => p.acknowledged);
    if (finalValue === "") {
      for (const p of acknowledged) lost.push({ key, value: p.value, finalValue, why: "acknowledged, but the key reads as missing" });
      continue;
    }
    const source = list.find((p) => p.value === finalValue);
    if (source === undefined) {
      lost.push({ key, value: finalValue, finalValue, why: "the final value was never written by any client" });
      continue;
    }
    if (source.returned === undefined) continue;
    for (const p of acknowledged) {
      if (p !== source && p.call > source.returned) {
        lost.push({ key, value: p.value, finalValue, why: `acknowledged, invoked after ${JSON.stringify(finalValue)} was acknowledged, yet the key still holds that older value` });
      }
    }
  }
  return lost;
}

/** The p-th percentile (0..100) of `values` by nearest rank, or NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** The longest stretch without an acknowledgement during faults of each kind. */
export interface UnavailabilityWindow {
  readonly kind: NemesisKind;
  readonly ms: number;
  /** Where it started, ms since the run began. */
  readonly fromMs: number;
  readonly fault: string;
}

/**
 * For each fault kind, the longest gap between consecutive acknowledgements (of any
 * client) charged to a fault of that kind. A gap is charged to the earliest fault that
 * overlaps it (the one that was in force when it began, or began during it), so a stall
 * that outlasts its fault into the next one is not charged twice. `okAtMs` ascending.
 */
export function unavailabilityByKind(okAtMs: readonly number[], faults: readonly FaultRecord[]): UnavailabilityWindow[] {
  const ordered = [...faults].sort((a, b) => a.startMs - b.startMs);
  const worst = new Map<NemesisKind, UnavailabilityWindow>();
  for (let i = 0; i + 1 < okAtMs.length; i++) {
    const from = okAtMs[i]!;
    const to = okAtMs[i + 1]!;
    const fault = ordered.find((f) => (f.endMs < 0 || f.endMs > from) && f.startMs < to);
    if (fault === undefined) continue;
    const current = worst.get(fault.kind);
    if (current === undefined || to - from > current.ms) worst.set(fault.kind, { kind: fault.kind, ms: to - from, fromMs: from, fault: fault.detail });
  }
  return [...worst.values()];
}

/** Log lines that say a replica stopped itself for a reason other than an injected fault. */
export function crashLines(logText: string): string[] {
  return logText.split("\n").filter((line) =>
    (/FATAL|AssertionError|Uncaught|unhandled/i.test(line)) && !line.includes("injected by CHRONON_TEST_FAULTS"));
}
