/**
 * The kernel's bounds. They shape replicated state (a full outbox rejects an event), so
 * every replica of a cluster must run with the same values: they belong to the cluster
 * configuration, like the replica count.
 * @module
 */
import { assert } from "../assert.ts";

/** Bounds on the kernel's replicated tables and on what one event may produce. */
export interface KernelLimits {
  /** Effects in the outbox (pending + dead-lettered). A full outbox rejects new events that produce effects. */
  readonly outboxMax: number;
  /** Effects one apply (or one onEffectResult) may return. */
  readonly effectsPerEventMax: number;
  /** CBOR size of one effect. */
  readonly effectSizeMax: number;
  /** CBOR size of one effect result value kept in the log (larger values are replaced by a note). */
  readonly resultValueSizeMax: number;
  /** Length of an error message kept in replies and dead letters (longer ones are cut). */
  readonly errorMessageLengthMax: number;
  /** Scheduled events waiting for their due time. */
  readonly scheduleMax: number;
  /** Scheduled events fired by one tick entry (the rest fire on the next tick). */
  readonly scheduleFiresPerTickMax: number;
  /** Named emit channels. */
  readonly channelsMax: number;
  /** Entries each channel keeps at least (older ones are dropped in batches of a quarter). */
  readonly channelRetention: number;
  /** Effect outcomes in one op-17 entry. */
  readonly resultsPerEntryMax: number;
  /** Items one listing or channel read returns. */
  readonly listLimitMax: number;
}

/** Defaults sized for a few thousand events per second with a slow webhook receiver. */
export const kernelLimitsDefault: KernelLimits = Object.freeze({
  outboxMax: 100_000,
  effectsPerEventMax: 64,
  effectSizeMax: 64 * 1024,
  resultValueSizeMax: 16 * 1024,
  errorMessageLengthMax: 1024,
  scheduleMax: 100_000,
  scheduleFiresPerTickMax: 1024,
  channelsMax: 256,
  channelRetention: 10_000,
  resultsPerEntryMax: 1024,
  listLimitMax: 1000,
});

/** Fills `partial` from the defaults and checks every bound is a positive safe integer. */
export function kernelLimits(partial: Partial<KernelLimits> = {}): KernelLimits {
  const limits: KernelLimits = { ...kernelLimitsDefault, ...partial };
  for (const [name, value] of Object.entries(limits)) {
    assert(Number.isSafeInteger(value) && value > 0, `kernel limit ${name} must be a positive integer, got ${value}`);
  }
  assert(limits.effectsPerEventMax <= limits.outboxMax, "effectsPerEventMax must not exceed outboxMax");
  return Object.freeze(limits);
}
