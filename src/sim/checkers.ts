/**
 * The simulator's checkers. Each turns a broken guarantee into a {@link Violation} naming
 * the checker, so a failing seed says what failed:
 *
 * | checker           | guarantee                                                         |
 * |-------------------|-------------------------------------------------------------------|
 * | `commits`         | a committed op never changes; every replica commits the same entry |
 * | `linearizability` | the client history fits one sequential kv order (kvCas, per key)  |
 * | `state_hash`      | replicas that applied the same prefix hold the same state hash    |
 * | `liveness`        | once faults stop, every request completes within a bound          |
 * | `crash`           | the replica threw (a broken assertion or a bug)                   |
 * | `effects`         | effectively-once effects (bank workload, effects_checker.ts)      |
 * | `balances`        | the bank's money is conserved (bank workload)                     |
 * @module
 */
import { checksumEqual, checksumHex } from "../codec/checksum.ts";
import { check, kvCas, operationsFromEvents } from "./lincheck/mod.ts";
import type { HistoryEvent, KvCasInput, KvCasOutput } from "./lincheck/mod.ts";

/** Which checker failed. */
export type CheckerName = "commits" | "linearizability" | "state_hash" | "liveness" | "crash" | "effects" | "balances";

/** A failed check. */
export class Violation extends Error {
  override readonly name = "Violation";
  constructor(readonly checker: CheckerName, message: string) {
    super(`${checker}: ${message}`);
  }
}

/**
 * Checker (1): every commit of every replica, op → entry checksum. Any disagreement (two
 * replicas, or one replica before and after a restart) is a violation.
 */
export class CommitChecker {
  private readonly committed = new Map<number, { checksum: Uint8Array; replica: number }>();
  /** Commits recorded (all replicas, replays after restarts included). */
  commitsRecorded = 0;

  /** Records that `replica` committed the entry with `checksum` at `op`. */
  record(replica: number, op: number, checksum: Uint8Array): void {
    this.commitsRecorded++;
    const first = this.committed.get(op);
    if (first === undefined) {
      this.committed.set(op, { checksum: checksum.slice(), replica });
      return;
    }
    if (!checksumEqual(first.checksum, checksum)) {
      throw new Violation(
        "commits",
        `op ${op}: replica ${replica} committed entry ${checksumHex(checksum)} but replica ${first.replica} committed ${checksumHex(first.checksum)}`,
      );
    }
  }

  /** Highest op any replica committed. */
  get opMax(): number {
    let max = 0;
    for (const op of this.committed.keys()) if (op > max) max = op;
    return max;
  }
}

/**
 * Checker (3): the state hash each replica reported after applying op X. Replicas that
 * applied the same prefix must agree.
 */
export class StateHashChecker {
  private readonly hashes = new Map<number, { hash: Uint8Array; replica: number }>();
  /** Hashes compared. */
  comparisons = 0;

  /** Records `replica`'s state hash right after it applied `op`. */
  record(replica: number, op: number, hash: Uint8Array): void {
    const first = this.hashes.get(op);
    if (first === undefined) {
      this.hashes.set(op, { hash: hash.slice(), replica });
      return;
    }
    this.comparisons++;
    if (!checksumEqual(first.hash, hash)) {
      throw new Violation(
        "state_hash",
        `after op ${op}: replica ${replica} has state ${checksumHex(hash)} but replica ${first.replica} had ${checksumHex(first.hash)}`,
      );
    }
  }
}

/** Search budget per history: far above what a simulator history needs (see docs). */
export const lincheckStepsMax = 20_000_000;

/**
 * Checker (2): the history is linearizable for the kvCas model, checked per key. An
 * `unknown` verdict (search budget exhausted) is returned, not thrown: it is not a proof
 * of a bug.
 */
export function checkLinearizable(events: readonly HistoryEvent<KvCasInput, KvCasOutput>[]): "linearizable" | "unknown" {
  const result = check(kvCas, operationsFromEvents(events), { stepsMax: lincheckStepsMax });
  if (result.kind === "not-linearizable") throw new Violation("linearizability", result.explanation);
  return result.kind;
}

/** An operation still waiting for its completion. */
export interface Outstanding {
  readonly client: number;
  readonly invokedTick: number;
  readonly description: string;
}

/**
 * Checker (4): after the faults stopped at `healTick`, no operation may stay open longer
 * than `boundTicks` (counted from the later of its invocation and the heal).
 */
export function checkLiveness(outstanding: readonly Outstanding[], nowTick: number, healTick: number, boundTicks: number): void {
  for (const op of outstanding) {
    const since = Math.max(op.invokedTick, healTick);
    if (nowTick - since > boundTicks) {
      throw new Violation(
        "liveness",
        `client ${op.client}: ${op.description} invoked at tick ${op.invokedTick} still open at tick ${nowTick}, ${nowTick - since} ticks after the faults stopped (bound ${boundTicks})`,
      );
    }
  }
}
