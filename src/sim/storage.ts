/**
 * A simulated per-replica durable store that carries out the replica's StorageAction
 * kinds in virtual time, and the faults a real disk has.
 *
 * Semantics:
 * - Actions take effect in the order submitted (one FIFO per replica); each completes
 *   after a simulated latency, and only then is it durable and acknowledged
 *   (`storageDone`).
 * - A crash keeps everything completed. Of the actions in flight, a prefix may have
 *   reached the disk without its acknowledgement, the next one may be torn (an entry is
 *   kept with damaged bytes, anything else is dropped), the rest are lost.
 * - Latent faults, only on replicas of the run's faulty set (at most f of them, see
 *   docs/simulator.md): a bit flip in a stored entry, a misdirected write (the entry lands
 *   on another op's slot; both slots then fail verification), and the loss of the whole
 *   disk (the replica restarts with `intact: false`).
 * - Recovery verifies every entry with the entry header codec: a torn entry after the last
 *   complete entry is a torn tail and is truncated; any other entry that fails (flip,
 *   misdirect, torn in the middle) or is missing below the head is reported in
 *   `faultyOps`. The simulated journal knows which ops it held (as a real journal knows
 *   from its redundant headers), so a misdirected write is never a silent loss.
 * @module
 */
import { concatBytes } from "../codec/bytes.ts";
import { assert } from "../assert.ts";
import { checksumEqual } from "../codec/checksum.ts";
import { decodeHeader, verifyBody, verifyHeader } from "../codec/entry_header.ts";
import type { RecoveredState, StorageAction, StorageResult, SuperblockState } from "../vsr/replica_api.ts";
import type { Prng } from "./prng.ts";

/** Storage fault and latency parameters (picked per seed by the swarm). */
export interface StorageOptions {
  /** Mean latency of one action in ticks (exponential; 0 = completes on the next tick). */
  readonly latencyMeanTicks: number;
  /** Largest latency of one action in ticks. */
  readonly latencyMaxTicks: number;
  /** At a crash, probability that the first action in flight is torn rather than lost. */
  readonly tornWriteProbability: number;
  /** Probability that a completed entry write is misdirected (faulty replicas only). */
  readonly misdirectProbability: number;
}

/** Actions in flight on one replica's disk; more is a replica that does not bound its I/O. */
export const storagePendingMax = 65_536;
/** Checkpoints kept (the superblock may still name the previous one). */
export const checkpointsKeptMax = 2;

/** How an entry slot's bytes came to be. */
type SlotState = "written" | "torn" | "damaged";

interface Slot {
  header: Uint8Array;
  body: Uint8Array;
  state: SlotState;
}

interface Pending {
  readonly at: number;
  readonly action: StorageAction;
}

/** Counters of the faults a disk suffered. */
export interface StorageStats {
  actions: number;
  torn: number;
  bitFlips: number;
  misdirects: number;
  lostDisks: number;
}

function flip(bytes: Uint8Array, index: number, mask: number): void {
  bytes[index] = bytes[index]! ^ mask;
}

const superblockFresh: SuperblockState = { view: 0, logView: 0, commit: 0, checkpointOp: 0 };

/** One replica's simulated disk. */
export class SimStorage {
  private slots = new Map<number, Slot>();
  private superblock: SuperblockState | null = null;
  private checkpoints: { op: number; bytes: Uint8Array }[] = [];
  private pending: Pending[] = [];
  private pendingHead = 0;
  private lastCompletionAt = 0;
  private intact = true;
  /** Ops the last recovery reported faulty and not rewritten since (the journal's fault index). */
  private readonly faultyReported = new Set<number>();
  /**
   * What the real journal knows of each op it holds: the checksum of the entry written
   * there (whatever bytes the disk holds now), or null for an op recovery found faulty.
   * The real journal is one hash chain: an append must chain after the entry it holds
   * below, and it refuses to append after a faulty entry; the simulator checks the same.
   */
  private readonly journalChecksums = new Map<number, Uint8Array | null>();
  /** What happened to this disk. */
  readonly stats: StorageStats = { actions: 0, torn: 0, bitFlips: 0, misdirects: 0, lostDisks: 0 };
  /** Options in force (the liveness phase swaps in fault-free ones). */
  options: StorageOptions;

