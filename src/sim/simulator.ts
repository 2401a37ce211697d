/**
 * One simulated run: a cluster of replicas, clients, a network and disks in virtual time,
 * all driven by one seed. A SAFETY phase injects faults (crashes and restarts, partitions,
 * loss, duplication, replay, torn writes, bit flips and misdirected writes on a minority,
 * lost disks, clock skew); a LIVENESS phase then heals the network, restarts every
 * replica, stops new faults and demands that every request completes within a bound and
 * that every replica converges. The checkers (checkers.ts) run throughout; the first
 * violation ends the run and is reported with the seed.
 * @module
 */
import { assert } from "../assert.ts";
import { checksumEqual, checksumHex } from "../codec/checksum.ts";
import type {
  ClientQuery, ClientReply, ClientRequest, RecoveredState, ReplicaConfig, ReplicaCore,
} from "../vsr/replica_api.ts";
import type { SimWorkload } from "./workload.ts";
import type { CommittedEntry, SnapshotJob, StateMachine } from "../vsr/state_machine.ts";
import type { CheckerName } from "./checkers.ts";
import { checkLinearizable, checkLiveness, CommitChecker, StateHashChecker, Violation } from "./checkers.ts";
import type { ClientSend, ClientWorld } from "./client.ts";
import { clientsMax, SimClient } from "./client.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import { Network } from "./network.ts";
import { Prng } from "./prng.ts";
import { SimStorage } from "./storage.ts";
import type { FaultProfile } from "./swarm.ts";
import { calmNetwork, calmStorage, pickFaultProfile } from "./swarm.ts";
import { Trace } from "./trace.ts";
import { describeAction, describeMessage } from "./describe.ts";

/** Builds a replica from its configuration, state machine and what its disk held. */
export type ReplicaFactory = (config: ReplicaConfig, stateMachine: StateMachine, recovered: RecoveredState) => ReplicaCore;

/** What to simulate. */
export interface SimOptions {
  readonly seed: number;
  readonly replicaCount: number;
  /** Client requests in the whole run (safety and liveness phases). */
  readonly requestCount: number;
  readonly factory: ReplicaFactory;
  /** Keep printable trace lines (the hash is always computed). */
  readonly traceLines?: boolean;
  /** Faults on (default); off gives a calm run (for tests of the plumbing). */
  readonly faults?: boolean;
  /** Override the fault profile picked from the seed. */
  readonly profile?: FaultProfile;
  /** Another state machine, clients and checkers (default: the kv store and its clients). */
  readonly workload?: SimWorkload;
}

/** Virtual milliseconds per tick. */
export const tickMs = 10;
/** Ticks a request may stay open after the faults stopped (liveness bound). */
export const livenessRequestTicksMax = 3_000;
/** Ticks the replicas have to converge once the clients are done. */
export const convergenceTicksMax = 3_000;
/** Ticks of the safety phase at most (it ends earlier once most requests were issued). */
export const safetyTicksMax = 200_000;
/** The clock of the cluster at tick 0 (a fixed epoch: the simulator never reads a clock). */
export const epochMs = 1_700_000_000_000;

/** What a run did. */
export interface SimStats {
  ticks: number;
  healTick: number;
  requestsCompleted: number;
  requestsUnknown: number;
  requestsFailed: number;
  commitOpMax: number;
  commitsRecorded: number;
  viewMax: number;
  viewChanges: number;
  crashes: number;
  restarts: number;
  partitions: number;
  bitFlips: number;
  misdirects: number;
  tornWrites: number;
  lostDisks: number;
  messagesSent: number;
  messagesLost: number;
  messagesDuplicated: number;
  messagesReplayed: number;
  messagesPartitioned: number;
  historyEvents: number;
  lincheck: "linearizable" | "unknown" | "not-run";
}

/** The outcome of a run. */
export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure?: { readonly checker: CheckerName; readonly message: string };
  readonly traceHash: string;
  readonly traceLines: string[] | null;
  readonly stats: SimStats;
  readonly profile: FaultProfile;
  /** The workload's own counters (absent for the kv workload). */
  readonly workloadStats?: Readonly<Record<string, number>>;
}

type Payload =
  | { readonly kind: "replica"; readonly bytes: Uint8Array }
  | { readonly kind: "request"; readonly request: ClientRequest }
  | { readonly kind: "query"; readonly query: ClientQuery }
  | { readonly kind: "reply"; readonly reply: ClientReply };

