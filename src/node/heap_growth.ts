/**
 * The JS heap's growth factor for a replica process: how far V8 lets the heap grow past
 * what the last full collection kept before it collects again.
 *
 * A replica allocates fast (messages, entries, replies) while holding a steady live set
 * (the log window, the state, one checkpoint image), so V8's own factor lets the heap run
 * to two or three times the live set between collections: the kv benchmark's replicas
 * peaked at 357–386 MB with it, against 264–285 MB with 50 % and 242–260 MB with 20 %
 * (docs/operations.md, "Session 8 figures"), paid for in collection CPU. The factor is process wide,
 * so it is set once per process, before the replica allocates its state.
 * @module
 */
import { setFlagsFromString } from "node:v8";

/** What {@link applyHeapGrowth} did. */
export type HeapGrowthOutcome = "engine_default" | "applied" | "unsupported";

/**
 * Sets V8's heap growing factor to 1 + `percent`/100 on Node. 0 leaves the engine's own
 * policy. "unsupported" elsewhere: Bun runs JavaScriptCore, which has no such setting, and
 * Deno accepts `node:v8`'s setFlagsFromString but it changed nothing measured (peaks of
 * 360–367 MB either way); there it takes `deno run --v8-flags=--heap-growing-percent=N`
 * (256–273 MB with 50), which the local cluster commands pass (storage_common.ts).
 */
export function applyHeapGrowth(percent: number): HeapGrowthOutcome {
  if (!Number.isSafeInteger(percent) || percent < 0) throw new RangeError(`heap growth percent must be a non-negative integer, not ${percent}`);
  if (percent === 0) return "engine_default";
  const global = globalThis as { Bun?: unknown; Deno?: unknown };
  if (global.Bun !== undefined || global.Deno !== undefined) return "unsupported";
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return "applied";
}

/**
 * The young generation's semi-space cap, in MiB, for a Node replica: V8 takes it only as a
 * start flag (`--max-semi-space-size`; `setFlagsFromString` at run time leaves the young
 * generation as it was), so the commands that start replicas (dev, demo, bench cluster,
 * the chaos cluster) pass {@link replicaV8StartFlags} (to Deno within `--v8-flags`), and a
 * replica started by hand takes it through `NODE_OPTIONS=--max-semi-space-size=2` (Deno:
 * `--v8-flags=…,--max-semi-space-size=2`). V8's default lets the semi-space grow to
 * 16 MiB; a replica's young objects are mostly garbage of one message but the log window's
 * slots, which all survive and are copied until promoted, so a small young generation costs
 * shorter scavenges and less peak memory (kv benchmark, 64 clients: docs/operations.md,
 * "Session 10 figures").
 */
export const youngSemiSpaceMiB = 2;

/** V8 start flags for a replica process: Node's command line, Deno's `--v8-flags` (see {@link youngSemiSpaceMiB}). */
export const replicaV8StartFlags: readonly string[] = [`--max-semi-space-size=${youngSemiSpaceMiB}`];