  /**
   * @param faulty whether this replica is in the run's faulty set (may suffer latent faults)
   */
  constructor(
    readonly replica: number,
    readonly cluster: Uint8Array,
    options: StorageOptions,
    readonly faulty: boolean,
    private readonly prng: Prng,
  ) {
    this.options = options;
  }

  /** Actions submitted and not yet completed. */
  get pendingCount(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Accepts an action at tick `now`; it completes in order after a latency. */
  submit(now: number, action: StorageAction): void {
    assert(this.pendingCount < storagePendingMax, `replica ${this.replica} has ${storagePendingMax} storage actions in flight`);
    this.stats.actions++;
    const latency = this.prng.exponential(this.options.latencyMeanTicks, this.options.latencyMaxTicks);
    const at = Math.max(this.lastCompletionAt, now + 1 + latency);
    this.lastCompletionAt = at;
    this.pending.push({ at, action });
  }

  /**
   * Completes the next action due at or before `now`: applies it to the durable state and
   * returns its id and result, or undefined when nothing is due.
   */
  next(now: number): { id: number; result: StorageResult; action: StorageAction } | undefined {
    if (this.pendingHead >= this.pending.length) return undefined;
    const top = this.pending[this.pendingHead]!;
    if (top.at > now) return undefined;
    this.pendingHead++;
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    const result = this.apply(top.action, true);
    return { id: top.action.id, result, action: top.action };
  }

  private apply(action: StorageAction, mayMisdirect: boolean): StorageResult {
    switch (action.kind) {
      case "write_entry":
      case "repair_entry": {
        assert(Number.isSafeInteger(action.op) && action.op > 0, `entry op ${action.op}`);
        if (action.kind === "repair_entry") {
          // The real journal repairs only an entry that fails verification (or is missing
          // below the head) and refuses to overwrite a sound one: so must the simulator.
          // (Like the real journal's index, an op recovery reported faulty stays faulty
          // until rewritten, even if a second bit flip happened to undo the first.)
          const held = this.slots.get(action.op);
          assert(held === undefined || this.faultyReported.has(action.op) || !this.verify(action.op, held), `replica ${this.replica}: repair of op ${action.op}, which is not faulty (${held !== undefined && checksumEqual(held.header.subarray(0, 16), action.header.subarray(0, 16)) ? "same" : "another"} entry)`);
        }
        if (action.kind === "write_entry") this.checkAppend(action.op, action.header);
        this.journalChecksums.set(action.op, action.header.slice(0, 16));
        const slot: Slot = { header: action.header.slice(), body: action.body.slice(), state: "written" };
        if (mayMisdirect && this.faulty && this.prng.chance(this.options.misdirectProbability)) {
          const others = [...this.slots.keys()].filter((op) => op !== action.op);
          if (others.length > 0) {
            // The bytes land on another op's slot; this op's slot keeps damaged bytes.
            this.stats.misdirects++;
            this.slots.set(this.prng.pick(others), slot);
            const missed = { header: slot.header.slice(), body: slot.body, state: "damaged" as const };
            missed.header[16] = missed.header[16]! ^ 0xff;
            this.slots.set(action.op, missed);
            return { ok: true };
          }
        }
        this.slots.set(action.op, slot);
        this.faultyReported.delete(action.op);
        return { ok: true };
      }
      case "truncate":
        for (const op of [...this.slots.keys()]) if (op > action.op) this.slots.delete(op);
        for (const op of [...this.journalChecksums.keys()]) if (op > action.op) this.journalChecksums.delete(op);
        for (const op of [...this.faultyReported]) if (op > action.op) this.faultyReported.delete(op);
        return { ok: true };
      case "read_entry":
        return { ok: true, entry: this.read(action.op) };
      case "write_superblock": {
        // The real superblock refuses these (src/storage/superblock.ts): a replica that
        // asks for them has a bug, and the simulator must say so as the node would.
        const sb = action.superblock;
        assert(sb.logView <= sb.view && sb.checkpointOp <= sb.commit, `replica ${this.replica}: superblock fields out of order`);
        const previous = this.superblock;
        if (previous !== null) {
          const next = action.superblock;
          assert(next.view >= previous.view, `replica ${this.replica}: superblock view goes back ${previous.view} -> ${next.view}`);
          assert(next.commit >= previous.commit, `replica ${this.replica}: superblock commit goes back ${previous.commit} -> ${next.commit}`);
          assert(next.checkpointOp >= previous.checkpointOp, `replica ${this.replica}: superblock checkpoint goes back`);
        }
        this.superblock = { ...action.superblock };
        return { ok: true };
      }
      case "write_checkpoint":
        this.checkpoints = this.checkpoints.filter((c) => c.op !== action.op);
        this.checkpoints.push({ op: action.op, bytes: concatBytes(action.checkpoint) });
        this.checkpoints.sort((a, b) => a.op - b.op);
        if (this.checkpoints.length > checkpointsKeptMax) this.checkpoints.shift();
        return { ok: true };
      case "release":
        for (const op of [...this.slots.keys()]) if (op < action.op) this.slots.delete(op);
        for (const op of [...this.journalChecksums.keys()]) if (op < action.op) this.journalChecksums.delete(op);
        return { ok: true };
    }
  }

  /**
   * The real journal's append rule (src/storage/journal.ts): the entry at `op` must name
   * as its parent the entry held at `op - 1`, which must not be one recovery found faulty.
   * (No entry held below: the journal restarts after a checkpoint, as the node's driver does.)
   */
  private checkAppend(op: number, header: Uint8Array): void {
    const below = this.journalChecksums.get(op - 1);
    if (below === undefined) return;
    assert(below !== null, `replica ${this.replica}: append of op ${op} after op ${op - 1}, which recovery found faulty (the journal refuses: repair it first)`);
    assert(checksumEqual(header.subarray(32, 48), below), `replica ${this.replica}: op ${op} does not chain after op ${op - 1} held by the journal`);
  }

  /** The verified entry at `op`, or null when it is missing or fails verification. */
  read(op: number): { header: Uint8Array; body: Uint8Array } | null {
    const slot = this.slots.get(op);
    if (slot === undefined || !this.verify(op, slot)) return null;
    return { header: slot.header.slice(), body: slot.body.slice() };
  }

  private verify(op: number, slot: Slot): boolean {
    if (verifyHeader(slot.header) !== null) return false;
    const header = decodeHeader(slot.header);
    return header.op === op && checksumEqual(header.cluster, this.cluster) && verifyBody(header, slot.body);
  }

  /**
   * The process dies: completed actions stay; of those in flight a prefix lands without
   * acknowledgement, the next may be torn, the rest are lost.
   */
  crash(): void {
    const inFlight = this.pending.slice(this.pendingHead);
    this.pending = [];
    this.pendingHead = 0;
    this.lastCompletionAt = 0;
    if (inFlight.length === 0) return;
    const landed = this.prng.int(inFlight.length + 1);
    for (let i = 0; i < landed; i++) this.apply(inFlight[i]!.action, false);
    const next = inFlight[landed];
    if (next === undefined || !this.prng.chance(this.options.tornWriteProbability)) return;
    if (next.action.kind === "write_entry" || next.action.kind === "repair_entry") {
      // A torn write: part of the entry reached the disk.
      this.stats.torn++;
      const header = next.action.header.slice();
      const body = next.action.body.slice();
      if (body.length > 0 && this.prng.chance(0.5)) flip(body, this.prng.int(body.length), 0x5a);
      else flip(header, this.prng.int(header.length), 0x5a);
      this.slots.set(next.action.op, { header, body, state: "torn" });
    }
    // A torn superblock or checkpoint write leaves the previous copy (several copies / a
    // new file per checkpoint), and truncate and release are atomic: nothing to do.
  }

  /** The disk is lost or replaced: nothing survives; the replica restarts not intact. */
  loseDisk(): void {
    assert(this.faulty, "only a replica of the faulty set may lose its disk");
    assert(this.pendingCount === 0, "lose the disk of a crashed replica only");
    this.stats.lostDisks++;
    this.slots.clear();
    this.journalChecksums.clear();
    this.superblock = null;
    this.checkpoints = [];
    this.intact = false;
  }

  /**
   * The replica reported `voting: true`: it has caught up since its disk was lost, so its
   * disk counts as intact again. Until then every restart reports `intact: false`, so a
   * replica can never vote with a log that misses an op it acknowledged before the loss.
   */
  sawVoting(): void {
    this.intact = true;
  }

  /** Whether the next recovery reports the disk intact. */
  get isIntact(): boolean {
    return this.intact;
  }

  /** Flips one bit in a random stored entry (latent sector error). Returns the op, or -1. */
  flipBit(): number {
    assert(this.faulty, "only a replica of the faulty set suffers bit flips");
    if (this.slots.size === 0) return -1;
    const op = this.prng.pick([...this.slots.keys()]);
    const slot = this.slots.get(op)!;
    const header = slot.header.slice();
    const body = slot.body.slice();
    if (body.length > 0 && this.prng.chance(0.5)) flip(body, this.prng.int(body.length), 1 << this.prng.int(8));
    else flip(header, this.prng.int(header.length), 1 << this.prng.int(8));
    this.slots.set(op, { header, body, state: slot.state === "torn" ? "torn" : "damaged" });
    this.stats.bitFlips++;
    return op;
  }

  /**
   * What a restarting replica finds on its disk: superblock, checkpoint, verified headers
   * after the checkpoint, faulty ops, and whether the disk is the one it had. Truncates a
   * torn tail.
   */
  recover(): RecoveredState {
    assert(this.pendingCount === 0, "recover after a crash (nothing in flight)");
    const superblock = this.superblock ?? superblockFresh;
    const checkpoint = this.checkpoints.find((c) => c.op === superblock.checkpointOp) ??
      this.checkpoints[this.checkpoints.length - 1] ?? null;
    const base = checkpoint?.op ?? 0;
    let head = base;
    for (const [op, slot] of this.slots) if (op > head && slot.state !== "torn") head = op;
    for (const [op, slot] of this.slots) if (op > head) {
      assert(slot.state === "torn", "only torn entries lie beyond the head");
      this.slots.delete(op);
    }
    const headers: Uint8Array[] = [];
    const faultyOps: number[] = [];
    this.faultyReported.clear();
    this.journalChecksums.clear();
    for (let op = base + 1; op <= head; op++) {
      const slot = this.slots.get(op);
      if (slot !== undefined && this.verify(op, slot)) {
        headers.push(slot.header.slice());
        this.journalChecksums.set(op, slot.header.slice(0, 16));
      } else {
        faultyOps.push(op);
        this.faultyReported.add(op);
        this.journalChecksums.set(op, null);
      }
    }
    const intact = this.intact;
    return {
      superblock,
      checkpoint: checkpoint === null ? null : { op: checkpoint.op, bytes: checkpoint.bytes.slice() },
      headers,
      faultyOps,
      intact,
      // A fresh nonce per start, as a driver draws one (the replica's recovery round).
      nonce: this.prng.int(0x7fff_ffff),
    };
  }

  /** Ops stored (for tests and traces). */
  storedOps(): number[] {
    return [...this.slots.keys()].sort((a, b) => a - b);
  }

  /** The latest durable superblock, or null (for tests). */
  durableSuperblock(): SuperblockState | null {
    return this.superblock;
  }
}
