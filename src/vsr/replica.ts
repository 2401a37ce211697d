/**
 * The replica: Viewstamped Replication (Revisited, with log_view and the corrections in
 * DESIGN.md) as a pure state machine. Inputs: `tick`, `receive`, `request`, `query`,
 * `storageDone`. Outputs: `ready()` (storage actions, messages, client replies). No clock,
 * timer, randomness or I/O inside; see replica_api.ts for the driver contract and
 * docs/protocol.md for the protocol message by message.
 *
 * Statuses:
 * - normal: the primary prepares and commits; backups replicate and acknowledge;
 * - view_change: collecting start_view_change / do_view_change for `view`;
 * - recovering: restarted, or learned of a newer view; waits for a start_view.
 *
 * Parts with a seam of their own live beside it: view_change.ts (what a do_view_change
 * claims and how a quorum of claims is read), read_rounds.ts (linearizable reads by quorum
 * round), state_transfer.ts (assembling a peer's checkpoint), log.ts (the log window),
 * client_table.ts (sessions), quorum.ts, checkpoint.ts, message.ts.
 * @module
 */
import { assert, assertCount } from "../assert.ts";
import { checksumEqual } from "../codec/checksum.ts";
import { checksum } from "../codec/checksum.ts";
import {
  decodeHeader, decodeHeaderLazy, encodeEntry, entryBodySizeMax, entryHeaderSize, type EntryHeader, rootEntry,
  verifyBody, verifyHeader,
} from "../codec/entry_header.ts";
import {
  CheckpointError, checkpointRange, checkpointSize, decodeCheckpoint, encodeCheckpointImage, type CheckpointImage,
} from "./checkpoint.ts";
import { ClientTable, isInternalClient, sessionKey, type StoredReply } from "./client_table.ts";
import {
  checkpointChunkSizeMax, messageBodySizeMax, messageHeadersMax, operationRegister, queriesPendingMax,
  queryRetryTicks, repairBurstMax, requestQueueMax, retransmitBurstMax, retransmitTicks, snapshotStepBytes, viewChangeBackoffMax,
} from "./constants.ts";
import { LogWindow, type Slot } from "./log.ts";
import { decodeMessage, encodeMessage, ForeignClusterError, type Message, type MessageBody, MessageError, type WireEntry } from "./message.ts";
import { primaryOf, quorumOp, quorumSize, winningClaim } from "./quorum.ts";
import type {
  ClientQuery, ClientReply, ClientRequest, Outbound, Ready, RecoveredState, ReplicaConfig, ReplicaCore,
  ReplicaStatus, ReplyError, StorageAction, StorageResult, SuperblockState,
} from "./replica_api.ts";
import { ReadRounds } from "./read_rounds.ts";
import { CheckpointTransfer } from "./state_transfer.ts";
import { type Claim, claimHeaders, claimNacks, claimOf, nackedByQuorum } from "./view_change.ts";
import { operationStateMachineMin, type SnapshotJob, type StateMachine } from "./state_machine.ts";

/** Primary timeouts a primary waits without commit progress before abdicating. */
const primaryStallTimeouts = 4;

/** A storage action in flight, as the replica remembers it. */
type PendingAction =
  | { readonly kind: "entry"; readonly op: number }
  | { readonly kind: "read"; readonly op: number }
  | { readonly kind: "superblock"; readonly superblock: SuperblockState; readonly sequence: number }
  | { readonly kind: "checkpoint"; readonly op: number }
  | { readonly kind: "other" };

/** Counters exported for metrics and checked by the tests. */
export interface ReplicaCounters {
  droppedForeignCluster: number;
  droppedMalformed: number;
  droppedOtherwise: number;
  stateTransfers: number;
  repairsRequested: number;
}

/**
 * Builds the recovered state of a brand-new replica (empty disk, never run before).
 * `intact` is true: a fresh cluster member has promised nothing yet.
 */
export function freshRecoveredState(): RecoveredState {
  return {
    superblock: { view: 0, logView: 0, commit: 0, checkpointOp: 0 },
    checkpoint: null,
    headers: [],
    faultyOps: [],
    intact: true,
  };
}

/** The replica core. */
export class Replica implements ReplicaCore {
  readonly stateMachine: StateMachine;
  readonly config: ReplicaConfig;
  /** f+1. */
  readonly quorum: number;
  /** Counters (monotonic). */
  readonly counters: ReplicaCounters = {
    droppedForeignCluster: 0, droppedMalformed: 0, droppedOtherwise: 0, stateTransfers: 0, repairsRequested: 0,
  };

  /** Current status; see the module comment. */
  #status: ReplicaStatus["status"] = "recovering";
  /** Current view; never decreases. Invariant: view ≥ logView. */
  #view: number;
  /** Last view in which this replica was normal; its log (in memory) is that view's log. */
  #logView: number;
  /**
   * The log_view the superblock may carry: the newest view whose log the journal holds
   * durably up to the op that view started from. It trails `#logView` while a view's log
   * is still being written or repaired: persisting log_view earlier would let a restarted
   * replica claim the new view's log while its journal holds only a prefix of it, and win
   * a view change against a replica that holds committed ops past that prefix.
   */
  #logViewDurable: number;
  /** The op the current view's log started from (all of it must be durable before `#logViewDurable` moves up). */
  #logViewStartOp = 0;
  /** The highest commit any superblock write carried (the persisted commit never goes back). */
  #commitWritten: number;
  /** The view the last superblock write carried (never goes back; see #writeSuperblock). */
  #viewWritten: number;
  /** The log after the latest checkpoint. */
  #log: LogWindow;
  /** Highest op applied to the state machine (all replicas). Invariant: commitMin ≤ commitMax. */
  #commitMin: number;
  /** Highest op known committed (may run ahead of the log while catching up). */
  #commitMax: number;
  /** Op of the latest durable checkpoint; its bytes are kept for state transfer. */
  #checkpointOp: number;
  /**
   * This replica checkpoints at the ops ≡ this (mod checkpointIntervalOps): replica r at
   * r/replicaCount of the interval. Staggered so that at most one replica at a time pays
   * for encoding and flushing its state: a checkpoint slows a replica for a while (a
   * multi-megabyte write and its flush), and when all replicas took theirs at the same op
   * every request in flight waited for the slowest; staggered, a backup's checkpoint hides
   * behind the quorum of the others. Checkpoint ops need not agree between replicas: each
   * anchors only its own log window, and state transfer takes whichever a peer holds.
   */
  readonly #checkpointPhaseOps: number;
  #checkpointImage: CheckpointImage;
  /** Checksum of `#checkpointImage` once computed, and the image it is of (by identity). */
  #checkpointChecksum: { readonly of: CheckpointImage; readonly sum: Uint8Array } | null = null;
  /**
   * A checkpoint whose state snapshot is being encoded in steps, one per ready() (only
   * with a state machine that has beginSnapshot): its op, anchor header, the client table
   * as it was at the op, and the job. Then it is written like any other.
   */
  #snapshotting: { readonly op: number; readonly header: Uint8Array; readonly clients: Uint8Array; readonly job: SnapshotJob } | null = null;
  /**
   * A checkpoint being written: its op, blob and anchor header, and its state bytes when a
   * snapshot job encoded them (see `#snapshotSpare`).
   */
  #checkpointWriting: { op: number; image: CheckpointImage; header: Uint8Array; jobState: Uint8Array | null } | null = null;
  /** The state piece of `#checkpointImage` when a snapshot job encoded it, else null. */
  #checkpointJobState: Uint8Array | null = null;
  /**
   * The state bytes of the checkpoint the latest one replaced: nothing reads them any more,
   * so the next snapshot job may encode into their buffer (beginSnapshot's `reuse`) instead
   * of allocating, faulting in and later collecting a state-sized buffer per checkpoint.
   */
  #snapshotSpare: Uint8Array | null = null;
  /** Replicated client sessions. */
  readonly #clients: ClientTable;
  /** Highest op issued to the disk contiguously (the disk's head). */
  #writtenOp: number;
  /**
   * What the journal holds (or will, once the actions handed over run) at each op above
   * the anchor up to `#writtenOp`: the entry's header (its first 16 bytes are the
   * checksum; the slot's own bytes, so that an op costs no allocation here), or null for an
   * op recovery found faulty. The journal is one hash chain and appends only after the
   * entry an append chains from, so every write is checked against it (see #issueWrites).
   */
  readonly #journalChecksums = new Map<number, Uint8Array | null>();
  /** Whether this replica may vote and count in quorums (false after a lost disk). */
  #voting: boolean;
  /** A non-voting replica votes again once it has applied this op (the view's commit). */
  #catchUpCommit: number | null = null;
  /** This incarnation's recovery nonce (see RecoveredState.nonce). */
  readonly #recoveryNonce: number;
  /** Views other replicas answered this incarnation's recovery round with (non-voting only). */
  readonly #recoveryViews = new Map<number, number>();

  #nowMs = 0;
  #nextId = 1;
  readonly #pending = new Map<number, PendingAction>();
  #storage: StorageAction[] = [];
  #messages: Outbound[] = [];
  #replies: ClientReply[] = [];
  #superblockDurable: SuperblockState;
  #superblockSequence = 0;
  /** Highest view a superblock write in flight or done carries. */
  #superblockViewWriting = 0;
  #superblockSequenceDurable = 0;
  /**
   * Highest view this replica sent a do_view_change for: a promise not to accept ops of
   * older views. Start_view_change is no promise, so a replica whose view change never
   * completed may rejoin any view at or above this one. Unknown after a restart, so
   * conservatively the recovered view.
   */
  #dvcViewMax: number;
  #readsPending = 0;

