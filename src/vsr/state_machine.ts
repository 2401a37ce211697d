/**
 * What the replica needs from the deterministic layer above it. `src/kernel/` implements
 * it for applications (executor + outbox); the simulator has a small key-value one.
 *
 * The replica calls these methods synchronously, in op order, on every replica, including
 * during replay after a restart and after a state transfer. An implementation must be
 * deterministic: the same sequence of calls yields the same replies and the same state
 * hash on every replica, with no clock, randomness or I/O of its own.
 * @module
 */

/** First operation number available to the state machine; 0..15 are the replica's own. */
export const operationStateMachineMin = 16;

/** A committed log entry as the state machine sees it. */
export interface CommittedEntry {
  /** Position in the log. */
  readonly op: number;
  /** View in which the primary prepared it. */
  readonly view: number;
  /** The primary's timestamp (ms since epoch), monotonic across views. */
  readonly timestamp: number;
  /** 128-bit client id; all zero for internal operations (effect results, schedule ticks). */
  readonly client: Uint8Array;
  /** The client's request number in its session (0 for internal operations). */
  readonly request: number;
  /** Operation number, at least {@link operationStateMachineMin}. */
  readonly operation: number;
  /** The request body as the client sent it. */
  readonly body: Uint8Array;
  /** The entry's header checksum: a deterministic seed unique to this entry. */
  readonly checksum: Uint8Array;
}

/** The deterministic state machine a replica drives. */
export interface StateMachine {
  /**
   * Applies one committed entry and returns the reply body for the client. Must not throw
   * for any input a client can send: an application error becomes a reply that says so.
   */
  commit(entry: CommittedEntry): Uint8Array;
  /** Answers a read-only query against the current state. May throw on a malformed query. */
  query(body: Uint8Array): Uint8Array;
  /** Checksum of the whole state: equal on replicas that committed the same prefix. */
  stateHash(): Uint8Array;
  /** The whole state, for a checkpoint or a state transfer. */
  snapshot(): Uint8Array;
  /**
   * Optional: begins a snapshot of the state as it is now, to be encoded in steps while
   * later entries are committed (the replica steps it between driver turns, so a
   * checkpoint of a large state does not stop the replica for the whole encoding). The
   * job's result must be byte for byte what {@link snapshot} returns now. One job at a
   * time; {@link restore} aborts it. Without it the replica calls {@link snapshot}.
   *
   * `reuse`, when given, is the result of an earlier job that the replica has dropped (the
   * state bytes of the checkpoint the latest one replaced): the replica never reads it
   * again, so the job may encode into its buffer instead of allocating one. A state machine
   * may ignore it.
   */
  beginSnapshot?(reuse?: Uint8Array): SnapshotJob;
  /** Replaces the whole state with a snapshot taken by {@link snapshot}. */
  restore(snapshot: Uint8Array): void;
}

/** A snapshot being encoded in steps (see {@link StateMachine.beginSnapshot}). */
export interface SnapshotJob {
  /** True once the bytes are complete. */
  readonly done: boolean;
  /** Encodes about `budgetBytes` more; returns {@link done}. */
  step(budgetBytes: number): boolean;
  /** The snapshot bytes, once done. */
  result(): Uint8Array;
  /** Stops encoding; the job cannot be stepped again. */
  abort(): void;
}
