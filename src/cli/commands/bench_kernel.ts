/**
 * `chronon bench kernel`: the application kernel alone (no network between replicas, no
 * disk): bank events applied per second through the executor, http effects executed and
 * acknowledged per second against a local sink, and checkpoint write/restore times for
 * 100,000 accounts.
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import type { BenchTarget } from "./bench.ts";
import { UsageError } from "../command.ts";
import { runtimeName, runtimeVersion } from "../runtime.ts";
import bank from "../../../examples/bank.ts";
import { checksum, checksumHex } from "../../codec/checksum.ts";
import { decodeReply, encodeEffectResults, encodeEvent, operationEffectResults, operationEvent } from "../../app/wire.ts";
import type { EffectOutcome } from "../../app/wire.ts";
import { Executor } from "../../kernel/executor.ts";
import { EffectRunner } from "../../kernel/effect_runner.ts";
import type { CommittedEntry } from "../../vsr/state_machine.ts";
import { seededRandom } from "../../storage/seeded_random.ts";
import { serve } from "../../api/serve.ts";
import { KvLoad, kvCheckpointTrial, kvPutTrial } from "./bench_kernel_kv.ts";

const usage = `chronon bench kernel [--json] [--events N] [--effects N] [--accounts N] [--kv-clients N] [--trials N]

The application kernel without replication or disk:
- apply: bank events (80% transfers with a webhook effect and a channel entry, 20% deposits,
  4,096 distinct bodies encoded before timing and cycled) applied per second by the
  executor; the outbox is drained by batched acknowledgements (op 17, 1000 per entry) as a
  runner would. Target ≥ 200,000/s.
- effects: http effects executed by the effect runner against a node:http sink on
  127.0.0.1 (node:http on Node, Bun.serve or Deno.serve on Bun and Deno) that counts
  deliveries per id, acknowledged through the executor. Target ≥ 5,000/s.
- checkpoint: snapshot (write) and restore of a bank with --accounts accounts (default
  100,000), and the state hash. Target < 1 s each.
- kv: the load of bench cluster on one executor (--kv-clients clients, default 64, with
  ids of their own, interleaved, each putting 256 characters to its own 1,024 keys):
  µs of CPU per put on the full store (medians of --trials trials of one put per key);
  then its checkpoint: one snapshot() against beginSnapshot() stepped by 256 KiB with 64
  puts between steps (the longest step is the pause a replica would take).

  --events N    events per apply trial (default 200000)
  --effects N   http effects (default 10000)
  --accounts N  accounts in the checkpoint (default 100000)
  --kv-clients N kv clients (default 64; 1,024 keys each)
  --trials N    apply, effects and kv trials, medians quoted (default 3)
  --json        one JSON object on stdout`;

/** Options of {@link benchKernel}. */
export interface BenchKernelOptions {
  readonly events?: number;
  readonly effects?: number;
  readonly accounts?: number;
  readonly kvClients?: number;
  readonly trials?: number;
  readonly json?: boolean;
}

/** Figures printed by {@link benchKernel}. */
export interface BenchKernelResult {
  readonly runtime: string;
  readonly applyEventsPerSecond: number;
  readonly applyTrials: number[];
  readonly effectsPerSecond: number;
  readonly effectsTrials: number[];
  readonly effectsDeliveredTwice: number;
  readonly checkpointAccounts: number;
  readonly checkpointBytes: number;
  readonly checkpointWriteMs: number;
  readonly checkpointRestoreMs: number;
  readonly stateHashMs: number;
  readonly stateHashEqualAfterRestore: boolean;
  readonly kvKeys: number;
  /** µs of CPU per kv put (median), and the trials behind it. */
  readonly kvPutMicros: number;
  readonly kvPutTrials: number[];
  readonly kvSnapshotMs: number;
  readonly kvSnapshotSteps: number;
  readonly kvSnapshotStepMedianMs: number;
  readonly kvSnapshotStepMaxMs: number;
  readonly kvSnapshotStepsTotalMs: number;
  readonly kvSnapshotIdentical: boolean;
}

class Entries {
  op = 0;
  timestampMs = 1_700_000_000_000;
  readonly client = new Uint8Array(16).fill(9);
  request = 0;