  // Primary (normal status) only.
  /** Highest op each replica acknowledged durable in this view (-1: unknown). */
  #acks: number[];
  readonly #queue: ClientRequest[] = [];
  readonly #inflight = new Map<string, { request: number; token: number }>();
  readonly #replyTokens = new Map<number, number>();
  /** Last op of each prepare in flight (the pipeline). */
  #batches: number[] = [];
  /** The log head when this primary became normal: every op a previous primary may have acknowledged. */
  #viewStartOp = 0;
  #heartbeatTicks = 0;
  #retransmitTicks = 0;
  /** Ticks the primary has had uncommitted ops without its commit moving. */
  #commitStallTicks = 0;
  #commitStallOp = 0;

  // Backup only.
  #primarySilentTicks = 0;

  // View change.
  readonly #svcFrom = new Set<number>();
  readonly #claims = new Map<number, Claim>();
  #dvcSent = false;
  #viewChangeTicks = 0;
  #viewChangeBackoff = 1;

  /** Linearizable reads confirmed by a quorum round (primary only). */
  readonly #reads: ReadRounds;

  // Catch-up.
  #recoveryTicks = 0;
  #peerCheckpoint = { op: 0, replica: -1 };
  #transfer: CheckpointTransfer | null = null;
  #repairRound = 0;

