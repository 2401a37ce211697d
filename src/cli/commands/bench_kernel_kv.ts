/**
 * The kv trials of `chronon bench kernel`: the load of `chronon bench cluster` (clients
 * with ids of their own, interleaved, each putting a 256-character value to its own 1,024
 * keys) applied by one executor, as every replica applies it; and the checkpoint of that
 * state, taken at one op and encoded in steps while puts go on (`beginSnapshot`).
 * @module
 */
import kv from "../../../examples/kv.ts";
import { encodeEvent, operationEvent } from "../../app/wire.ts";
import { Executor } from "../../kernel/executor.ts";
import type { CommittedEntry } from "../../vsr/state_machine.ts";

/** Keys each client puts to, round robin (as bench cluster's worker). */
export const kvKeysPerClient = 1024;

/** An executor over examples/kv.ts fed the cluster bench's puts. */
export class KvLoad {
  readonly executor = new Executor(kv);
  readonly #bodies: Uint8Array[] = [];
  readonly #clientIds: Uint8Array[] = [];
  readonly #requests: number[];
  readonly #checksum = new Uint8Array(16);
  readonly #checksumView = new DataView(this.#checksum.buffer);
  #op = 0;

  constructor(readonly clients: number, valueLength = 256) {
    const value = "x".repeat(valueLength);
    for (let c = 0; c < clients; c++) {
      const id = new Uint8Array(16);
      id[0] = 1;
      new DataView(id.buffer).setUint32(12, c);
      this.#clientIds.push(id);
    }
    this.#requests = new Array<number>(clients).fill(0);
    // One body per (client, key), encoded before timing (encoding is the client's work);
    // the replica hands the executor one such body per entry.
    for (let i = 0; i < clients * kvKeysPerClient; i++) {
      const c = i % clients;
      const n = Math.floor(i / clients);
      this.#bodies.push(encodeEvent({ type: "put", key: `c${c}k${n % kvKeysPerClient}`, value }).slice());
    }
  }

  /** Distinct keys once every client put to each of its own. */
  get keys(): number {
    return this.#bodies.length;
  }

  /** Commits `count` puts, clients interleaved; returns how many were applied. */
  put(count: number): number {
    let applied = 0;
    const bodies = this.#bodies;
    for (let k = 0; k < count; k++) {
      const i = this.#op % bodies.length;
      const c = i % this.clients;
      this.#op++;
      // Unique per entry, like the header checksum the replica hands over.
      this.#checksumView.setFloat64(0, this.#op);
      const entry: CommittedEntry = {
        op: this.#op,
        view: 1,
        timestamp: 1_700_000_000_000 + this.#op,
        client: this.#clientIds[c]!,
        request: ++this.#requests[c]!,
        operation: operationEvent,
        body: bodies[i]!,
        checksum: this.#checksum,
      };
      const reply = this.executor.commit(entry);
      // `{ ok: true, …`: a0+3 keys, "ok", true.
      if (reply[0] === 0xa3 && reply[1] === 0x62 && reply[4] === 0xf5) applied++;
    }
    return applied;
  }
}

/** CPU microseconds so far (wall time where the runtime has no process.cpuUsage). */
function cpuMicros(): number {
  const usage = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process?.cpuUsage?.();
  return usage !== undefined ? usage.user + usage.system : performance.now() * 1000;
}

/** µs of CPU per put over `puts` puts on a warm, full store; throws unless all applied. */
export function kvPutTrial(load: KvLoad, puts: number): number {
  const start = cpuMicros();
  const applied = load.put(puts);
  const micros = cpuMicros() - start;
  if (applied !== puts) throw new Error(`kv trial: ${applied} of ${puts} puts applied`);
  return micros / puts;
}

/** Figures of one incremental checkpoint of the kv store. */
export interface KvCheckpointTrial {
  readonly bytes: number;
  /** One `snapshot()`: the pause the replica takes today. */
  readonly snapshotMs: number;
  readonly steps: number;
  readonly stepMedianMs: number;
  readonly stepMaxMs: number;
  readonly stepsTotalMs: number;
  /** The job's bytes equal `snapshot()` taken at its op. */
  readonly identical: boolean;
}

/** A snapshot of the store, then a job begun at the same op and stepped between puts. */
export function kvCheckpointTrial(load: KvLoad, budgetBytes: number, putsPerStep: number): KvCheckpointTrial {
  const executor = load.executor;
  let start = performance.now();
  const reference = executor.snapshot();
  const snapshotMs = performance.now() - start;
  const job = executor.beginSnapshot();
  const stepMs: number[] = [];
  for (;;) {
    load.put(putsPerStep);
    start = performance.now();
    const done = job.step(budgetBytes);
    stepMs.push(performance.now() - start);
    if (done) break;
  }
  const bytes = job.result();
  let identical = bytes.length === reference.length;
  for (let i = 0; identical && i < bytes.length; i++) identical = bytes[i] === reference[i];
  const sorted = [...stepMs].sort((a, b) => a - b);
  return {
    bytes: bytes.length,
    snapshotMs,
    steps: stepMs.length,
    stepMedianMs: sorted[Math.floor(sorted.length / 2)]!,
    stepMaxMs: sorted[sorted.length - 1]!,
    stepsTotalMs: stepMs.reduce((a, b) => a + b, 0),
    identical,
  };
}