/** Bytes a simulated stepped snapshot encodes per replica turn (see CheckedStateMachine). */
const simSnapshotStepBytes = 256;

/** A state machine that reports every commit to the checkers. */
class CheckedStateMachine implements StateMachine {
  /** The inner machine's stepped snapshot, when it has one (so runs exercise it). */
  readonly beginSnapshot?: (reuse?: Uint8Array) => SnapshotJob;
  constructor(
    private readonly inner: StateMachine,
    private readonly replica: number,
    private readonly run: Simulation,
  ) {
    if (inner.beginSnapshot !== undefined) {
      this.beginSnapshot = (reuse) => {
        const job = inner.beginSnapshot!(reuse);
        // Simulated states are kilobytes: steps this small spread a job over many turns
        // and commits (and faults), where the replica's 256 KiB would finish it at once.
        return {
          get done() {
            return job.done;
          },
          step: (budgetBytes) => job.step(Math.min(budgetBytes, simSnapshotStepBytes)),
          result: () => job.result(),
          abort: () => job.abort(),
        };
      };
    }
  }
  commit(entry: CommittedEntry): Uint8Array {
    const reply = this.inner.commit(entry);
    this.run.onCommit(this.replica, entry, this.inner.stateHash());
    return reply;
  }
  query(body: Uint8Array): Uint8Array {
    return this.inner.query(body);
  }
  stateHash(): Uint8Array {
    return this.inner.stateHash();
  }
  snapshot(): Uint8Array {
    return this.inner.snapshot();
  }
  restore(snapshot: Uint8Array): void {
    this.inner.restore(snapshot);
  }
}

/** A simulated client as the run drives it (the kv SimClient, or a workload's). */
export interface SimClientLike {
  readonly index: number;
  /** Nothing open and nothing left to do. */
  readonly idle: boolean;
  tick(now: number, sends: ClientSend[]): void;
  receive(now: number, reply: ClientReply): void;
  outstanding(): { invokedTick: number; description: string } | null;
}

interface ReplicaSlot {
  core: ReplicaCore | null;
  readonly storage: SimStorage;
  skewMs: number;
  restartAtTick: number;
  viewSeen: number;
  /** Last (view, status) put in the trace. */
  viewTraced: number;
  statusTraced: number;
}

/** Runs one seed; never throws for a replica bug (that is a `crash` failure). */
export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

/** The state of one run (exported for tests that drive it step by step). */
export class Simulation {
  readonly prng: Prng;
  readonly profile: FaultProfile;
  readonly trace: Trace;
  readonly network: Network<Payload>;
  readonly replicas: ReplicaSlot[] = [];
  readonly clients: SimClientLike[] = [];
  readonly world: ClientWorld;
  readonly commits = new CommitChecker();
  readonly stateHashes = new StateHashChecker();
  readonly config: Omit<ReplicaConfig, "replica">;
  private readonly nemesis: Prng;
  private now = 0;
  private healTick = -1;
  private partitionHealTick = -1;
  private readonly stats: SimStats;
  private readonly sends: ClientSend[] = [];