  /** Starts a replica from what its disk held (see {@link freshRecoveredState}). */
  constructor(config: ReplicaConfig, stateMachine: StateMachine, recovered: RecoveredState) {
    validateConfig(config);
    this.config = config;
    this.stateMachine = stateMachine;
    this.quorum = quorumSize(config.replicaCount);
    this.#reads = new ReadRounds(config.replica, this.quorum, queriesPendingMax);
    this.#clients = new ClientTable(config.clientSessionsMax);
    this.#acks = new Array<number>(config.replicaCount).fill(-1);
    const sb = recovered.superblock;
    assert(sb.logView <= sb.view, "recovered logView ≤ view");
    this.#view = sb.view;
    this.#logView = sb.logView;
    this.#logViewDurable = sb.logView;
    this.#commitWritten = sb.commit;
    this.#viewWritten = sb.view;
    this.#superblockDurable = sb;
    this.#dvcViewMax = sb.view;

    let anchor = rootEntry(config.cluster);
    let checkpointOp = 0;
    if (recovered.checkpoint !== null) {
      const parts = decodeCheckpoint(recovered.checkpoint.bytes);
      assert(parts.op === recovered.checkpoint.op, "checkpoint op matches its blob");
      stateMachine.restore(parts.state);
      this.#clients.restore(parts.clients);
      anchor = parts.header;
      checkpointOp = parts.op;
    }
    this.#checkpointOp = checkpointOp;
    this.#checkpointPhaseOps = Math.floor((config.replica * config.checkpointIntervalOps) / config.replicaCount);
    this.#checkpointImage = recovered.checkpoint !== null ? [recovered.checkpoint.bytes] : encodeCheckpointImage({
      op: 0, header: anchor, state: stateMachine.snapshot(), clients: this.#clients.encode(),
    });
    this.#log = new LogWindow(anchor);
    this.#commitMin = checkpointOp;
    this.#commitMax = Math.max(sb.commit, checkpointOp);
    this.#writtenOp = checkpointOp;
    // The disk holds entries of the log of `logView` (the replica only writes trusted
    // entries), so every recovered header is trusted; faulty ops are holes to repair.
    for (const bytes of recovered.headers) {
      assert(verifyHeader(bytes) === null, "recovered headers are verified by storage");
      const header = decodeHeader(bytes);
      if (header.op <= checkpointOp) continue;
      const slot = this.#log.put(bytes.slice(0, entryHeaderSize), null, true);
      slot.durable = true;
      this.#journalChecksums.set(header.op, slot.bytes);
      this.#writtenOp = Math.max(this.#writtenOp, header.op);
    }
    let tailUnknown = false;
    for (const op of recovered.faultyOps) {
      if (op > checkpointOp) {
        this.#faultyHoles.add(op);
        this.#journalChecksums.set(op, null);
        this.#writtenOp = Math.max(this.#writtenOp, op);
      }
      if (op > this.#log.head) tailUnknown = true;
    }
    // A faulty head has no header to claim in a view change: vote only after catching up.
    this.#voting = config.replicaCount === 1 || (recovered.intact && !tailUnknown);
    this.#recoveryNonce = recovered.nonce ?? 0;
    assert(Number.isSafeInteger(this.#recoveryNonce) && this.#recoveryNonce >= 0, "recovery nonce is a safe integer");
    if (!this.#voting) this.#broadcast({ kind: "recovery", nonce: this.#recoveryNonce });
    for (const op of this.#log.ops()) this.#read(op);
    this.#status = "recovering";
    if (config.replicaCount === 1 || (this.#isPrimaryOf(this.#view) && this.#voting)) {
      // A restarted primary must not resume its view: its pipeline is gone and it may
      // have lost unsynced entries that backups hold at the same ops.
      this.#startViewChange(this.#view + 1);
    } else if (this.#isPrimaryOf(this.#view)) {
      // A non-voting replica that was the primary of its view asks everyone for a newer one.
      this.#broadcast({ kind: "request_start_view" });
    } else {
      this.#send(primaryOf(this.#view, config.replicaCount), { kind: "request_start_view" });
    }
  }

  // --- the driver interface -------------------------------------------------------------

  /** Advances time by one tick; `nowMs` is the driver's clock, used only for timestamps. */
  tick(nowMs: number): void {
    assert(Number.isFinite(nowMs), "tick needs a time");
    this.#nowMs = Math.max(this.#nowMs, Math.floor(nowMs));
    const timeout = this.config.timeoutPrimaryTicks;
    if (this.#status === "normal" && this.#isPrimary()) {
      if (this.#commitMax < this.#log.head && this.#commitMax === this.#commitStallOp) this.#commitStallTicks++;
      else this.#commitStallTicks = 0;
      this.#commitStallOp = this.#commitMax;
      if (this.#commitStallTicks >= timeout * primaryStallTimeouts && this.config.replicaCount > 1) {
        // A primary that cannot commit (an op nobody can supply, a quorum it cannot reach)
        // abdicates: the next view change can discard what no quorum holds.
        this.#commitStallTicks = 0;
        this.#startViewChange(this.#view + 1);
        return;
      }
      if (++this.#heartbeatTicks >= this.config.heartbeatTicks) {
        this.#heartbeatTicks = 0;
        this.#broadcastCommit();
      }
      if (++this.#retransmitTicks >= retransmitTicks) {
        this.#retransmitTicks = 0;
        this.#retransmitPrepares();
        this.#repair();
      }
      const ping = this.#reads.tick(queryRetryTicks);
      if (ping !== null) this.#broadcast({ kind: "ping", nonce: ping });
    } else if (this.#status === "normal") {
      if (++this.#primarySilentTicks >= timeout) {
        this.#primarySilentTicks = 0;
        if (this.#voting) this.#startViewChange(this.#view + 1);
        else this.#broadcast({ kind: "request_start_view" });
      } else if (++this.#retransmitTicks >= retransmitTicks) {
        this.#retransmitTicks = 0;
        this.#repair();
        this.#sendPrepareOk();
      }
    } else if (this.#status === "view_change") {
      if (++this.#viewChangeTicks >= timeout * this.#viewChangeBackoff + this.#jitter()) {
        this.#viewChangeBackoff = Math.min(this.#viewChangeBackoff * 2, viewChangeBackoffMax);
        this.#startViewChange(this.#view + 1);
      } else if (this.#viewChangeTicks % retransmitTicks === 0) {
        this.#broadcast({ kind: "start_view_change" });
        if (this.#dvcSent && !this.#isPrimaryOf(this.#view)) this.#send(this.#primary(), this.#doViewChange());
      }
    } else {
      if (++this.#primarySilentTicks >= timeout * 2 && this.#voting) {
        this.#primarySilentTicks = 0;
        this.#startViewChange(this.#view + 1);
      } else if (this.#primarySilentTicks % retransmitTicks === 0) {
        this.#broadcast({ kind: "request_start_view" });
      }
    }
    if (this.#transfer !== null && this.#repairRound++ % retransmitTicks === 0) this.#requestChunk();
    if (!this.#voting && ++this.#recoveryTicks % retransmitTicks === 0) {
      this.#broadcast({ kind: "recovery", nonce: this.#recoveryNonce });
    }
  }

  /**
   * Hands the replica a message from a peer; undecodable or foreign messages are counted
   * and dropped. Takes `bytes` over: the log window keeps views of them (entry headers and
   * bodies), so the caller must never write to them again.
   */
  receive(bytes: Uint8Array): void {
    let message: Message;
    try {
      message = decodeMessage(bytes, this.config.cluster);
    } catch (error) {
      if (error instanceof ForeignClusterError) this.counters.droppedForeignCluster++;
      else if (error instanceof MessageError) this.counters.droppedMalformed++;
      else throw error;
      return;
    }
    if (message.replica >= this.config.replicaCount || message.replica === this.config.replica) {
      this.counters.droppedMalformed++;
      return;
    }
    this.#dispatch(message);
  }

  /** A client request (normally at the primary). */
  request(request: ClientRequest): void {
    if (this.#status !== "normal" || !this.#isPrimary()) {
      this.#reply(request.token, { error: "not_primary", message: "this replica is not the primary" });
      return;
    }
    if (request.body.length > entryBodySizeMax) {
      this.#reply(request.token, { error: "too_large", message: `body of ${request.body.length} bytes exceeds ${entryBodySizeMax}` });
      return;
    }
    assert(request.client.length === 16, "client id is 16 bytes");
    assertCount(request.request, "request number");
    let operation = request.operation;
    const internal = isInternalClient(request.client);
    if (!internal && request.request === 0) operation = operationRegister;
    if (operation < operationStateMachineMin && operation !== operationRegister) {
      this.#reply(request.token, { error: "invalid_operation", message: `operation ${operation} is reserved` });
      return;
    }
    if (internal && operation === operationRegister) {
      this.#reply(request.token, { error: "invalid_operation", message: "internal requests have no session" });
      return;
    }
    if (!internal) {
      const key = sessionKey(request.client);
      const check = this.#clients.checkKey(key, request.client, request.request);
      if (check.kind === "duplicate") {
        this.#reply(request.token, check.reply, check.op);
        return;
      }
      if (check.kind === "error") {
        this.#reply(request.token, { error: check.error, message: check.message });
        return;
      }
      const inflight = this.#inflight.get(key);
      if (inflight !== undefined) {
        if (inflight.request === request.request) {
          // A retry of the request in flight: answer the newest connection.
          inflight.token = request.token;
          for (const [op, token] of this.#replyTokens) {
            const slot = this.#log.get(op);
            if (slot !== undefined && sessionKey(slot.header.client) === key) this.#replyTokens.set(op, request.token);
            void token;
          }
          return;
        }
        this.#reply(request.token, { error: "busy", message: "one request in flight per session" });
        return;
      }
      if (this.#queue.length >= requestQueueMax) {
        this.#reply(request.token, { error: "busy", message: "request queue full" });
        return;
      }
      this.#inflight.set(key, { request: request.request, token: request.token });
    } else if (this.#queue.length >= requestQueueMax) {
      this.#reply(request.token, { error: "busy", message: "request queue full" });
      return;
    }
    // Prepared at the next ready(): every request that arrives in one driver turn goes
    // into as few prepares as the pipeline allows.
    this.#queue.push(operation === request.operation ? request : { ...request, operation });
  }

  /** A read-only query: `stale` answers at once, `linearizable` after a quorum round. */
  query(query: ClientQuery): void {
    if (query.mode === "stale") {
      this.#answerQuery(query.token, query.body);
      return;
    }
    if (this.#status !== "normal" || !this.#isPrimary()) {
      this.#reply(query.token, { error: "not_primary", message: "linearizable reads go to the primary" });
      return;
    }
    if (!this.#reads.hasRoom) {
      this.#reply(query.token, { error: "busy", message: "too many queries pending" });
      return;
    }
    this.#pings(this.#reads.add(query.token, query.body, Math.max(this.#commitMax, this.#viewStartOp)));
    this.#answerQueries();
  }

  /** Completion of a storage action. */
  storageDone(id: number, result: StorageResult): void {
    const action = this.#pending.get(id);
    assert(action !== undefined, `storageDone for unknown action ${id}`);
    this.#pending.delete(id);
    assert(result.ok, `storage action ${id} failed: the driver must stop the replica on I/O failure`);
    switch (action.kind) {
      case "entry": {
        const slot = this.#log.get(action.op);
        if (slot !== undefined && slot.writeId === id) {
          slot.writeId = null;
          slot.durable = true;
          this.#faultyHoles.delete(action.op);
        }
        break;
      }
      case "read": {
        this.#readsPending--;
        const slot = this.#log.get(action.op);
        if (slot !== undefined && slot.body === null) {
          const entry = result.entry;
          if (
            entry !== undefined && entry !== null && checksumEqual(entry.header.subarray(0, 16), slot.header.checksum) &&
            verifyBody(slot.header, entry.body)
          ) {
            slot.body = entry.body;
          } else {
            slot.durable = false; // faulty on disk: repair from a peer, in place
            slot.faulty = true;
          }
        }
        break;
      }
      case "superblock": {
        const sb = action.superblock;
        if (action.sequence > this.#superblockSequenceDurable) {
          this.#superblockSequenceDurable = action.sequence;
          this.#superblockDurable = sb;
        }
        if (this.#checkpointWriting !== null && sb.checkpointOp === this.#checkpointWriting.op) this.#checkpointDurable();
        this.#checkViewChange();
        break;
      }
      case "checkpoint": {
        if (this.#checkpointWriting !== null && this.#checkpointWriting.op === action.op) {
          this.#checkpointOp = Math.max(this.#checkpointOp, action.op);
          this.#writeSuperblock();
        }
        break;
      }
      case "other":
        break;
    }
    // An entry that became durable matters only to what the next ready() emits (an
    // acknowledgement, a commit, its replies): a journal batch completes as many entries
    // at once, and running #afterProgress for each walked the uncommitted window once per
    // entry. Everything else is rare and takes effect now.
    if (action.kind === "entry") this.#progressDue = true;
    else this.#afterProgress();
  }

  /**
   * Takes everything to do since the last call (see replica_api.ts for the order). First
   * it prepares the requests queued since the last call, in batches, and sends one
   * coalesced prepare_ok: a driver that calls it once per turn batches by itself.
   */
  ready(): Ready {
    if (this.#snapshotting !== null) this.#stepSnapshot();
    if (this.#progressDue) this.#afterProgress();
    this.#prepareQueued();
    this.#flushPrepareOk();
    const out: Ready = { storage: this.#storage, messages: this.#messages, replies: this.#replies };
    this.#storage = [];
    this.#messages = [];
    this.#replies = [];
    return out;
  }

  /** A summary for metrics and checks. */
  status(): ReplicaStatus {
    return {
      replica: this.config.replica,
      status: this.#status,
      view: this.#view,
      logView: this.#logView,
      op: this.#log.head,
      commit: this.#commitMin,
      primary: this.#primary(),
      checkpointOp: this.#checkpointOp,
      droppedForeignCluster: this.counters.droppedForeignCluster,
      voting: this.#voting,
      commitMax: this.#commitMax,
    };
  }

  /** What this replica holds at `op` (for tests and debugging). */
  slotInfo(op: number): { trusted: boolean; body: boolean; durable: boolean; faulty: boolean; view: number } | null {
    const slot = this.#log.get(op);
    if (slot === undefined) return null;
    return { trusted: slot.trusted, body: slot.body !== null, durable: slot.durable, faulty: slot.faulty, view: slot.header.view };
  }

  /** Header bytes of a committed op still in the window (for checkers and tests). */
  committedHeader(op: number): Uint8Array | null {
    if (op > this.#commitMin) return null;
    if (op === this.#log.anchorOp) return null;
    return this.#log.get(op)?.bytes ?? null;
  }

  // --- dispatch -------------------------------------------------------------------------

  #dispatch(m: Message): void {
    switch (m.kind) {
      case "prepare": return this.#onPrepare(m);
      case "prepare_ok": return this.#onPrepareOk(m);
      case "commit": return this.#onCommit(m);
      case "start_view_change": return this.#onStartViewChange(m);
      case "do_view_change": return this.#onDoViewChange(m);
      case "start_view": return this.#onStartView(m);
      case "request_start_view": return this.#onRequestStartView(m);
      case "request_prepare": return this.#onRequestPrepare(m);
      case "entry": return this.#onEntry(m);
      case "ping": return this.#onPing(m);
      case "pong": return this.#onPong(m);
      case "request_checkpoint": return this.#onRequestCheckpoint(m);
      case "checkpoint_chunk": return this.#onCheckpointChunk(m);
      case "recovery": return this.#onRecovery(m);
      case "view_promised": return this.#onViewPromised(m);
      case "recovery_response": return this.#onRecoveryResponse(m);
    }
  }

  /** Common handling of a message from the primary of a view: true when it is ours and current. */
  #fromCurrentPrimary(m: Message): boolean {
    if (m.replica !== primaryOf(m.view, this.config.replicaCount)) {
      this.counters.droppedOtherwise++;
      return false;
    }
    if (m.view < this.#view) {
      // A deposed primary: tell it about the newer view so it steps down.
      if (this.#status === "normal" && this.#isPrimary()) this.#sendStartView(m.replica);
      // A lone view change that never completed: ask to rejoin the working view.
      if (this.#status !== "normal" && m.view >= this.#dvcViewMax) this.#send(m.replica, { kind: "request_start_view" });
      return false;
    }
    if (m.view > this.#view) {
      this.#learnView(m.view);
      this.#send(m.replica, { kind: "request_start_view" });
      return false;
    }
    if (this.#status !== "normal") {
      this.#send(m.replica, { kind: "request_start_view" });
      return false;
    }
    assert(!this.#isPrimary(), "two primaries in one view");
    this.#primarySilentTicks = 0;
    this.#commitMax = Math.max(this.#commitMax, m.commit);
    return true;
  }

  // --- normal operation -----------------------------------------------------------------

  #onPrepare(m: Message & { kind: "prepare" }): void {
    if (!this.#fromCurrentPrimary(m)) return;
    const durableBefore = this.#durableHead();
    let last = 0;
    for (const entry of m.entries) {
      // One lazy header per entry, kept by the slot: no views are made but the ones read.
      const header = decodeHeaderLazy(entry.header);
      if (!verifyBody(header, entry.body) || !checksumEqual(header.cluster, this.config.cluster)) {
        this.counters.droppedMalformed++;
        return;
      }
      this.#acceptAuthoritative(entry.header, entry.body, header);
      last = header.op;
    }
    this.#afterProgress();
    // Nothing new (a retransmission): the primary missed our acknowledgement, repeat it.
    // New entries are acknowledged once durable, one prepare_ok per ready().
    if (last <= durableBefore) this.#ackDue = "always";
  }

  /** Takes an entry the current view's primary vouches for. */
  #acceptAuthoritative(bytes: Uint8Array, body: Uint8Array | null, header: EntryHeader = decodeHeaderLazy(bytes)): void {
    if (header.op <= this.#commitMin || header.op <= this.#log.anchorOp) return;
    const slot = this.#log.get(header.op);
    if (slot !== undefined && checksumEqual(slot.header.checksum, header.checksum)) {
      slot.trusted = true;
      if (slot.body === null && body !== null) this.#fillBody(slot, body);
    } else {
      if (slot !== undefined) this.#truncateAt(header.op);
      const fresh = this.#log.put(bytes, body, true, header);
      if (body !== null && header.op <= this.#writtenOp) this.#writeCovered(fresh, slot);
    }
    const above = this.#log.get(header.op + 1);
    if (above !== undefined && !checksumEqual(above.header.parent, header.checksum)) this.#truncateAt(header.op + 1);
    this.#log.walkDown(header.op, this.#commitMin);
  }

  #fillBody(slot: Slot, body: Uint8Array): void {
    assert(slot.body === null, "fill only a missing body");
    assert(verifyBody(slot.header, body), "filled body matches its header");
    slot.body = body;
    if (!slot.durable && slot.writeId === null && slot.header.op <= this.#writtenOp) this.#writeCovered(slot, slot);
  }

  /** Discards the log from `op` on (memory and disk): a divergent uncommitted suffix. */
  #truncateAt(op: number): void {
    assert(op > this.#commitMin, `truncating committed op ${op} (commit ${this.#commitMin})`);
    this.#log.truncateFrom(op);
    if (op <= this.#writtenOp) this.#truncateJournalAfter(op - 1);
  }

  /** Has the journal discard every entry above `op`. */
  #truncateJournalAfter(op: number): void {
    this.#writtenOp = op;
    for (const held of this.#journalChecksums.keys()) if (held > op) this.#journalChecksums.delete(held);
    this.#action({ kind: "truncate", id: 0, op }, { kind: "other" });
  }

  /**
   * Puts a trusted entry (with its body) at an op the journal already covers
   * (≤ `#writtenOp`). The journal repairs in place only a copy that fails verification; a
   * sound copy of another entry is a stale entry of an older log, and since the journal
   * chains every append, everything above it on disk is stale too: the disk is truncated
   * there and the log rewritten from memory. `previous` is the slot this one replaces.
   */
  #writeCovered(slot: Slot, previous: Slot | undefined): void {
    const op = slot.header.op;
    assert(op <= this.#writtenOp && slot.body !== null && slot.trusted, "a covered write of a trusted entry");
    if (previous !== undefined && previous.durable && checksumEqual(previous.header.checksum, slot.header.checksum)) {
      slot.durable = true;
      return;
    }
    if (this.#faultyHoles.has(op) || previous?.faulty === true) {
      this.#writeSlot(slot, "repair_entry");
      return;
    }
    this.#rewriteFrom(op);
    this.#issueWrites();
  }

  /** Discards the journal from `op` on and marks the log there to be written again. */
  #rewriteFrom(op: number): void {
    this.#truncateJournalAfter(op - 1);
    for (const k of this.#log.ops()) {
      if (k < op) continue;
      const above = this.#log.get(k)!;
      above.durable = false;
      above.writeId = null;
    }
  }

  #writeSlot(slot: Slot, kind: "write_entry" | "repair_entry"): void {
    assert(slot.body !== null && slot.trusted, "write only trusted entries with bodies");
    const op = slot.header.op;
    // The hot path of #action, without its copy: one action object and one pending record per entry.
    const id = this.#nextId++;
    this.#storage.push({ kind, id, op, header: slot.bytes, body: slot.body });
    this.#pending.set(id, { kind: "entry", op });
    slot.writeId = id;
    this.#journalChecksums.set(op, slot.bytes);
  }

  /**
   * Appends trusted entries to the disk in op order. An entry goes on only where it chains:
   * when the journal holds another entry below it (a stale one of an older log, which the
   * window dropped without touching the disk) or one recovery found faulty, the journal
   * is cut below that entry and the log rewritten from there (the journal refuses to
   * append after either; chaos finding 8).
   */
  #issueWrites(): void {
    for (;;) {
      const op = this.#writtenOp + 1;
      const slot = this.#log.get(op);
      if (slot === undefined || slot.body === null || !slot.trusted) return;
      const below = this.#journalChecksums.get(op - 1);
      if (below !== undefined && (below === null || !checksumEqual(below.subarray(0, 16), slot.header.parent))) {
        // An applied op is never cut: it stays to be repaired in place (see #writeCovered).
        if (op - 1 <= this.#commitMin) return;
        this.#rewriteFrom(op - 1);
        continue;
      }
      this.#writtenOp = op;
      this.#writeSlot(slot, "write_entry");
    }
  }

  /** Highest op such that every op above the applied commit up to it is trusted and durable. */
  #durableHead(): number {
    let op = Math.max(this.#commitMin, this.#log.anchorOp);
    for (;;) {
      const slot = this.#log.get(op + 1);
      if (slot === undefined || !slot.trusted || !slot.durable) return op;
      op++;
    }
  }

  #viewDurable(): boolean {
    return this.#superblockDurable.view === this.#view && this.#superblockDurable.logView === this.#view;
  }

  #sendPrepareOk(): void {
    if (this.#status !== "normal" || this.#isPrimary() || !this.#voting || !this.#viewDurable()) return;
    const op = this.#durableHead();
    const sum = this.#log.trustedChecksum(op) ?? this.#log.anchor.checksum;
    this.#send(this.#primary(), { kind: "prepare_ok", op, checksum: sum });
  }

  #onPrepareOk(m: Message & { kind: "prepare_ok" }): void {
    if (m.view !== this.#view || this.#status !== "normal" || !this.#isPrimary()) return;
    if (m.op > this.#log.head) return;
    if (m.op > this.#log.anchorOp) {
      const sum = this.#log.trustedChecksum(m.op);
      if (sum === null || !checksumEqual(sum, m.checksum)) {
        this.counters.droppedOtherwise++;
        return;
      }
    }
    this.#acks[m.replica] = Math.max(this.#acks[m.replica]!, m.op);
    this.#advanceCommit();
    this.#afterProgress();
  }

  #advanceCommit(): void {
    if (this.#status !== "normal" || !this.#isPrimary()) return;
    const durable = [...this.#acks];
    durable[this.config.replica] = this.#viewDurable() ? this.#durableHead() : -1;
    const op = quorumOp(durable, this.quorum);
    if (op > this.#commitMax) {
      assert(op <= this.#log.head, "commit ≤ op");
      this.#commitMax = op;
    }
  }

  #onCommit(m: Message & { kind: "commit" }): void {
    if (!this.#fromCurrentPrimary(m)) return;
    this.#notePeerCheckpoint(m.replica, m.checkpointOp);
    this.#afterProgress();
  }

  #broadcastCommit(): void {
    const sum = this.#log.trustedChecksum(this.#commitMin) ?? new Uint8Array(16);
    this.#broadcast({ kind: "commit", commitChecksum: sum, checkpointOp: this.#checkpointOp });
  }

  /** Prepares queued requests while the pipeline has room. */
  #prepareQueued(): void {
    if (this.#status !== "normal" || !this.#isPrimary()) return;
    while (this.#batches.length > 0 && this.#batches[0]! <= this.#commitMax) this.#batches.shift();
    while (this.#queue.length > 0 && this.#batches.length < this.config.pipelineMax) {
      const entries: WireEntry[] = [];
      let size = 0;
      while (this.#queue.length > 0 && entries.length < this.config.batchRequestsMax) {
        const next = this.#queue[0]!;
        if (entries.length > 0 && size + entryHeaderSize + next.body.length > messageBodySizeMax) break;
        this.#queue.shift();
        entries.push(this.#prepareOne(next));
        size += entryHeaderSize + next.body.length;
      }
      assert(entries.length > 0, "a batch has at least one entry");
      this.#batches.push(this.#log.head);
      this.#broadcast({ kind: "prepare", entries });
    }
    assert(this.#batches.length <= this.config.pipelineMax, "pipeline bounded");
    this.#issueWrites();
  }

  #prepareOne(request: ClientRequest): WireEntry {
    const head = this.#log.head;
    const parent = this.#log.trustedChecksum(head);
    assert(parent !== null, "the primary's head is trusted");
    const previous = head === this.#log.anchorOp ? this.#log.anchor : this.#log.get(head)!.header;
    const timestamp = Math.max(this.#nowMs, previous.timestamp + 1);
    const bytes = encodeEntry({
      parent, cluster: this.config.cluster, client: request.client, op: head + 1, commit: this.#commitMax,
      timestamp, view: this.#view, request: request.request, operation: request.operation,
    }, request.body);
    this.#log.put(bytes, request.body, true);
    this.#replyTokens.set(head + 1, request.token);
    return { header: bytes, body: request.body };
  }

  #retransmitPrepares(): void {
    for (let r = 0; r < this.config.replicaCount; r++) {
      if (r === this.config.replica) continue;
      const from = Math.max(this.#acks[r]!, this.#log.anchorOp) + 1;
      const to = Math.min(this.#log.head, from + retransmitBurstMax - 1);
      let entries: WireEntry[] = [];
      let size = 0;
      for (let op = from; op <= to; op++) {
        const slot = this.#log.get(op);
        if (slot === undefined || slot.body === null || !slot.trusted) break;
        if (entries.length > 0 && size + entryHeaderSize + slot.body.length > messageBodySizeMax) {
          this.#send(r, { kind: "prepare", entries });
          entries = [];
          size = 0;
        }
        entries.push({ header: slot.bytes, body: slot.body });
        size += entryHeaderSize + slot.body.length;
      }
      if (entries.length > 0) this.#send(r, { kind: "prepare", entries });
    }
  }

  // --- commit and checkpoints -----------------------------------------------------------

  /** Everything that may follow progress: writes, acks, commits, checkpoints, replies. */
  #afterProgress(): void {
    this.#progressDue = false;
    this.#checkInvariants();
    this.#issueWrites();
    this.#advanceCommit();
    this.#commitAvailable();
    this.#prepareQueued();
    this.#answerQueries();
    this.#checkStateTransfer();
    this.#persistLogView();
    this.#checkVoting();
    if (this.#status === "normal" && !this.#isPrimary()) this.#sendPrepareOkIfNew();
  }

  /**
   * Moves the durable log_view up to the current view once the journal holds this view's
   * log up to the op it started from (every write and truncate before it is complete,
   * since storage actions complete in order). Returns whether it wrote the superblock.
   */
  #persistLogView(): boolean {
    if (this.#status !== "normal" || this.#logViewDurable >= this.#logView) return false;
    if (this.#checkpointWriting !== null) return false;
    if (this.#durableHead() < this.#logViewStartOp) return false;
    this.#logViewDurable = this.#logView;
    this.#writeSuperblock();
    return true;
  }

  /** Invariants that hold between inputs (cheap ones only). */
  #checkInvariants(): void {
    assert(this.#commitMin <= this.#commitMax, "commitMin ≤ commitMax");
    assert(this.#logView <= this.#view, "logView ≤ view");
    assert(this.#commitMin <= this.#log.head || this.#commitMin === this.#log.anchorOp, "applied ops are in the log");
    if (this.#status === "normal" && this.#log.head > this.#log.anchorOp) {
      const head = this.#log.get(this.#log.head);
      assert(head !== undefined && head.trusted, `replica ${this.config.replica}: head ${this.#log.head} of a normal replica is trusted`);
    }
  }

  /** Entry writes completed since the last #afterProgress (see storageDone). */
  #progressDue = false;

  /** Ops recovery found corrupt without a usable header (never a nack). */
  readonly #faultyHoles = new Set<number>();

  #lastAckSent = -1;
  /**
   * A prepare_ok to send at the next ready(): "changed" when the durable head moved,
   * "always" to repeat it. Coalescing them gives one acknowledgement per driver turn
   * instead of one per entry that becomes durable.
   */
  #ackDue: "none" | "changed" | "always" = "none";
  #sendPrepareOkIfNew(): void {
    if (this.#ackDue === "none") this.#ackDue = "changed";
  }

  #flushPrepareOk(): void {
    const due = this.#ackDue;
    this.#ackDue = "none";
    if (due === "none" || this.#status !== "normal" || this.#isPrimary()) return;
    const head = this.#durableHead();
    if (due === "always" || head !== this.#lastAckSent) {
      this.#lastAckSent = head;
      this.#sendPrepareOk();
    }
  }

  #commitAvailable(): void {
    if (this.#readsPending > 0) return; // bodies after a restart are still being read
    while (this.#commitMin < this.#commitMax) {
      const op = this.#commitMin + 1;
      const checkpointDue = op % this.config.checkpointIntervalOps === this.#checkpointPhaseOps;
      if (checkpointDue && (this.#checkpointWriting !== null || this.#snapshotting !== null)) return;
      const slot = this.#log.get(op);
      if (slot === undefined || !slot.trusted || slot.body === null || !slot.durable) return;
      if (!this.#log.chainsToTrusted(slot)) assert(false, `chain broken at committed op ${op}`);
      this.#apply(slot);
      this.#commitMin = op;
      if (checkpointDue) this.#startCheckpoint(slot);
    }
    assert(this.#commitMin <= this.#commitMax, "commitMin ≤ commitMax");
  }

  /**
   * A replica that lost its promises (its disk, or its log's head) votes again only when
   * (1) it holds durably the log of a view it learned from that view's primary after the
   * restart, up to the op that primary sent, (2) it applied that view's commit, and (3) a
   * quorum of other replicas answered this incarnation's `recovery` round from that view or
   * an older one. (3) rules out a newer view in which this replica acknowledged ops before
   * it lost them: such a view has a quorum of members past it, and any quorum of the other
   * replicas includes one of them (n = 2f+1: f of the 2f others plus f+1 answers overlap).
   * The log of its own view then holds every op committed so far.
   */
  #checkVoting(): void {
    if (this.#voting || this.#status !== "normal" || this.#catchUpCommit === null) return;
    if (this.#logViewDurable !== this.#logView || this.#commitMin < this.#catchUpCommit) return;
    let answers = 0;
    for (const view of this.#recoveryViews.values()) if (view <= this.#logView) answers++;
    if (answers < this.quorum) return;
    this.#voting = true;
    this.#catchUpCommit = null;
    this.#recoveryViews.clear();
    this.#sendPrepareOk();
  }

  /** A replica promised a newer view and cannot rejoin this one: move the cluster to it. */
  #onViewPromised(m: Message): void {
    if (this.#status !== "normal" || !this.#isPrimary() || m.view <= this.#view) return;
    this.#startViewChange(m.view);
  }

  #onRecovery(m: Message & { kind: "recovery" }): void {
    this.#send(m.replica, { kind: "recovery_response", nonce: m.nonce });
  }

  #onRecoveryResponse(m: Message & { kind: "recovery_response" }): void {
    if (this.#voting || m.nonce !== this.#recoveryNonce) return;
    this.#recoveryViews.set(m.replica, Math.max(this.#recoveryViews.get(m.replica) ?? 0, m.view));
    this.#afterProgress();
  }

  #apply(slot: Slot): void {
    const h = slot.header;
    let reply: StoredReply;
    /** The client's session key, made once per apply (see sessionKey). */
    let key: string | undefined;
    if (isInternalClient(h.client)) {
      assert(h.operation >= operationStateMachineMin, "internal operations are the state machine's");
      reply = { body: this.stateMachine.commit(this.#committedEntry(slot)) };
    } else if (h.operation === operationRegister) {
      const session = this.#clients.get(h.client);
      if (session === undefined) {
        this.#clients.register(h.client, h.op);
        reply = { body: new Uint8Array(0) };
      } else {
        reply = session.request === 0 ? session.reply : { error: "stale_request" };
      }
    } else {
      const client = h.client;
      key = sessionKey(client);
      const check = this.#clients.checkKey(key, client, h.request);
      if (check.kind === "duplicate") reply = check.reply;
      else if (check.kind === "error") reply = { error: check.error };
      else {
        reply = { body: this.stateMachine.commit(this.#committedEntry(slot)) };
        this.#clients.recordKey(key, h.request, h.op, reply);
      }
    }
    const token = this.#replyTokens.get(h.op);
    if (token !== undefined) {
      this.#replyTokens.delete(h.op);
      this.#reply(token, reply, h.op);
      key ??= sessionKey(h.client);
      if (this.#inflight.get(key)?.request === h.request) this.#inflight.delete(key);
    }
  }

  #committedEntry(slot: Slot): Parameters<StateMachine["commit"]>[0] {
    const h = slot.header;
    return {
      op: h.op, view: h.view, timestamp: h.timestamp, client: h.client, request: h.request,
      operation: h.operation, body: slot.body!, checksum: h.checksum,
    };
  }

  #startCheckpoint(slot: Slot): void {
    assert(this.#checkpointWriting === null && this.#snapshotting === null, "one checkpoint at a time");
    const op = slot.header.op;
    // The client table is small next to the state (sessions × one reply): taken now, at the op.
    const clients = this.#clients.encode();
    if (this.stateMachine.beginSnapshot === undefined) {
      this.#writeCheckpoint(op, slot.bytes, this.stateMachine.snapshot(), clients, false);
      return;
    }
    // Stepped from the next ready() on: the turn that applied the op already paid for the
    // job's start and the client table.
    const spare = this.#snapshotSpare ?? undefined;
    this.#snapshotSpare = null;
    this.#snapshotting = { op, header: slot.bytes, clients, job: this.stateMachine.beginSnapshot(spare) };
  }

  /**
   * Encodes up to {@link snapshotStepBytes} more of the checkpoint's snapshot (once per
   * ready(), so the replica answers between steps); once complete, writes the checkpoint.
   */
  #stepSnapshot(): void {
    const snapshotting = this.#snapshotting;
    assert(snapshotting !== null, "a snapshot is being encoded");
    if (!snapshotting.job.step(snapshotStepBytes)) return;
    this.#snapshotting = null;
    this.#writeCheckpoint(snapshotting.op, snapshotting.header, snapshotting.job.result(), snapshotting.clients, true);
  }

  /**
   * Hands the checkpoint of `op` to storage (its state image is one piece, not copied);
   * `fromJob`: a snapshot job encoded `state`, so it may be reused once replaced.
   */
  #writeCheckpoint(op: number, header: Uint8Array, state: Uint8Array, clients: Uint8Array, fromJob: boolean): void {
    assert(this.#checkpointWriting === null, "one checkpoint written at a time");
    assert(op <= this.#commitMin, "a checkpoint covers applied ops only");
    const image = encodeCheckpointImage({ op, header, state, clients });
    this.#checkpointWriting = { op, image, header, jobState: fromJob ? state : null };
    this.#action({ kind: "write_checkpoint", id: 0, op, checkpoint: image }, { kind: "checkpoint", op });
  }

  #checkpointDurable(): void {
    const writing = this.#checkpointWriting;
    assert(writing !== null, "a checkpoint was being written");
    this.#checkpointWriting = null;
    this.#checkpointImage = writing.image;
    // The image replaced is read no more (chunks of it were copied into their messages and
    // its file write completed long ago): its state buffer is the next job's to write over.
    this.#snapshotSpare = this.#checkpointJobState;
    this.#checkpointJobState = writing.jobState;
    const anchorBefore = this.#log.anchorOp;
    if (writing.op > anchorBefore) this.#log.advanceAnchor(writing.header);
    // What the journal holds is recorded from the anchor up (older ops were dropped at the
    // anchor before): the ops released are a dense range, not a walk of the whole table.
    for (let op = anchorBefore; op < this.#log.anchorOp; op++) this.#journalChecksums.delete(op);
    this.#writtenOp = Math.max(this.#writtenOp, writing.op);
    this.#action({ kind: "release", id: 0, op: writing.op }, { kind: "other" });
  }

  // --- view change ----------------------------------------------------------------------

  #jitter(): number {
    // Deterministic spread so that replicas do not time out in lockstep.
    return (this.config.replica + this.#view) % this.config.replicaCount;
  }

  /** Leaves primary work behind: queued requests and pending reads get a definite answer. */
  #abandonPrimaryWork(): void {
    for (const request of this.#queue) this.#reply(request.token, { error: "not_primary", message: "view changed" });
    this.#queue.length = 0;
    for (const q of this.#reads.abandon()) this.#reply(q.token, { error: "not_primary", message: "view changed" });
    // Requests already prepared may still commit: the client retries and gets the stored reply.
    this.#replyTokens.clear();
    this.#inflight.clear();
    this.#batches = [];
  }

  #startViewChange(view: number): void {
    assert(view > this.#view, "view changes move forward");
    this.#abandonPrimaryWork();
    this.#view = view;
    this.#status = "view_change";
    this.#svcFrom.clear();
    this.#svcFrom.add(this.config.replica);
    this.#claims.clear();
    this.#dvcSent = false;
    this.#viewChangeTicks = 0;
    // The view is persisted only when this replica is about to promise it (do_view_change).
    this.#broadcast({ kind: "start_view_change" });
    this.#checkViewChange();
  }

  /** Moves to a newer view learned from its primary, waiting for its start_view. */
  #learnView(view: number): void {
    assert(view > this.#view, "learn only newer views");
    this.#abandonPrimaryWork();
    this.#view = view;
    this.#status = "recovering";
    this.#primarySilentTicks = 0;
  }

  #onStartViewChange(m: Message): void {
    if (m.view < this.#view) return;
    if (m.view > this.#view) {
      if (!this.#voting) return;
      // No disruptive elections: a replica that hears its primary ignores a lone candidate.
      if (this.#status === "normal" && this.#isPrimary()) {
        // Let a replica stuck in a lone view change rejoin this working view.
        this.#sendStartView(m.replica);
        return;
      }
      if (this.#status === "normal" && this.#primarySilentTicks < this.config.timeoutPrimaryTicks / 2) return;
      this.#startViewChange(m.view);
    }
    if (this.#status === "view_change") {
      this.#svcFrom.add(m.replica);
      this.#checkViewChange();
    } else if (this.#status === "normal" && this.#isPrimary()) {
      this.#sendStartView(m.replica);
    }
  }

  #checkViewChange(): void {
    if (this.#status !== "view_change" || this.#dvcSent || !this.#voting) return;
    if (this.#svcFrom.size < this.quorum) return;
    // The view must be durable before promising it to the new primary.
    if (this.#superblockDurable.view < this.#view) {
      if (this.#superblockViewWriting < this.#view) {
        this.#superblockViewWriting = this.#view;
        this.#writeSuperblock(true);
      }
      return;
    }
    this.#dvcSent = true;
    this.#dvcViewMax = Math.max(this.#dvcViewMax, this.#view);
    const dvc = this.#doViewChange();
    if (this.#isPrimaryOf(this.#view)) {
      this.#claims.set(this.config.replica, claimOf(this.config.replica, this.#commitMax, dvc));
      this.#maybeFinishViewChange();
    } else {
      this.#send(this.#primary(), dvc);
    }
  }

  #doViewChange(): MessageBody & { kind: "do_view_change" } {
    return {
      kind: "do_view_change", logView: this.#logView, op: this.#log.head, checkpointOp: this.#checkpointOp,
      headers: claimHeaders(this.#log, this.#commitMin), nacks: claimNacks(this.#log, this.#commitMin, this.#faultyHoles),
    };
  }

  #onDoViewChange(m: Message & { kind: "do_view_change" }): void {
    if (!this.#isPrimaryOf(m.view) || m.view < this.#view || !this.#voting) return;
    if (m.view > this.#view) this.#startViewChange(m.view);
    if (this.#status === "normal") {
      if (this.#isPrimary()) this.#sendStartView(m.replica);
      return;
    }
    if (this.#status !== "view_change") return;
    if (m.logView > m.view || (m.headers.length > 0 && decodeHeader(m.headers[m.headers.length - 1]!).op !== m.op)) {
      this.counters.droppedMalformed++;
      return;
    }
    this.#svcFrom.add(m.replica);
    this.#claims.set(m.replica, claimOf(m.replica, m.commit, m));
    this.#checkViewChange();
    this.#maybeFinishViewChange();
  }

  #maybeFinishViewChange(): void {
    if (this.#status !== "view_change" || this.#claims.size < this.quorum) return;
    if (!this.#claims.has(this.config.replica)) return;
    const claims = [...this.#claims.values()];
    const winner = winningClaim(claims);
    let commit = this.#commitMax;
    let checkpoint = { op: 0, replica: -1 };
    for (const claim of claims) {
      commit = Math.max(commit, claim.commit);
      if (claim.checkpointOp > checkpoint.op) checkpoint = { op: claim.checkpointOp, replica: claim.replica };
    }
    assert(winner.op >= this.#commitMin, "the winning log holds every applied op");
    this.#installView(winner.headers, winner.op);
    // Headers from the other claims fill gaps, where the chain from above confirms them.
    for (const claim of claims) {
      for (const bytes of claim.headers) {
        const op = decodeHeader(bytes).op;
        if (op > winner.op || op <= this.#commitMin || op <= this.#log.anchorOp) continue;
        const expected = this.#log.expectedChecksum(op);
        const slot = this.#log.get(op);
        if (expected !== null && (slot === undefined || !slot.trusted) && checksumEqual(expected, bytes.subarray(0, 16))) {
          if (slot !== undefined && checksumEqual(slot.header.checksum, expected)) slot.trusted = true; // keeps its durability
          else this.#log.put(bytes, null, true);
          this.#log.walkDown(op, this.#commitMin);
        }
      }
    }
    this.#trustByView();
    this.#truncateNacked(claims, winner, commit);
    this.#commitMax = Math.max(commit, this.#commitMin);
    this.#status = "normal";
    this.#logView = this.#view;
    this.#acks.fill(-1);
    this.#viewStartOp = this.#log.head;
    this.#logViewStartOp = this.#log.head;
    this.#viewChangeBackoff = 1;
    this.#heartbeatTicks = 0;
    if (!this.#persistLogView()) this.#writeSuperblock();
    if (checkpoint.replica !== -1 && checkpoint.replica !== this.config.replica) {
      this.#notePeerCheckpoint(checkpoint.replica, checkpoint.op);
    }
    for (let r = 0; r < this.config.replicaCount; r++) if (r !== this.config.replica) this.#sendStartView(r);
    this.#repair();
    this.#afterProgress();
  }

  /**
   * Discards the lowest op of the winning log (and all above it) that a quorum of claims
   * nack: a commit needs the entry durable on a quorum, which intersects every quorum of
   * claims, so an op nacked by a whole quorum was never committed. Without this, an op whose
   * body died with a primary (its header reached a backup in a start_view) would block
   * the log forever. A corrupt copy is never a nack.
   */
  #truncateNacked(claims: readonly Claim[], winner: Claim, commit: number): void {
    const floor = Math.max(commit, this.#commitMin, this.#log.anchorOp);
    const op = nackedByQuorum(this.#log, claims, winner, floor, this.quorum);
    // Only when this primary knows every op below: otherwise the new head would sit on ops
    // it has no header for, and it would prepare over them (they may be committed). Without
    // the truncation the view stalls on the missing op and a later view change, with more
    // replicas answering, tries again: liveness yields to safety.
    if (op !== null && this.#trustedThrough(op - 1)) this.#truncateAt(op);
  }

  /** Whether every op from the applied commit up to `op` is in the log and trusted. */
  #trustedThrough(op: number): boolean {
    for (let k = op; k > Math.max(this.#commitMin, this.#log.anchorOp); k--) {
      const slot = this.#log.get(k);
      if (slot === undefined || !slot.trusted) return false;
    }
    return true;
  }

  /**
   * Installs a view's log: `headers` (ascending, ending at `op`) are the new primary's;
   * everything above `op` and from the first disagreeing op on is a divergent
   * uncommitted suffix and goes (memory and disk); older slots below are re-checked by
   * walking the chain down.
   */
  #installView(headers: readonly Uint8Array[], op: number): void {
    this.#log.distrustAbove(this.#commitMin);
    let divergence = this.#log.head > op ? op + 1 : Infinity;
    const decoded = headers.map((bytes) => ({ bytes, header: decodeHeader(bytes) }))
      .filter((h) => h.header.op > this.#commitMin && h.header.op > this.#log.anchorOp);
    for (const { header } of decoded) {
      const slot = this.#log.get(header.op);
      if (slot !== undefined && !checksumEqual(slot.header.checksum, header.checksum)) {
        divergence = Math.min(divergence, header.op);
      }
    }
    if (divergence !== Infinity) this.#truncateAt(divergence);
    for (const { bytes, header } of decoded) {
      const slot = this.#log.get(header.op);
      if (slot !== undefined) slot.trusted = true;
      else this.#log.put(bytes, null, true);
    }
    // Walk the chain down from the lowest header of every run: a hole in the sender's log
    // is where this replica's own copy may be verified and then repair the sender.
    const installed = new Set(decoded.map((d) => d.header.op));
    for (const { header } of decoded) {
      if (!installed.has(header.op - 1) && this.#log.get(header.op)?.trusted === true) {
        this.#log.walkDown(header.op, this.#commitMin);
      }
    }
    assert(
      this.#log.head === op || op <= this.#commitMin || op <= this.#log.anchorOp,
      `installed log ends at op ${op}: head ${this.#log.head} commit ${this.#commitMin} anchor ${this.#log.anchorOp} headers ${decoded.map((d) => d.header.op)}`,
    );
  }

  /**
   * Trusts a held entry that the new log cannot vouch for by its chain (a hole above it)
   * when it was made in the same view as the nearest trusted entry above it: one primary
   * makes one entry per op in its view, and a view's log is linear, so the two belong to
   * the same log. This keeps an op that a quorum held (and may have committed) when the
   * entries between it and the trusted part are missing everywhere in the quorum.
   */
  #trustByView(): void {
    let viewAbove = -1;
    for (let op = this.#log.head; op > Math.max(this.#commitMin, this.#log.anchorOp); op--) {
      const slot = this.#log.get(op);
      if (slot === undefined) continue;
      if (!slot.trusted && slot.header.view === viewAbove && !slot.faulty) {
        const above = this.#log.get(op + 1);
        if (above === undefined || !above.trusted || checksumEqual(above.header.parent, slot.header.checksum)) {
          slot.trusted = true;
        }
      }
      if (slot.trusted) viewAbove = slot.header.view;
    }
  }

  #sendStartView(to: number): void {
    assert(this.#status === "normal" && this.#isPrimary(), "only a normal primary sends start_view");
    const headers = this.#log.trustedHeaders(this.#commitMin, messageHeadersMax);
    this.#send(to, { kind: "start_view", op: this.#log.head, checkpointOp: this.#checkpointOp, headers });
  }

  #onStartView(m: Message & { kind: "start_view" }): void {
    if (m.replica !== primaryOf(m.view, this.config.replicaCount)) return;
    if (m.view < this.#view) {
      // Rejoin an older view only from a lone view change that promised nothing beyond it.
      if (this.#status !== "normal" && m.view < this.#dvcViewMax && this.#voting) {
        // Bound by a do_view_change the rest never acted on (they restarted, or moved on
        // without it): ask the older view's primary to lead the cluster past the promise.
        this.#send(m.replica, { kind: "view_promised" });
      }
      if (this.#status === "normal" || m.view < this.#dvcViewMax || m.view < this.#logView) return;
    }
    if (m.view === this.#view && this.#status === "normal") {
      this.#sendPrepareOk();
      return;
    }
    if (m.headers.length > 0 && decodeHeader(m.headers[m.headers.length - 1]!).op !== m.op) {
      this.counters.droppedMalformed++;
      return;
    }
    if (m.view !== this.#view) this.#abandonPrimaryWork();
    this.#view = m.view;
    this.#logView = m.view;
    this.#status = "normal";
    this.#primarySilentTicks = 0;
    this.#viewChangeBackoff = 1;
    this.#lastAckSent = -1;
    this.#commitMax = Math.max(this.#commitMax, m.commit);
    if (m.op >= this.#commitMin) {
      this.#installView(m.headers, m.op);
      this.#trustByView();
    }
    this.#logViewStartOp = Math.max(m.op, this.#commitMin);
    if (!this.#voting) this.#catchUpCommit = Math.max(this.#catchUpCommit ?? 0, m.commit);
    if (!this.#persistLogView()) this.#writeSuperblock();
    this.#notePeerCheckpoint(m.replica, m.checkpointOp);
    this.#repair();
    this.#afterProgress();
  }

  #onRequestStartView(m: Message): void {
    if (this.#status === "normal" && this.#isPrimary()) this.#sendStartView(m.replica);
  }

  // --- repair ---------------------------------------------------------------------------

  /** Asks peers for missing or faulty entries, by op and the checksum the chain demands. */
  #repair(): void {
    if (this.#status !== "normal") return;
    const peers = this.config.replicaCount - 1;
    if (peers === 0) return;
    let asked = 0;
    this.#repairRound++;
    for (let op = this.#log.head; op > Math.max(this.#commitMin, this.#log.anchorOp) && asked < repairBurstMax; op--) {
      const slot = this.#log.get(op);
      let sum: Uint8Array | null = null;
      if (slot !== undefined && slot.trusted) {
        if (slot.body !== null || (slot.durable && this.#readsPending > 0)) continue;
        sum = slot.header.checksum;
      } else {
        sum = this.#log.expectedChecksum(op);
      }
      if (sum === null) continue;
      // Backups ask the primary first; otherwise rotate over the peers.
      let to = (this.config.replica + 1 + ((op + this.#repairRound) % peers)) % this.config.replicaCount;
      if (!this.#isPrimary() && this.#repairRound % 2 === 0) to = this.#primary();
      this.#send(to, { kind: "request_prepare", op, checksum: sum });
      this.counters.repairsRequested++;
      asked++;
    }
  }

  #onRequestPrepare(m: Message & { kind: "request_prepare" }): void {
    const slot = this.#log.get(m.op);
    if (slot === undefined || slot.body === null || !checksumEqual(slot.header.checksum, m.checksum)) return;
    this.#send(m.replica, { kind: "entry", entry: { header: slot.bytes, body: slot.body } });
  }

  #onEntry(m: Message & { kind: "entry" }): void {
    const header = decodeHeader(m.entry.header);
    if (!verifyBody(header, m.entry.body) || header.op <= this.#commitMin || header.op <= this.#log.anchorOp) return;
    const slot = this.#log.get(header.op);
    if (slot !== undefined && slot.trusted) {
      if (slot.body === null && checksumEqual(slot.header.checksum, header.checksum)) this.#fillBody(slot, m.entry.body);
    } else {
      const expected = this.#log.expectedChecksum(header.op);
      if (expected === null || !checksumEqual(expected, header.checksum)) return;
      if (slot !== undefined && checksumEqual(slot.header.checksum, header.checksum)) {
        // The entry this replica holds, confirmed by the chain: keep it (and its durability).
        slot.trusted = true;
        if (slot.body === null) this.#fillBody(slot, m.entry.body);
      } else {
        const fresh = this.#log.put(m.entry.header, m.entry.body, true);
        if (header.op <= this.#writtenOp) this.#writeCovered(fresh, slot);
      }
      this.#log.walkDown(header.op, this.#commitMin);
    }
    this.#afterProgress();
  }

  // --- state transfer -------------------------------------------------------------------

  #notePeerCheckpoint(replica: number, op: number): void {
    if (op > this.#peerCheckpoint.op) this.#peerCheckpoint = { op, replica };
  }

  /** Starts a state transfer when the next op to apply is covered by a peer's checkpoint and missing here. */
  #checkStateTransfer(): void {
    if (this.#transfer !== null || this.#status !== "normal" || this.#readsPending > 0) return;
    if (this.#peerCheckpoint.op <= this.#commitMin) return;
    const next = this.#log.get(this.#commitMin + 1);
    if (next !== undefined && next.trusted && next.body !== null) return;
    this.#transfer = new CheckpointTransfer(this.#peerCheckpoint.replica, this.#peerCheckpoint.op);
    this.counters.stateTransfers++;
    this.#requestChunk();
  }

  #requestChunk(): void {
    const t = this.#transfer;
    if (t === null) return;
    this.#send(t.from, { kind: "request_checkpoint", op: t.op, offset: t.received });
  }

  #onRequestCheckpoint(m: Message & { kind: "request_checkpoint" }): void {
    const image = this.#checkpointImage;
    const size = checkpointSize(image);
    // Whatever checkpoint the peer asked for, send our latest: it restarts if the op differs.
    const offset = m.op === this.#checkpointOp ? Math.min(m.offset, size) : 0;
    const chunk = checkpointRange(image, offset, checkpointChunkSizeMax);
    // Hashed once per checkpoint, not once per chunk: an 18 MB blob costs about 20 ms.
    if (this.#checkpointChecksum?.of !== image) this.#checkpointChecksum = { of: image, sum: checksum(...image) };
    this.#send(m.replica, {
      kind: "checkpoint_chunk", op: this.#checkpointOp, checksum: this.#checkpointChecksum.sum, size, offset, bytes: chunk,
    });
  }

  #onCheckpointChunk(m: Message & { kind: "checkpoint_chunk" }): void {
    const t = this.#transfer;
    if (t === null || m.replica !== t.from) return;
    if (m.op <= this.#commitMin) {
      this.#transfer = null;
      return;
    }
    const outcome = t.accept(m);
    if (outcome.kind === "more") this.#requestChunk();
    if (outcome.kind === "complete" || outcome.kind === "corrupt") this.#transfer = null;
    if (outcome.kind === "complete") this.#installCheckpoint(outcome.blob);
  }

  #installCheckpoint(blob: Uint8Array): void {
    let parts;
    try {
      parts = decodeCheckpoint(blob);
    } catch (error) {
      if (error instanceof CheckpointError) return;
      throw error;
    }
    if (parts.op <= this.#commitMin || this.#checkpointWriting !== null) return;
    const known = this.#log.trustedChecksum(parts.op);
    if (known !== null && !checksumEqual(known, parts.header.subarray(0, 16))) return;
    // A snapshot of an older op still being encoded is of a state about to be replaced.
    this.#snapshotting?.job.abort();
    this.#snapshotting = null;
    this.stateMachine.restore(parts.state);
    this.#clients.restore(parts.clients);
    this.#commitMin = parts.op;
    this.#commitMax = Math.max(this.#commitMax, parts.op);
    this.#log.advanceAnchor(parts.header);
    // Entries above the new anchor that do not chain from it are not this log's.
    const next = this.#log.get(parts.op + 1);
    if (next !== undefined && !checksumEqual(next.header.parent, this.#log.anchor.checksum)) this.#log.remove(parts.op + 1);
    // The journal continues after the checkpoint: where it holds the checkpoint's own
    // entry, entries above are checked as they are written; where it holds another entry
    // at that op (or a faulty one), it is cut below it so that the next append starts it
    // over from the checkpoint (the driver's resetAfterCheckpoint).
    const held = this.#journalChecksums.get(parts.op);
    if (this.#writtenOp >= parts.op && (held === undefined || held === null || !checksumEqual(held.subarray(0, 16), parts.header.subarray(0, 16)))) {
      this.#truncateJournalAfter(parts.op - 1);
    }
    for (const op of this.#journalChecksums.keys()) if (op < parts.op) this.#journalChecksums.delete(op);
    this.#journalChecksums.set(parts.op, parts.header.slice(0, entryHeaderSize));
    this.#writtenOp = Math.max(this.#writtenOp, parts.op);
    this.#checkpointWriting = { op: parts.op, image: [blob], header: parts.header, jobState: null };
    this.#action({ kind: "write_checkpoint", id: 0, op: parts.op, checkpoint: [blob] }, { kind: "checkpoint", op: parts.op });
    this.#repair();
  }

  // --- reads ----------------------------------------------------------------------------

  #pings(nonces: readonly number[]): void {
    for (const nonce of nonces) this.#broadcast({ kind: "ping", nonce });
  }

  #onPing(m: Message & { kind: "ping" }): void {
    if (m.view !== this.#view || this.#status !== "normal" || m.replica !== this.#primary()) return;
    this.#primarySilentTicks = 0;
    this.#send(m.replica, { kind: "pong", nonce: m.nonce });
  }

  #onPong(m: Message & { kind: "pong" }): void {
    if (m.view !== this.#view || this.#status !== "normal" || !this.#isPrimary()) return;
    this.#pings(this.#reads.pong(m.replica, m.nonce));
    this.#answerQueries();
  }

  #answerQueries(): void {
    for (const q of this.#reads.takeAnswerable(this.#commitMin)) this.#answerQuery(q.token, q.body);
  }

  #answerQuery(token: number, body: Uint8Array): void {
    let result: Uint8Array;
    try {
      result = this.stateMachine.query(body);
    } catch (error) {
      this.#reply(token, { error: "query_failed", message: (error as Error).message });
      return;
    }
    this.#reply(token, { body: result });
  }

  // --- plumbing -------------------------------------------------------------------------

  #isPrimaryOf(view: number): boolean {
    return primaryOf(view, this.config.replicaCount) === this.config.replica;
  }

  #isPrimary(): boolean {
    return this.#isPrimaryOf(this.#view);
  }

  #primary(): number {
    return primaryOf(this.#view, this.config.replicaCount);
  }

  #read(op: number): void {
    this.#readsPending++;
    this.#action({ kind: "read_entry", id: 0, op }, { kind: "read", op });
  }

  /**
   * The commit number the superblock may carry: recovery applies every journal entry up
   * to it, so it must not pass what the journal holds of the committed log. Applied ops
   * are durable; beyond them, only while the journal holds the durable log_view's log,
   * and only as far as this replica holds that log durably.
   */
  #commitDurable(): number {
    let commit = Math.max(this.#commitMin, this.#checkpointOp);
    if (this.#logViewDurable === this.#logView) commit = Math.max(commit, Math.min(this.#commitMax, this.#durableHead()));
    // Never below a commit already written: the journal's entries up to it were the
    // committed ones when it was written, and committed entries are never replaced (every
    // later view's log holds them). After a restart the applied commit starts at the
    // checkpoint, and a faulty entry can hold the durable head below it.
    this.#commitWritten = Math.max(this.#commitWritten, commit);
    return this.#commitWritten;
  }

  /**
   * Persists the replica's metadata. The view goes to disk only as a promise (about to
   * send do_view_change: `promise`) or as the view this replica is normal in; otherwise
   * (a view change it has not promised, a newer view it only heard of) the last view
   * written stays, because such a replica may still rejoin an older working view, and a
   * view on disk never goes back.
   */
  #writeSuperblock(promise = false): void {
    assert(this.#logView <= this.#view, "logView ≤ view");
    assert(this.#logViewDurable <= this.#logView, "the durable log_view trails the in-memory one");
    const view = promise || this.#status === "normal" ? this.#view : this.#viewWritten;
    assert(view >= this.#viewWritten, `superblock view goes back ${this.#viewWritten} -> ${view}`);
    this.#viewWritten = view;
    // A promise on its way to disk binds like a sent one: after a restart the view on disk
    // is taken as promised, so the replica must not rejoin an older view meanwhile.
    if (promise) this.#dvcViewMax = Math.max(this.#dvcViewMax, view);
    const superblock: SuperblockState = {
      view,
      logView: this.#logViewDurable,
      commit: this.#commitDurable(),
      checkpointOp: this.#checkpointOp,
    };
    const sequence = ++this.#superblockSequence;
    this.#action({ kind: "write_superblock", id: 0, superblock }, { kind: "superblock", superblock, sequence });
  }

  /** Queues a storage action with a fresh id (the `id: 0` placeholder is replaced). */
  #action(action: StorageAction, pending: PendingAction): number {
    const id = this.#nextId++;
    this.#storage.push({ ...action, id } as StorageAction);
    this.#pending.set(id, pending);
    return id;
  }

  #envelope(): { cluster: Uint8Array; replica: number; view: number; commit: number } {
    return { cluster: this.config.cluster, replica: this.config.replica, view: this.#view, commit: this.#commitMax };
  }

  #send(to: number, body: MessageBody): void {
    assert(to !== this.config.replica && to >= 0 && to < this.config.replicaCount, "send to a peer");
    this.#messages.push({ to, bytes: encodeMessage({ ...this.#envelope(), ...body } as Message) });
  }

  #broadcast(body: MessageBody): void {
    if (this.config.replicaCount === 1) return;
    const bytes = encodeMessage({ ...this.#envelope(), ...body } as Message);
    for (let r = 0; r < this.config.replicaCount; r++) if (r !== this.config.replica) this.#messages.push({ to: r, bytes });
  }

  #reply(token: number, reply: { body?: Uint8Array; error?: ReplyError; message?: string }, op?: number): void {
    const out: { -readonly [K in keyof ClientReply]: ClientReply[K] } = {
      token, view: this.#view, primary: this.#primary(),
    };
    if (reply.body !== undefined) out.body = reply.body;
    if (reply.error !== undefined) out.error = reply.error;
    if (reply.message !== undefined) out.message = reply.message;
    if (op !== undefined) out.op = op;
    this.#replies.push(out);
  }
}

function validateConfig(config: ReplicaConfig): void {
  assert(config.cluster.length === 16, "cluster id is 16 bytes");
  assert(config.replicaCount >= 1 && config.replicaCount % 2 === 1, "replica count is 2f+1");
  assert(config.replica >= 0 && config.replica < config.replicaCount, "replica index in range");
  assert(config.replicaCount <= 0xffff, "replica count fits u16");
  for (const [name, value] of [
    ["checkpointIntervalOps", config.checkpointIntervalOps], ["clientSessionsMax", config.clientSessionsMax],
    ["pipelineMax", config.pipelineMax], ["batchRequestsMax", config.batchRequestsMax],
    ["timeoutPrimaryTicks", config.timeoutPrimaryTicks], ["heartbeatTicks", config.heartbeatTicks],
  ] as const) {
    assert(Number.isSafeInteger(value) && value >= 1, `${name} must be a positive integer, got ${value}`);
  }
  assert(config.heartbeatTicks < config.timeoutPrimaryTicks, "heartbeats come faster than the primary timeout");
}
