/**
 * A tiny deterministic harness for the replica: in-memory disks whose actions complete
 * when the test says so, a message queue the test delivers (or drops) message by message,
 * and an append-only list as the state machine. No clock, no randomness.
 */
import { decode as cborDecode, encode as cborEncode } from "cborg";
import { concatBytes } from "../src/codec/bytes.ts";
import { checksum } from "../src/codec/checksum.ts";
import { decodeHeader, verifyBody, verifyHeader } from "../src/codec/entry_header.ts";
import { freshRecoveredState, Replica } from "../src/vsr/replica.ts";
import type { ClientReply, RecoveredState, ReplicaConfig, StorageAction, SuperblockState } from "../src/vsr/replica_api.ts";
import type { CommittedEntry, SnapshotJob, StateMachine } from "../src/vsr/state_machine.ts";

/** An append-only list: every committed body is appended as text. */
export class ListMachine implements StateMachine {
  items: string[] = [];
  applied: number[] = [];
  commit(entry: CommittedEntry): Uint8Array {
    this.items.push(new TextDecoder().decode(entry.body));
    this.applied.push(entry.op);
    return new TextEncoder().encode(`ok:${this.items.length}`);
  }
  query(body: Uint8Array): Uint8Array {
    const text = new TextDecoder().decode(body);
    if (text === "throw") throw new Error("bad query");
    return new TextEncoder().encode(JSON.stringify(this.items));
  }
  stateHash(): Uint8Array {
    return checksum(new TextEncoder().encode(JSON.stringify(this.items)));
  }
  snapshot(): Uint8Array {
    return cborEncode(this.items);
  }
  restore(snapshot: Uint8Array): void {
    this.items = cborDecode(snapshot) as string[];
  }
}

/**
 * A ListMachine whose snapshot is a job of `steps` steps (StateMachine.beginSnapshot): the
 * bytes are fixed when it begins, so a replica that writes them after later commits still
 * writes the state at the checkpoint's op. Counts jobs begun, stepped and aborted.
 */
export class SteppedListMachine extends ListMachine {
  /** Jobs begun, steps taken, jobs aborted. */
  readonly jobs = { begun: 0, steps: 0, aborted: 0 };
  /** What each job was handed as `reuse`, and each job's result, in order. */
  readonly reused: (Uint8Array | undefined)[] = [];
  readonly results: Uint8Array[] = [];
  constructor(readonly steps: number) {
    super();
  }
  beginSnapshot(reuse?: Uint8Array): SnapshotJob {
    const bytes = this.snapshot();
    const counts = this.jobs;
    counts.begun++;
    this.reused.push(reuse);
    this.results.push(bytes);
    let left = this.steps;
    let state: "running" | "done" | "aborted" = "running";
    return {
      get done() {
        return state === "done";
      },
      step(budgetBytes: number): boolean {
        if (state === "aborted") throw new Error("stepped after abort");
        if (!(budgetBytes > 0)) throw new Error("a step needs a budget");
        counts.steps++;
        if (--left <= 0) state = "done";
        return state === "done";
      },
      result(): Uint8Array {
        if (state !== "done") throw new Error("result before done");
        return bytes;
      },
      abort(): void {
        state = "aborted";
        counts.aborted++;
      },
    };
  }
}

/** One replica's in-memory disk. */
export class MemoryDisk {
  entries = new Map<number, { header: Uint8Array; body: Uint8Array }>();
  superblock: SuperblockState = freshRecoveredState().superblock;
  checkpoint: { op: number; bytes: Uint8Array } | null = null;
  /** Actions started but not completed (lost on a crash). */
  pending: StorageAction[] = [];

  apply(action: StorageAction): { header: Uint8Array; body: Uint8Array } | null | undefined {
    switch (action.kind) {
      case "write_entry":
      case "repair_entry":
        this.entries.set(action.op, { header: action.header.slice(), body: action.body.slice() });
        return undefined;
      case "truncate":
        for (const op of [...this.entries.keys()]) if (op > action.op) this.entries.delete(op);
        return undefined;
      case "read_entry": {
        const e = this.entries.get(action.op);
        return e === undefined ? null : { header: e.header.slice(), body: e.body.slice() };
      }
      case "write_superblock":
        this.superblock = action.superblock;
        return undefined;
      case "write_checkpoint":
        this.checkpoint = { op: action.op, bytes: concatBytes(action.checkpoint) };
        return undefined;
      case "release":
        for (const op of [...this.entries.keys()]) if (op < action.op) this.entries.delete(op);
        return undefined;
    }
  }