  constructor(readonly options: SimOptions) {
    const { seed, replicaCount, requestCount } = options;
    assert(replicaCount === 1 || replicaCount === 3 || replicaCount === 5, `replica count ${replicaCount} (1, 3 or 5)`);
    assert(Number.isSafeInteger(requestCount) && requestCount >= 1, "request count");
    this.prng = new Prng(seed);
    const profilePrng = this.prng.fork(1);
    this.nemesis = this.prng.fork(2);
    const networkPrng = this.prng.fork(3);
    const clientPrng = this.prng.fork(4);
    const storagePrng = this.prng.fork(5);
    const picked = options.profile ?? pickFaultProfile(profilePrng, replicaCount);
    this.profile = options.faults === false ? noFaults(picked) : picked;
    this.trace = new Trace(options.traceLines === true);
    const clientCount = Math.min(clientsMax, 2 + this.prng.int(7));
    const cluster = new Uint8Array(16);
    for (let i = 0; i < 16; i++) cluster[i] = this.prng.int(256);
    this.config = {
      cluster,
      replicaCount,
      checkpointIntervalOps: this.prng.pick([16, 64, 256]),
      clientSessionsMax: clientCount * 2 + 8,
      pipelineMax: this.prng.pick([1, 4, 8]),
      batchRequestsMax: this.prng.pick([1, 4, 16]),
      timeoutPrimaryTicks: 50,
      heartbeatTicks: 10,
    };
    this.network = new Network(replicaCount + clientCount, this.profile.network, networkPrng);
    const faulty = this.nemesis.shuffle([...Array(replicaCount).keys()]).slice(0, this.profile.faultyReplicaCount);
    for (let r = 0; r < replicaCount; r++) {
      const storage = new SimStorage(r, cluster, this.profile.storage, faulty.includes(r), storagePrng.fork(r));
      this.replicas.push({ core: null, storage, skewMs: this.pickSkew(), restartAtTick: 0, viewSeen: 0, viewTraced: -1, statusTraced: -1 });
    }
    this.world = {
      replicaCount, events: [], historyClock: 0, valueNext: 1, requestsLeft: requestCount,
      requestsCompleted: 0, requestsUnknown: 0, requestsFailed: 0, mayGiveUp: true,
    };
    const keyCount = 1 + this.prng.int(5);
    const keys = [...Array(keyCount).keys()].map((k) => `k${k}`);
    for (let c = 0; c < clientCount; c++) {
      const timeoutTicks = 40 + this.prng.int(80);
      this.clients.push(
        options.workload === undefined
          ? new SimClient(c, this.world, keys, timeoutTicks, this.profile.clientAttemptsMax, clientPrng.fork(c))
          : options.workload.client(c, this.world, timeoutTicks, this.profile.clientAttemptsMax, clientPrng.fork(c)),
      );
    }
    this.stats = {
      ticks: 0, healTick: -1, requestsCompleted: 0, requestsUnknown: 0, requestsFailed: 0, commitOpMax: 0,
      commitsRecorded: 0, viewMax: 0, viewChanges: 0, crashes: 0, restarts: 0, partitions: 0, bitFlips: 0,
      misdirects: 0, tornWrites: 0, lostDisks: 0, messagesSent: 0, messagesLost: 0, messagesDuplicated: 0,
      messagesReplayed: 0, messagesPartitioned: 0, historyEvents: 0, lincheck: "not-run",
    };
  }

  private pickSkew(): number {
    const max = this.profile.clockSkewMsMax;
    return max === 0 ? 0 : this.nemesis.range(-max, max);
  }

  /** Called by a replica's state machine for every committed entry. */
  onCommit(replica: number, entry: CommittedEntry, stateHash: Uint8Array): void {
    const detail = this.trace.lines === null ? undefined : `view ${entry.view} ${checksumHex(entry.checksum).slice(0, 12)}`;
    this.trace.event(this.now, "commit", replica, entry.op, entry.operation, entry.checksum, detail);
    this.commits.record(replica, entry.op, entry.checksum);
    this.stateHashes.record(replica, entry.op, stateHash);
  }

  /** Runs the whole scenario and the checkers. */
  run(): SimResult {
    let failure: SimResult["failure"];
    try {
      for (let r = 0; r < this.replicas.length; r++) this.start(r);
      this.safetyPhase();
      this.livenessPhase();
      this.finalChecks();
    } catch (error) {
      if (error instanceof Violation) {
        failure = { checker: error.checker, message: error.message };
      } else {
        const message = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
        failure = { checker: "crash", message };
      }
      this.trace.event(this.now, "failure", 0, 0, 0, undefined, failure.message.split("\n")[0]);
    }
    this.collectStats();
    const result: SimResult = {
      seed: this.options.seed,
      ok: failure === undefined,
      traceHash: this.trace.hash(),
      traceLines: this.trace.lines,
      stats: this.stats,
      profile: this.profile,
      ...(failure === undefined ? {} : { failure }),
      ...(this.options.workload === undefined ? {} : { workloadStats: this.options.workload.stats() }),
    };
    return result;
  }

  private safetyPhase(): void {
    // The safety phase ends once 80% of the requests were started (or at a tick bound).
    const startedEnough = () => this.world.requestsLeft <= Math.floor(this.options.requestCount * 0.2);
    while (this.now < safetyTicksMax && !startedEnough()) {
      this.nemesisStep();
      this.step();
    }
  }