  next(operation: number, body: Uint8Array, internal = false): CommittedEntry {
    this.op++;
    this.timestampMs++;
    const position = new Uint8Array(8);
    new DataView(position.buffer).setFloat64(0, this.op);
    return {
      op: this.op,
      view: 1,
      timestamp: this.timestampMs,
      client: internal ? new Uint8Array(16) : this.client,
      request: internal ? 0 : ++this.request,
      operation,
      body,
      checksum: checksum(position, body),
    };
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function newBank(accounts: number, webhookUrl: string | null): { executor: Executor; entries: Entries } {
  const executor = new Executor(bank, { limits: { outboxMax: 1_000_000 } });
  const entries = new Entries();
  executor.commit(entries.next(operationEvent, encodeEvent({ type: "configure", webhookUrl })));
  for (let i = 0; i < accounts; i++) {
    executor.commit(entries.next(operationEvent, encodeEvent({ type: "open", account: `acct-${i}` })));
    executor.commit(entries.next(operationEvent, encodeEvent({ type: "deposit", account: `acct-${i}`, amount: 1_000_000 })));
  }
  return { executor, entries };
}

/** Distinct event bodies an apply trial cycles through. */
const applyBodyPoolSize = 4096;

/** One apply trial: bank events applied per second by an executor (see the usage text). */
export function applyTrial(events: number, seed: number): number {
  const accounts = 1000;
  const { executor, entries } = newBank(accounts, "http://127.0.0.1:1/hook");
  const random = seededRandom(seed);
  // Bodies are encoded before timing (the replica hands the executor decoded-from-the-wire
  // bytes; encoding them is the client's work), a pool of them cycled: keeping one per
  // event alive would add tens of megabytes that no replica holds to every collection.
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < Math.min(events, applyBodyPoolSize); i++) {
    const from = `acct-${Math.floor(random() * accounts)}`;
    const to = `acct-${Math.floor(random() * accounts)}`;
    const payload = random() < 0.8 ? { type: "transfer", from, to: to === from ? "fees" : to, amount: 1 + Math.floor(random() * 100) } : { type: "deposit", account: from, amount: 10 };
    bodies.push(encodeEvent(payload));
  }
  // The entry checksum (the replica computes it; the executor derives effect ids and the
  // PRNG seed from it and keeps none of it) is unique per event: the seed and the event's
  // number, written into one buffer, not hashed in the timed loop.
  const sum = new Uint8Array(16);
  const sumView = new DataView(sum.buffer);
  sumView.setUint32(12, seed);
  const start = performance.now();
  let applied = 0;
  for (let i = 0; i < events; i++) {
    entries.op++;
    entries.timestampMs++;
    sumView.setFloat64(0, i);
    const entry: CommittedEntry = {
      op: entries.op,
      view: 1,
      timestamp: entries.timestampMs,
      client: entries.client,
      request: ++entries.request,
      operation: operationEvent,
      body: bodies[i % bodies.length]!,
      checksum: sum,
    };
    const reply = executor.commit(entry);
    // The reply goes back to a client, which decodes it; here only its ok flag is read.
    if (!isOkReply(reply)) continue;
    applied++;
    // The runner's acknowledgements are part of the kernel's work. A runner finds work in
    // the outbox (not in replies) and acknowledges in batches: do the same per 1000.
    if (executor.outboxSize >= ackBatch) acknowledgeOutbox(executor, entries);
  }
  const seconds = (performance.now() - start) / 1000;
  // Every event is valid (balances start at 1,000,000; amounts are at most 100): a
  // rejection means the trial measured something else than applying.
  const counters = executor.counters();
  if (applied !== events || counters.eventsRejected !== 0) {
    throw new Error(`apply trial: ${applied} of ${events} events applied, ${counters.eventsRejected} rejected`);
  }
  return applied / seconds;
}

/** Acknowledgements per op-17 entry in the apply trial. */
const ackBatch = 1000;
/** CBOR of `{ ok: true, ...`: the first five bytes of every successful kernel reply. */
const okReplyHead = [0xa3, 0x62, 0x6f, 0x6b, 0xf5];

function isOkReply(reply: Uint8Array): boolean {
  for (let i = 0; i < okReplyHead.length; i++) if (reply[i] !== okReplyHead[i]) return false;
  return true;
}

/** Commits one op 17 acknowledging up to `ackBatch` pending outbox effects, as a runner would. */
function acknowledgeOutbox(executor: Executor, entries: Entries): void {
  const outcomes: EffectOutcome[] = [];
  for (const effect of executor.outboxEntries()) {
    if (effect.status !== "pending") continue;
    outcomes.push({ id: effect.id, generation: effect.generation, status: "acknowledged", value: null, attempts: 1, view: 1 });
    if (outcomes.length === ackBatch) break;
  }
  const reply = executor.commit(entries.next(operationEffectResults, encodeEffectResults(outcomes), true));
  if (!isOkReply(reply)) throw new Error(`acknowledgements rejected: ${JSON.stringify(decodeReply(reply))}`);
}

/** A local HTTP receiver counting deliveries per `Idempotency-Key`. */
interface CountingSink {
  readonly url: string;
  readonly deliveries: Map<string, number>;
  close(): Promise<void>;
}

/**
 * Starts the sink on the runtime's fastest server: node:http on Node; Bun.serve and
 * Deno.serve (src/api/serve.ts) on Bun and Deno, whose node:http layers cost the sink
 * more CPU than the runner it measures (the sink stands for another system).
 */
async function startCountingSink(): Promise<CountingSink> {
  const deliveries = new Map<string, number>();
  const count = (id: string) => deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
  const runtime = globalThis as { Bun?: unknown; Deno?: unknown };
  if (runtime.Bun !== undefined || runtime.Deno !== undefined) {
    const server = await serve({
      async fetch(request) {
        await request.arrayBuffer();
        count(String(request.headers.get("idempotency-key")));
        return new Response(null, { status: 200 });
      },
    }, { hostname: "127.0.0.1", port: 0 });
    return { url: `http://127.0.0.1:${server.port}/hook`, deliveries, close: () => server.close() };
  }
  const server = createServer((request, response) => {
    const id = String(request.headers["idempotency-key"]);
    request.resume();
    request.on("end", () => {
      count(id);
      response.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    deliveries,
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One effects trial: http effects executed and acknowledged per second against a local sink. */
export async function effectsTrial(count: number): Promise<{ perSecond: number; deliveredTwice: number; ackEntries: number }> {
  const sink = await startCountingSink();
  const { url, deliveries } = sink;
  try {
    const { executor, entries } = newBank(100, url);
    for (let i = 0; i < count; i++) {
      executor.commit(entries.next(operationEvent, encodeEvent({ type: "transfer", from: `acct-${i % 100}`, to: `acct-${(i + 1) % 100}`, amount: 1 })));
    }
    let runner: EffectRunner | null = null;
    let ackEntries = 0;
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    const start = performance.now();
    runner = new EffectRunner({
      executor,
      view: 1,
      isPrimary: () => true,
      inFlightMax: 128,
      submit(operation, body) {
        ackEntries++;
        executor.commit(entries.next(operation, body, true));
        if (executor.outboxSize === 0) done();
        queueMicrotask(() => runner?.wake());
        return Promise.resolve();
      },
    });
    runner.start();
    await finished;
    const seconds = (performance.now() - start) / 1000;
    runner.stop();
    await runner.idle();
    let twice = 0;
    for (const n of deliveries.values()) if (n > 1) twice++;
    if (deliveries.size !== count) throw new Error(`sink saw ${deliveries.size} ids, expected ${count}`);
    return { perSecond: count / seconds, deliveredTwice: twice, ackEntries };
  } finally {
    await sink.close();
  }
}

function checkpointTrial(accounts: number) {
  const { executor } = newBank(accounts, null);
  let start = performance.now();
  const snapshot = executor.snapshot();
  const writeMs = performance.now() - start;
  start = performance.now();
  const restored = new Executor(bank);
  restored.restore(snapshot);
  const restoreMs = performance.now() - start;
  start = performance.now();
  const hash = executor.stateHash();
  const hashMs = performance.now() - start;
  return { bytes: snapshot.length, writeMs, restoreMs, hashMs, equal: checksumHex(hash) === checksumHex(restored.stateHash()) };
}

/** Runs the kernel benchmarks and prints their figures next to the targets. */
export async function benchKernel(options: BenchKernelOptions = {}): Promise<BenchKernelResult> {
  const events = options.events ?? 200_000;
  const trials = options.trials ?? 3;
  const say = (line: string) => {
    if (options.json !== true) console.log(line);
  };
  say(`chronon bench kernel on ${runtimeName()} ${runtimeVersion()}`);
  const applyTrials: number[] = [];
  for (let t = 0; t < trials; t++) applyTrials.push(applyTrial(events, t + 1));
  const applyRate = median(applyTrials);
  say(`apply       ${Math.round(applyRate).toLocaleString("en-US")} bank events/s (median of ${trials}: ${applyTrials.map((r) => Math.round(r)).join(", ")})  target ≥ 200,000/s  ${applyRate >= 200_000 ? "ok" : "BELOW"}`);
  // Each effects trial starts a sink and a runner of its own: the first pays for warming
  // up the HTTP client, as a primary does once after it starts.
  const effectsTrials: number[] = [];
  let deliveredTwice = 0;
  for (let t = 0; t < trials; t++) {
    const trial = await effectsTrial(options.effects ?? 10_000);
    effectsTrials.push(trial.perSecond);
    deliveredTwice += trial.deliveredTwice;
  }
  const effectsRate = median(effectsTrials);
  say(`effects     ${Math.round(effectsRate).toLocaleString("en-US")} http effects executed+acknowledged/s (median of ${trials}: ${effectsTrials.map((r) => Math.round(r)).join(", ")}; ids delivered twice: ${deliveredTwice})  target ≥ 5,000/s  ${effectsRate >= 5000 ? "ok" : "BELOW"}`);
  const accounts = options.accounts ?? 100_000;
  const cp = checkpointTrial(accounts);
  say(`checkpoint  ${accounts.toLocaleString("en-US")} accounts, ${(cp.bytes / 1e6).toFixed(1)} MB: write ${cp.writeMs.toFixed(0)} ms, restore ${cp.restoreMs.toFixed(0)} ms, state hash ${cp.hashMs.toFixed(0)} ms, hash equal after restore: ${cp.equal}  target < 1000 ms each  ${cp.writeMs < 1000 && cp.restoreMs < 1000 ? "ok" : "BELOW"}`);
  const load = new KvLoad(options.kvClients ?? 64);
  // Fill the store, then warm up: every trial overwrites a full store.
  load.put(load.keys);
  load.put(load.keys);
  const kvTrials: number[] = [];
  for (let t = 0; t < trials; t++) kvTrials.push(kvPutTrial(load, load.keys));
  const kvMicros = median(kvTrials);
  say(`kv          ${kvMicros.toFixed(2)} µs of CPU per put, ${load.clients} clients × 1,024 keys (median of ${trials}: ${kvTrials.map((r) => r.toFixed(2)).join(", ")})`);
  const kvCp = kvCheckpointTrial(load, 256 * 1024, 64);
  say(`kv checkpoint ${(kvCp.bytes / 1e6).toFixed(1)} MB: snapshot() ${kvCp.snapshotMs.toFixed(0)} ms in one pause; beginSnapshot ${kvCp.steps} steps of 256 KiB between puts, median ${kvCp.stepMedianMs.toFixed(2)} ms, longest ${kvCp.stepMaxMs.toFixed(1)} ms, ${kvCp.stepsTotalMs.toFixed(0)} ms in all, bytes identical: ${kvCp.identical}`);
  const result: BenchKernelResult = {
    runtime: `${runtimeName()} ${runtimeVersion()}`,
    applyEventsPerSecond: Math.round(applyRate),
    applyTrials: applyTrials.map(Math.round),
    effectsPerSecond: Math.round(effectsRate),
    effectsTrials: effectsTrials.map(Math.round),
    effectsDeliveredTwice: deliveredTwice,
    checkpointAccounts: accounts,
    checkpointBytes: cp.bytes,
    checkpointWriteMs: Math.round(cp.writeMs),
    checkpointRestoreMs: Math.round(cp.restoreMs),
    stateHashMs: Math.round(cp.hashMs),
    stateHashEqualAfterRestore: cp.equal,
    kvKeys: load.keys,
    kvPutMicros: Number(kvMicros.toFixed(3)),
    kvPutTrials: kvTrials.map((r) => Number(r.toFixed(3))),
    kvSnapshotMs: Number(kvCp.snapshotMs.toFixed(1)),
    kvSnapshotSteps: kvCp.steps,
    kvSnapshotStepMedianMs: Number(kvCp.stepMedianMs.toFixed(3)),
    kvSnapshotStepMaxMs: Number(kvCp.stepMaxMs.toFixed(2)),
    kvSnapshotStepsTotalMs: Number(kvCp.stepsTotalMs.toFixed(1)),
    kvSnapshotIdentical: kvCp.identical,
  };
  if (options.json === true) console.log(JSON.stringify(result));
  return result;
}

function positive(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer`);
  return n;
}

/** `chronon bench kernel`. */
export const bench: BenchTarget = {
  summary: "executor events/s, effects/s against a local HTTP sink, checkpoint times",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        json: { type: "boolean" },
        events: { type: "string" },
        effects: { type: "string" },
        accounts: { type: "string" },
        "kv-clients": { type: "string" },
        trials: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help === true) {
      console.log(usage);
      return 0;
    }
    const options: { -readonly [K in keyof BenchKernelOptions]: BenchKernelOptions[K] } = { json: values.json === true };
    const events = positive(values.events, "events");
    const effects = positive(values.effects, "effects");
    const accounts = positive(values.accounts, "accounts");
    const trials = positive(values.trials, "trials");
    const kvClients = positive(values["kv-clients"], "kv-clients");
    if (kvClients !== undefined) options.kvClients = kvClients;
    if (events !== undefined) options.events = events;
    if (effects !== undefined) options.effects = effects;
    if (accounts !== undefined) options.accounts = accounts;
    if (trials !== undefined) options.trials = trials;
    const result = await benchKernel(options);
    return result.stateHashEqualAfterRestore && result.kvSnapshotIdentical ? 0 : 1;
  },
};