  /** What storage recovery would report: verified headers, faulty ops. */
  recover(intact = true): RecoveredState {
    const base = this.checkpoint?.op ?? 0;
    const headers: Uint8Array[] = [];
    const faultyOps: number[] = [];
    for (const op of [...this.entries.keys()].sort((a, b) => a - b)) {
      if (op <= base) continue;
      const e = this.entries.get(op)!;
      if (verifyHeader(e.header) !== null || !verifyBody(decodeHeader(e.header), e.body)) faultyOps.push(op);
      else headers.push(e.header);
    }
    return { superblock: this.superblock, checkpoint: this.checkpoint, headers, faultyOps, intact };
  }

  /** Flips a bit in the body of `op` (latent corruption). */
  corrupt(op: number): void {
    const e = this.entries.get(op)!;
    const body = e.body.length > 0 ? e.body.slice() : new Uint8Array([1]);
    body[0] = body[0]! ^ 1;
    this.entries.set(op, { header: e.header, body });
  }
}

/** A message in flight. */
export interface Flight {
  readonly from: number;
  readonly to: number;
  readonly bytes: Uint8Array;
}

/** Harness options. */
export interface ClusterOptions {
  readonly replicaCount: number;
  readonly config?: Partial<ReplicaConfig>;
  /** Makes each replica's state machine (default: a ListMachine). */
  readonly machine?: () => ListMachine;
}

/** The test cluster id. */
export const testCluster = new Uint8Array(16).fill(7);

/** A client id with `n` in its first byte. */
export function clientId(n: number): Uint8Array {
  const id = new Uint8Array(16);
  id[0] = n;
  id[15] = 1;
  return id;
}

/** Encodes text. */
export function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Decodes text. */
export function untext(b: Uint8Array | undefined): string {
  return b === undefined ? "<none>" : new TextDecoder().decode(b);
}

/** A cluster of replicas stepped by the test. */
export class Cluster {
  readonly n: number;
  readonly config: (r: number) => ReplicaConfig;
  replicas: (Replica | null)[] = [];
  machines: ListMachine[] = [];
  disks: MemoryDisk[] = [];
  net: Flight[] = [];
  replies: ClientReply[] = [];
  /** Links that drop messages: "from>to". */
  readonly cut = new Set<string>();
  nowMs = 1_000_000;
  #token = 1;
  readonly #machine: () => ListMachine;