  private livenessPhase(): void {
    this.healTick = this.now;
    this.stats.healTick = this.now;
    this.trace.event(this.now, "heal");
    this.world.mayGiveUp = false;
    this.network.heal();
    this.network.options = calmNetwork(this.network.options);
    for (let r = 0; r < this.replicas.length; r++) {
      const slot = this.replicas[r]!;
      slot.storage.options = calmStorage(slot.storage.options);
      if (slot.core === null) this.start(r);
    }
    const outstanding = () =>
      this.clients.flatMap((c) => {
        const o = c.outstanding();
        return o === null ? [] : [{ client: c.index, ...o }];
      });
    while (this.world.requestsLeft > 0 || !this.clients.every((c) => c.idle)) {
      this.step();
      if (this.now % 100 === 0) checkLiveness(outstanding(), this.now, this.healTick, livenessRequestTicksMax);
    }
    checkLiveness(outstanding(), this.now, this.healTick, livenessRequestTicksMax);
    // Convergence: every replica applies everything committed.
    const doneTick = this.now;
    for (;;) {
      const target = this.commits.opMax;
      const lagging = this.replicas.filter((slot) => slot.core!.status().commit < target);
      const workloadPending = lagging.length === 0 ? (this.options.workload?.pending(this) ?? null) : null;
      if (lagging.length === 0 && workloadPending === null) break;
      if (this.now - doneTick > convergenceTicksMax && workloadPending !== null) {
        throw new Violation("liveness", `${convergenceTicksMax} ticks after the clients finished: ${workloadPending}`);
      }
      if (this.now - doneTick > convergenceTicksMax) {
        const s = lagging[0]!.core!.status();
        throw new Violation(
          "liveness",
          `replica ${s.replica} (status ${s.status}, view ${s.view}) applied op ${s.commit} of ${target} ${convergenceTicksMax} ticks after the clients finished`,
        );
      }
      this.step();
    }
  }

  private finalChecks(): void {
    // (3) at the end: replicas at the same commit hold the same state.
    const byCommit = new Map<number, { replica: number; hash: Uint8Array }>();
    for (const slot of this.replicas) {
      const status = slot.core!.status();
      const hash = slot.core!.stateMachine.stateHash();
      const other = byCommit.get(status.commit);
      if (other === undefined) byCommit.set(status.commit, { replica: status.replica, hash });
      else if (!checksumEqual(other.hash, hash)) {
        throw new Violation("state_hash", `at the end, replicas ${other.replica} and ${status.replica} applied op ${status.commit} but hold states ${checksumHex(other.hash)} and ${checksumHex(hash)}`);
      }
    }
    this.stats.historyEvents = this.world.events.length;
    this.stats.lincheck = checkLinearizable(this.world.events);
    this.options.workload?.finalCheck(this);
  }

  /** The nemesis: crashes, restarts, partitions and latent disk faults, drawn per tick. */
  private nemesisStep(): void {
    const p = this.profile;
    const n = this.replicas.length;
    for (let r = 0; r < n; r++) {
      const slot = this.replicas[r]!;
      if (slot.core !== null && this.nemesis.chance(p.crashProbability)) this.crash(r);
      else if (slot.core === null && this.now >= slot.restartAtTick) {
        if (slot.storage.faulty && this.nemesis.chance(p.diskLossProbability)) {
          slot.storage.loseDisk();
          this.trace.event(this.now, "disk_lost", r);
        }
        this.start(r);
      }
    }
    if (this.partitionHealTick >= 0 && this.now >= this.partitionHealTick) {
      this.network.heal();
      this.partitionHealTick = -1;
      this.trace.event(this.now, "partition_heal");
    } else if (this.partitionHealTick < 0 && n > 1 && this.nemesis.chance(p.partitionProbability)) {
      this.partitionHealTick = this.now + 1 + this.nemesis.exponential(p.partitionTicksMean, p.partitionTicksMean * 8);
      this.stats.partitions++;
      const all = [...Array(n).keys()];
      const side = this.nemesis.shuffle([...all]).slice(0, 1 + this.nemesis.int(n - 1));
      if (this.nemesis.chance(p.partitionOneWayProbability)) {
        // One-way: messages from `side` to the rest are lost; the other way still works.
        for (const a of side) for (const b of all) if (!side.includes(b)) this.network.setBlocked(a, b, true);
        this.trace.event(this.now, "partition_one_way", maskOf(side), this.partitionHealTick);
      } else {
        this.network.partition(side, all);
        this.trace.event(this.now, "partition", maskOf(side), this.partitionHealTick);
      }
    }
    if (p.faultyReplicaCount > 0 && this.nemesis.chance(p.bitFlipProbability)) {
      const faulty = this.replicas.filter((slot) => slot.storage.faulty);
      const slot = this.nemesis.pick(faulty);
      const op = slot.storage.flipBit();
      this.trace.event(this.now, "bit_flip", slot.storage.replica, op);
    }
  }

