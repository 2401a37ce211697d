/**
 * The contract between the pure replica (src/vsr/replica*.ts) and the drivers that run
 * it: the simulator (src/sim/) and the real node (src/node/). Owned by src/vsr; a change
 * here is noted in the change log below so the drivers can follow.
 *
 * The replica never reads a clock, sets a timer, draws a random number, opens a socket or
 * touches a file. A driver:
 *   1. calls `tick(nowMs)` every `tickMs` of its clock (virtual in the simulator);
 *   2. hands it every message that arrives (`receive`) and every client request (`request`,
 *      `query`);
 *   3. after each call, takes `ready()` and, in this order: starts every storage action
 *      (in the order given; they must take effect in that order), sends every message,
 *      delivers every client reply;
 *   4. reports each storage action's completion (`storageDone`), with read results.
 * The replica itself holds back anything that must wait for durability (a prepare_ok is
 * only emitted after its entry's `storageDone`), so a driver may send messages at once.
 *
 * Change log:
 * - v1 (lead): first version.
 * - v2 (vsr): ReplyError gains "invalid_operation" (a reserved operation number, or a
 *   session operation on the all-zero internal client). ReplicaStatus gains optional `voting` (false
 *   while a replica that lost its disk catches up; a driver that formats a fresh disk must
 *   keep reporting intact=false on later restarts until it has seen voting=true) and
 *   `commitMax` (highest op known committed; `commit` is the highest applied). Storage
 *   order rules spelled out: `repair_entry` overwrites one op in place (a faulty entry, or
 *   a stale one from an old view below entries that are kept); after a state transfer's
 *   `write_checkpoint` + `release`, the next `write_entry` may be at checkpoint op + 1 even
 *   if the journal's head was lower (the ops between are covered by the checkpoint).
 *   `freshRecoveredState()` (replica.ts) is the RecoveredState of a brand-new replica.
 * - v3 (vsr): `write_checkpoint` carries the blob as its pieces (`readonly Uint8Array[]`,
 *   joined in order), so the state image is not copied into a blob. A state machine may
 *   offer `beginSnapshot()` (state_machine.ts): the replica then steps the snapshot in
 *   `ready()` and hands the write over once it is complete, some turns after the
 *   checkpoint's op was applied (drivers need not change for that).
 * @module
 */
import type { StateMachine } from "./state_machine.ts";

/** Index of a replica in the cluster, 0 ≤ replica < replicaCount. */
export type ReplicaIndex = number;

/** Configuration fixed when a replica starts; equal on every replica of a cluster. */
export interface ReplicaConfig {
  /** 128-bit cluster id; messages from another cluster are dropped and counted. */
  readonly cluster: Uint8Array;
  /** This replica's index. */
  readonly replica: ReplicaIndex;
  /** Number of replicas, 2f+1 (1, 3, 5, …). */
  readonly replicaCount: number;
  /** Ops between checkpoints. */
  readonly checkpointIntervalOps: number;
  /** Client sessions kept in the replicated client table before the oldest is evicted. */
  readonly clientSessionsMax: number;
  /** Prepares in flight (prepared, not yet committed) at the primary. */
  readonly pipelineMax: number;
  /** Client requests accepted into one prepare (batching). */
  readonly batchRequestsMax: number;
  /** Ticks without hearing from the primary before a backup starts a view change. */
  readonly timeoutPrimaryTicks: number;
  /** Ticks between the primary's heartbeats (commit messages). */
  readonly heartbeatTicks: number;
}

/** A client request arriving at a replica (usually the primary). */
export interface ClientRequest {
  /** 128-bit client session id. */
  readonly client: Uint8Array;
  /** Request number, strictly increasing within the session (0 = register the session). */
  readonly request: number;
  /** Operation number; 0..15 are the replica's own (register), ≥ 16 the state machine's. */
  readonly operation: number;
  /** Request body. */
  readonly body: Uint8Array;
  /** Driver's token to route the reply (a connection, a pending HTTP request, …). */
  readonly token: number;
}

/** A read-only query; `linearizable` waits for a quorum round confirming primacy. */
export interface ClientQuery {
  readonly body: Uint8Array;
  readonly mode: "linearizable" | "stale";
  readonly token: number;
}

/** Definite errors a replica can answer with, and the one that is not definite. */
export type ReplyError =
  | "not_primary"      // definite: not executed here; `primary` says where to go
  | "session_evicted"  // definite: the session is gone; register again
  | "session_unknown"  // definite: the client never registered (or the table was reset)
  | "too_large"        // definite: body exceeds the limit
  | "busy"             // definite: queue full, retry later
  | "stale_request"    // definite: request number older than the session's latest
  | "query_failed"     // definite: the state machine's query threw
  | "invalid_operation"; // definite: reserved operation number (0..15) or misuse of the internal client