  constructor(options: ClusterOptions) {
    this.n = options.replicaCount;
    this.#machine = options.machine ?? (() => new ListMachine());
    this.config = (r) => ({
      cluster: testCluster, replica: r, replicaCount: this.n, checkpointIntervalOps: 1000, clientSessionsMax: 16,
      pipelineMax: 4, batchRequestsMax: 8, timeoutPrimaryTicks: 20, heartbeatTicks: 4, ...options.config,
    });
    for (let r = 0; r < this.n; r++) {
      this.disks.push(new MemoryDisk());
      this.machines.push(this.#machine());
      this.replicas.push(new Replica(this.config(r), this.machines[r]!, freshRecoveredState()));
    }
    this.pump();
  }

  replica(r: number): Replica {
    const replica = this.replicas[r];
    if (replica === null || replica === undefined) throw new Error(`replica ${r} is down`);
    return replica;
  }

  /** Collects ready() output of every live replica. */
  pump(): void {
    for (let r = 0; r < this.n; r++) {
      const replica = this.replicas[r];
      if (replica === null || replica === undefined) continue;
      const ready = replica.ready();
      this.disks[r]!.pending.push(...ready.storage);
      for (const m of ready.messages) this.net.push({ from: r, to: m.to, bytes: m.bytes });
      this.replies.push(...ready.replies);
    }
  }

  /** Completes every pending storage action of replica `r` (in order). */
  completeStorage(r: number): void {
    const disk = this.disks[r]!;
    while (disk.pending.length > 0) {
      const action = disk.pending.shift()!;
      const entry = disk.apply(action);
      const replica = this.replicas[r];
      if (replica === null || replica === undefined) return;
      replica.storageDone(action.id, action.kind === "read_entry" ? { ok: true, entry: entry ?? null } : { ok: true });
      this.pump();
    }
  }

  /** Delivers one message (or drops it when its link is cut or the target is down). */
  deliverOne(flight: Flight): void {
    const target = this.replicas[flight.to];
    if (target === null || target === undefined || this.cut.has(`${flight.from}>${flight.to}`)) return;
    target.receive(flight.bytes);
    this.pump();
  }

  /** Runs storage and delivery until nothing is left (bounded), optionally dropping some. */
  settle(drop: (f: Flight) => boolean = () => false, stepsMax = 100_000): void {
    for (let step = 0; step < stepsMax; step++) {
      let progress = false;
      for (let r = 0; r < this.n; r++) {
        if (this.disks[r]!.pending.length > 0 && this.replicas[r] !== null) {
          this.completeStorage(r);
          progress = true;
        }
      }
      const flight = this.net.shift();
      if (flight !== undefined) {
        progress = true;
        if (!drop(flight)) this.deliverOne(flight);
      }
      if (!progress) return;
    }
    throw new Error("cluster did not settle");
  }

  /** Ticks every live replica `count` times, settling after each tick. */
  tick(count = 1, drop?: (f: Flight) => boolean): void {
    for (let i = 0; i < count; i++) {
      this.nowMs += 10;
      for (const replica of this.replicas) replica?.tick(this.nowMs);
      this.pump();
      this.settle(drop);
    }
  }

  /** Sends a client request to replica `r`; returns its token. */
  request(r: number, client: Uint8Array, request: number, body: string, operation = 16): number {
    const token = this.#token++;
    this.replica(r).request({ client, request, operation, body: text(body), token });
    this.pump();
    return token;
  }

  /** Sends a query to replica `r`; returns its token. */
  query(r: number, body: string, mode: "linearizable" | "stale"): number {
    const token = this.#token++;
    this.replica(r).query({ body: text(body), mode, token });
    this.pump();
    return token;
  }

  /** The reply for `token`, if any. */
  reply(token: number): ClientReply | undefined {
    return this.replies.find((r) => r.token === token);
  }

  /** Registers `client` at primary `p` and returns after its reply. */
  register(p: number, client: Uint8Array): void {
    const token = this.request(p, client, 0, "");
    this.settle();
    const reply = this.reply(token);
    if (reply === undefined || reply.error !== undefined) throw new Error(`register failed: ${JSON.stringify(reply)}`);
  }

  /** Crashes replica `r`: in-flight storage and messages to it are lost. */
  crash(r: number): void {
    this.replicas[r] = null;
    this.disks[r]!.pending = [];
    this.net = this.net.filter((f) => f.to !== r && f.from !== r);
  }

  /** Restarts replica `r` from its disk (or from an empty one when `wipe`). */
  restart(r: number, options: { wipe?: boolean } = {}): void {
    if (options.wipe === true) this.disks[r] = new MemoryDisk();
    this.machines[r] = this.#machine();
    const recovered = this.disks[r]!.recover(options.wipe !== true);
    this.replicas[r] = new Replica(this.config(r), this.machines[r]!, recovered);
    this.pump();
  }

  /** The primary as the live normal replicas see it (the one claiming it), or -1. */
  primary(): number {
    for (let r = 0; r < this.n; r++) {
      const s = this.replicas[r]?.status();
      if (s !== undefined && s.status === "normal" && s.primary === r) return r;
    }
    return -1;
  }

  /** Ops applied per live replica. */
  commits(): number[] {
    return this.replicas.map((x) => x?.status().commit ?? -1);
  }

  /** Asserts every pair of live replicas agrees on the common applied prefix. */
  agree(): void {
    for (let a = 0; a < this.n; a++) {
      for (let b = a + 1; b < this.n; b++) {
        if (this.replicas[a] === null || this.replicas[b] === null) continue;
        const ia = this.machines[a]!.items;
        const ib = this.machines[b]!.items;
        const common = Math.min(ia.length, ib.length);
        for (let i = 0; i < common; i++) {
          if (ia[i] !== ib[i]) throw new Error(`replicas ${a} and ${b} disagree at item ${i}: ${ia[i]} vs ${ib[i]}`);
        }
      }
    }
  }
}