  private crash(r: number): void {
    const slot = this.replicas[r]!;
    assert(slot.core !== null, "crash a running replica");
    slot.core = null;
    slot.viewTraced = -1;
    slot.storage.crash();
    this.network.dropTo(r);
    this.options.workload?.crashed(r);
    slot.restartAtTick = this.now + 1 + this.nemesis.exponential(this.profile.downTicksMean, this.profile.downTicksMean * 8);
    this.stats.crashes++;
    this.trace.event(this.now, "crash", r, slot.restartAtTick);
  }

  private start(r: number): void {
    const slot = this.replicas[r]!;
    assert(slot.core === null, "start a stopped replica");
    const recovered = slot.storage.recover();
    if (this.stats.ticks > 0 || this.now > 0) this.stats.restarts++;
    slot.skewMs = this.pickSkew();
    const inner = this.options.workload === undefined ? new KvStateMachine() : this.options.workload.stateMachine(r);
    const stateMachine = new CheckedStateMachine(inner, r, this);
    const sb = recovered.superblock;
    const detail = this.trace.lines === null
      ? undefined
      : `${recovered.intact ? "intact" : "not-intact"} view ${sb.view} log_view ${sb.logView} commit ${sb.commit} checkpoint ${recovered.checkpoint?.op ?? 0} faulty [${recovered.faultyOps.join(",")}]`;
    this.trace.event(this.now, "start", r, recovered.headers.length, recovered.faultyOps.length, undefined, detail);
    slot.core = this.options.factory({ ...this.config, replica: r }, stateMachine, recovered);
    this.pump(r);
  }

  /** One tick: replicas tick, then messages, disk completions and clients move. */
  private step(): void {
    this.now++;
    const n = this.replicas.length;
    for (let r = 0; r < n; r++) {
      const slot = this.replicas[r]!;
      if (slot.core === null) continue;
      slot.core.tick(epochMs + this.now * tickMs + slot.skewMs);
      this.pump(r);
      const status = slot.core.status();
      if (status.voting === true && !slot.storage.isIntact) slot.storage.sawVoting();
      const statusCode = status.status === "normal" ? 0 : status.status === "view_change" ? 1 : 2;
      if (status.view !== slot.viewTraced || statusCode !== slot.statusTraced) {
        slot.viewTraced = status.view;
        slot.statusTraced = statusCode;
        const detail = this.trace.lines === null ? undefined : `${status.status} op ${status.op} commit ${status.commit} primary ${status.primary}`;
        this.trace.event(this.now, "status", r, status.view, statusCode, undefined, detail);
      }
      if (status.view > slot.viewSeen) {
        slot.viewSeen = status.view;
        if (status.view > this.stats.viewMax) {
          this.stats.viewMax = status.view;
          this.stats.viewChanges++;
          this.trace.event(this.now, "view", r, status.view);
        }
      }
    }
    for (let r = 0; r < n; r++) {
      const slot = this.replicas[r]!;
      for (;;) {
        if (slot.core === null) break;
        const done = slot.storage.next(this.now);
        if (done === undefined) break;
        this.trace.event(this.now, "storage_done", r, done.id, done.result.ok ? 1 : 0);
        slot.core.storageDone(done.id, done.result);
        this.pump(r);
      }
    }
    for (;;) {
      const packet = this.network.next(this.now);
      if (packet === undefined) break;
      this.deliver(packet.from, packet.to, packet.payload);
    }
    this.options.workload?.afterStep(this, this.now);
    const sends = this.sends;
    sends.length = 0;
    for (const client of this.clients) client.tick(this.now, sends);
    for (const send of sends) {
      const from = n + Number(send.kind === "request" ? send.request.token : send.query.token) % clientsMax;
      const payload: Payload = send.kind === "request" ? { kind: "request", request: send.request } : { kind: "query", query: send.query };
      this.network.send(this.now, from, send.to, payload);
    }
  }