/** The answer to a request or a query, delivered to the token's owner. */
export interface ClientReply {
  readonly token: number;
  /** Present on success: the state machine's reply body (or the query result). */
  readonly body?: Uint8Array;
  /** Present on failure. */
  readonly error?: ReplyError;
  /** Human-readable detail of the error. */
  readonly message?: string;
  /** The replica's view when answering, and the primary it believes in. */
  readonly view: number;
  readonly primary: ReplicaIndex;
  /** Op at which the request committed (requests only). */
  readonly op?: number;
}

/** Storage actions the replica asks for; each completes through `storageDone(id, …)`. */
export type StorageAction =
  /** Write (append, or replace from `op` on after a `truncate`) one entry durably. */
  | { readonly kind: "write_entry"; readonly id: number; readonly op: number; readonly header: Uint8Array; readonly body: Uint8Array }
  /** Overwrite a faulty entry in place with a verified copy (same bytes as the original). */
  | { readonly kind: "repair_entry"; readonly id: number; readonly op: number; readonly header: Uint8Array; readonly body: Uint8Array }
  /** Discard every entry after `op` (a divergent uncommitted suffix). */
  | { readonly kind: "truncate"; readonly id: number; readonly op: number }
  /** Read one entry; completes with its bytes or null when missing/faulty. */
  | { readonly kind: "read_entry"; readonly id: number; readonly op: number }
  /** Persist the replica's durable metadata (superblock). */
  | { readonly kind: "write_superblock"; readonly id: number; readonly superblock: SuperblockState }
  /**
   * Persist a checkpoint (state machine snapshot + client table) covering ops ≤ `op`: the
   * blob is the pieces of `checkpoint`, in order (the state image is one of them, never
   * copied into one buffer).
   */
  | { readonly kind: "write_checkpoint"; readonly id: number; readonly op: number; readonly checkpoint: readonly Uint8Array[] }
  /** Entries before `op` are covered by a durable checkpoint and may be released. */
  | { readonly kind: "release"; readonly id: number; readonly op: number };

/** The replica's durable metadata. */
export interface SuperblockState {
  readonly view: number;
  /** The last view in which this replica's status was normal. */
  readonly logView: number;
  readonly commit: number;
  readonly checkpointOp: number;
}

/** Completion of a storage action. `entry` only for read_entry. */
export interface StorageResult {
  readonly ok: boolean;
  readonly entry?: { readonly header: Uint8Array; readonly body: Uint8Array } | null;
}

/** A message to send to another replica; `bytes` is the encoded message. */
export interface Outbound {
  readonly to: ReplicaIndex;
  readonly bytes: Uint8Array;
}

/** Everything the replica wants done since the last `ready()`. */
export interface Ready {
  readonly storage: StorageAction[];
  readonly messages: Outbound[];
  readonly replies: ClientReply[];
}

/** What a replica recovered from its own disk at start (see src/storage recovery). */
export interface RecoveredState {
  readonly superblock: SuperblockState;
  /** The latest durable checkpoint (op and bytes), or null for a fresh replica. */
  readonly checkpoint: { readonly op: number; readonly bytes: Uint8Array } | null;
  /** Entry headers after the checkpoint, in op order; faulty or missing ops are absent. */
  readonly headers: Uint8Array[];
  /** Ops whose entries exist but failed verification (to repair from peers). */
  readonly faultyOps: number[];
  /** False for a replica whose disk was lost/replaced: it must not vote until caught up. */
  readonly intact: boolean;
  /**
   * A number the driver draws at random on every start (a safe integer). A replica that
   * must not vote tags its `recovery` round with it, so that answers sent to an earlier
   * incarnation (delayed or replayed by the network) are not mistaken for fresh ones.
   */
  readonly nonce?: number;
}

/** Counters a driver exports as metrics and the simulator checks. */
export interface ReplicaStatus {
  readonly replica: ReplicaIndex;
  readonly status: "normal" | "view_change" | "recovering";
  readonly view: number;
  readonly logView: number;
  readonly op: number;
  readonly commit: number;
  readonly primary: ReplicaIndex;
  readonly checkpointOp: number;
  readonly droppedForeignCluster: number;
  /** False while a replica that lost its disk catches up: it neither votes nor acknowledges. */
  readonly voting?: boolean;
  /** Highest op known committed (`commit` is the highest applied). */
  readonly commitMax?: number;
}

/** The replica as the drivers see it (implemented in src/vsr). */
export interface ReplicaCore {
  tick(nowMs: number): void;
  receive(bytes: Uint8Array): void;
  request(request: ClientRequest): void;
  query(query: ClientQuery): void;
  storageDone(id: number, result: StorageResult): void;
  ready(): Ready;
  status(): ReplicaStatus;
  /** The state machine it drives (for state hashes and checks). */
  readonly stateMachine: StateMachine;
}
