/**
 * The kv workload of a chaos run: concurrent clients of examples/kv.ts doing gets and puts
 * through the log on a few keys, every operation recorded as Jepsen events (invoke, then
 * ok / fail / info) for the linearizability checker and Jepsen's kv format.
 *
 * - Every put writes a value unique in the run (`p<process>-<n>`), so a read names the
 *   write it saw.
 * - Gets go through the log too: they are what makes the history checkable.
 * - A process whose operation ended `info` (outcome unknown) is retired, as in Jepsen: its
 *   operation stays open for ever, and the client continues as a new process with a new
 *   session.
 * - The store answers null for a missing key; Jepsen's kv model reads a missing key as ""
 *   (no put ever writes ""), so null is recorded as "".
 * @module
 */
import { assert } from "../assert.ts";
import { Client } from "../client/client.ts";
import { OutcomeUnknownError } from "../client/errors.ts";
import type { HistoryEvent } from "../sim/lincheck/history.ts";
import type { KvInput, KvOutput } from "../sim/lincheck/model_kv.ts";
import type { KvEvent, KvReply } from "../../examples/kv.ts";

/** Events recorded in one run at most (bounds memory; the run stops issuing beyond it). */
export const historyEventsMax = 2_000_000;

/** A kv history event with the wall-clock instant it was recorded (ms since the run began). */
export type KvHistoryEvent = HistoryEvent<KvInput, KvOutput>;

/** Per-operation outcome counts and latencies. */
export interface OperationStats {
  ok: number;
  fail: number;
  info: number;
  /** Latencies of ok operations, ms. */
  readonly latenciesMs: number[];
  /** Completion instants of ok operations, ms since the run began (ascending). */
  readonly okAtMs: number[];
}

/** Records events in the order they happen (one JS thread: append order is real order). */
export class HistoryRecorder {
  readonly events: KvHistoryEvent[] = [];
  readonly stats: OperationStats = { ok: 0, fail: 0, info: 0, latenciesMs: [], okAtMs: [] };
  readonly #startedMs: number;

  /** A recorder whose times count from `startedMs` (performance.now()). */
  constructor(startedMs: number) {
    this.#startedMs = startedMs;
  }

  /** Milliseconds since the run began. */
  nowMs(): number {
    return performance.now() - this.#startedMs;
  }

  /** True while more events fit. */
  get roomy(): boolean {
    return this.events.length + 2 <= historyEventsMax;
  }

  /** Runs one operation for `process` and records it. */
  async record(process: number, input: KvInput, run: () => Promise<KvOutput>): Promise<"ok" | "fail" | "info"> {
    const call = this.nowMs();
    this.events.push({ kind: "invoke", client: process, time: call, input });
    try {
      const output = await run();
      const at = this.nowMs();
      this.events.push({ kind: "ok", client: process, time: at, output });
      this.stats.ok++;
      this.stats.latenciesMs.push(at - call);
      this.stats.okAtMs.push(at);
      return "ok";
    } catch (error) {
      if (error instanceof OutcomeUnknownError) {
        this.events.push({ kind: "info", client: process, time: this.nowMs() });
        this.stats.info++;
        return "info";
      }
      // Every other client error is definite: nothing was applied.
      this.events.push({ kind: "fail", client: process, time: this.nowMs() });
      this.stats.fail++;
      return "fail";
    }
  }
}

/** Options of {@link runKvWorkload}. */
export interface KvWorkloadOptions {
  readonly addresses: readonly string[];
  readonly token: string;
  readonly clientCount: number;
  readonly keyCount: number;
  /** Draws in [0, 1): the operation mix (seeded). */
  readonly random: () => number;
  readonly recorder: HistoryRecorder;
  /** Resolves when the clients must stop issuing. */
  readonly stop: Promise<void>;
  readonly deadlineMs: number;
}

type KvClient = Client<typeof import("../../examples/kv.ts").default>;

/** A kv client with the chaos run's timeouts. */
export function kvClient(addresses: readonly string[], token: string, deadlineMs: number): KvClient {
  return new Client({ addresses, token, deadlineMs, timeoutMs: Math.min(2000, deadlineMs) });
}

/** The output recorded for a reply: the value read (or "" for missing), "ok" for a put. */
export function outputOf(input: KvInput, reply: KvReply): KvOutput {
  if (input.f === "get") return reply.value ?? "";
  assert(reply.ok, "a put always succeeds");
  return "ok";
}

/** Runs the clients until `stop` resolves. Process ids grow by `clientCount` when one is retired. */
export async function runKvWorkload(options: KvWorkloadOptions): Promise<void> {
  let stopped = false;
  void options.stop.then(() => {
    stopped = true;
  });
  const loops = Array.from({ length: options.clientCount }, async (_, slot) => {
    let process = slot;
    let client = kvClient(options.addresses, options.token, options.deadlineMs);
    let n = 0;
    while (!stopped && options.recorder.roomy) {
      const key = `k${Math.floor(options.random() * options.keyCount)}`;
      const isGet = options.random() < 0.5;
      const input: KvInput = isGet ? { f: "get", key } : { f: "put", key, value: `p${process}-${n++}` };
      const event: KvEvent = input.f === "get" ? { type: "get", key } : { type: "put", key, value: (input as { value: string }).value };
      const outcome = await options.recorder.record(process, input, async () => outputOf(input, await client.submit(event) as KvReply));
      if (outcome === "info") {
        client.close();
        process += options.clientCount;
        client = kvClient(options.addresses, options.token, options.deadlineMs);
      } else if (outcome === "fail") {
        // Definite failures come from an unavailable cluster: don't spin.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    client.close();
    return process;
  });
  await Promise.all(loops);
}

/** Final reads of every key, one process each, recorded in the same history. */
export async function readAllKeys(options: { addresses: readonly string[]; token: string; keyCount: number; recorder: HistoryRecorder; firstProcess: number; deadlineMs: number }): Promise<Map<string, string | null>> {
  const finals = new Map<string, string | null>();
  const client = kvClient(options.addresses, options.token, options.deadlineMs);
  for (let k = 0; k < options.keyCount; k++) {
    const key = `k${k}`;
    const input: KvInput = { f: "get", key };
    let value: string | null = null;
    const outcome = await options.recorder.record(options.firstProcess + k, input, async () => {
      const reply = await client.submit({ type: "get", key }) as KvReply;
      return outputOf(input, reply);
    });
    const last = options.recorder.events[options.recorder.events.length - 1]!;
    if (outcome === "ok" && last.kind === "ok") value = last.output;
    finals.set(key, outcome === "ok" ? value : null);
  }
  client.close();
  return finals;
}