  private deliver(from: number, to: number, payload: Payload): void {
    const n = this.replicas.length;
    if (to >= n) {
      assert(payload.kind === "reply", "clients receive replies");
      this.trace.event(this.now, "reply", from, to, payload.reply.token, undefined, payload.reply.error);
      this.clients[to - n]!.receive(this.now, payload.reply);
      return;
    }
    const slot = this.replicas[to]!;
    if (slot.core === null) return;
    switch (payload.kind) {
      case "replica":
        // A message starts with the checksum of the rest: folding it fingerprints the whole.
        this.trace.event(this.now, "deliver", from, to, 0, payload.bytes.subarray(0, 16), this.trace.lines === null ? undefined : describeMessage(payload.bytes, this.config.cluster));
        slot.core.receive(payload.bytes);
        break;
      case "request":
        this.trace.event(this.now, "request", from, to, payload.request.request, payload.request.body);
        slot.core.request(payload.request);
        break;
      case "query":
        this.trace.event(this.now, "query", from, to, payload.query.token, payload.query.body);
        slot.core.query(payload.query);
        break;
      case "reply":
        assert(false, "replicas do not receive client replies");
    }
    this.pump(to);
  }

  /** Takes a replica's outputs: storage actions first (in order), then messages and replies. */
  private pump(r: number): void {
    const slot = this.replicas[r]!;
    const core = slot.core;
    if (core === null) return;
    const ready = core.ready();
    for (const action of ready.storage) {
      if (this.trace.lines !== null) this.trace.lines.push(`${this.now} submit ${r} ${describeAction(action)}`);
      slot.storage.submit(this.now, action);
    }
    for (const message of ready.messages) {
      assert(message.to !== r && message.to >= 0 && message.to < this.replicas.length, `replica ${r} sends to ${message.to}`);
      this.network.send(this.now, r, message.to, { kind: "replica", bytes: message.bytes });
    }
    const n = this.replicas.length;
    for (const reply of ready.replies) {
      if (this.options.workload?.takeReply(r, reply) === true) continue;
      this.network.send(this.now, r, n + (reply.token % clientsMax), { kind: "reply", reply });
    }
  }

  /** A request that the workload makes inside replica `r` (no network: e.g. its effect runner). */
  requestLocal(r: number, request: ClientRequest): void {
    const slot = this.replicas[r]!;
    assert(slot.core !== null, "a local request goes to a running replica");
    this.trace.event(this.now, "request_local", r, request.operation, request.token, request.body);
    slot.core.request(request);
    this.pump(r);
  }

  /** Replica `r`'s clock (ms since the epoch), skew included, as its replica sees it. */
  clockMs(r: number): number {
    return epochMs + this.now * tickMs + this.replicas[r]!.skewMs;
  }

  private collectStats(): void {
    const s = this.stats;
    s.ticks = this.now;
    s.requestsCompleted = this.world.requestsCompleted;
    s.requestsUnknown = this.world.requestsUnknown;
    s.requestsFailed = this.world.requestsFailed;
    s.commitOpMax = this.commits.opMax;
    s.commitsRecorded = this.commits.commitsRecorded;
    s.historyEvents = this.world.events.length;
    for (const slot of this.replicas) {
      s.bitFlips += 0;
      s.misdirects += slot.storage.stats.misdirects;
      s.tornWrites += slot.storage.stats.torn;
      s.lostDisks += slot.storage.stats.lostDisks;
      s.bitFlips += slot.storage.stats.bitFlips;
    }
    const net = this.network.stats;
    s.messagesSent = net.sent;
    s.messagesLost = net.lost;
    s.messagesDuplicated = net.duplicated;
    s.messagesReplayed = net.replayed;
    s.messagesPartitioned = net.partitioned;
  }
}

function maskOf(replicas: readonly number[]): number {
  let mask = 0;
  for (const r of replicas) mask |= 1 << r;
  return mask;
}

/** The same profile with every fault off (delays stay). */
export function noFaults(profile: FaultProfile): FaultProfile {
  return {
    ...profile,
    network: calmNetwork(profile.network),
    storage: calmStorage(profile.storage),
    crashProbability: 0,
    partitionProbability: 0,
    faultyReplicaCount: 0,
    bitFlipProbability: 0,
    diskLossProbability: 0,
    clockSkewMsMax: 0,
  };
}
