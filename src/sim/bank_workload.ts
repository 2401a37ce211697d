/**
 * The bank workload (`chronon sim --app examples/bank.ts`): every simulated replica runs
 * the application through the kernel's {@link Executor} (the StateMachine a node uses),
 * the primary of each view runs the kernel's effect runner decisions through the
 * effects driver against a simulated idempotent sink, and bank clients submit
 * configure/open/deposit/transfer events. Checked besides the simulator's own checkers:
 * - effects (effects_checker.ts): executed at least once, acknowledged exactly once,
 *   applied exactly once at the sink, never executed for an event that did not commit;
 * - balances: after every applied op, on every replica, the total of all balances equals
 *   the sum of the deposits committed up to that op (transfers and fees move money, only
 *   deposits create it).
 * @module
 */
import type { App } from "../app/app.ts";
import { decodeValue } from "../app/value_codec.ts";
import { decodeEffectResults, decodeQueryResult, decodeReply, encodeAppQuery, operationEffectResults, operationEvent } from "../app/wire.ts";
import { Executor } from "../kernel/executor.ts";
import type { ClientReply } from "../vsr/replica_api.ts";
import type { CommittedEntry, StateMachine } from "../vsr/state_machine.ts";
import type { BankClientCounters } from "./bank_client.ts";
import { BankClient } from "./bank_client.ts";
import { Violation } from "./checkers.ts";
import type { ClientWorld } from "./client.ts";
import { EffectSink } from "./effect_sink.ts";
import { EffectsChecker } from "./effects_checker.ts";
import { EffectsDriver } from "./effects_driver.ts";
import { Prng } from "./prng.ts";
import type { SimClientLike, Simulation } from "./simulator.ts";
import type { SimWorkload } from "./workload.ts";

/** Channel entries kept per channel in the simulated executors (small: the state hash encodes them after every op). */
export const simChannelRetention = 32;
const totalQuery = encodeAppQuery({ type: "total" });

/** Deposits committed, by op; the money the bank must hold after each op. */
export class DepositLedger {
  readonly #byOp = new Map<number, number>();

  /** The deposit committed at `op` (the same on every replica that applies it). */
  record(op: number, amount: number): void {
    const known = this.#byOp.get(op);
    if (known !== undefined && known !== amount) throw new Violation("balances", `op ${op} deposited ${known} on one replica and ${amount} on another`);
    this.#byOp.set(op, amount);
  }

  /** Sum of the deposits at ops ≤ `op`. */
  upTo(op: number): number {
    let sum = 0;
    for (const [at, amount] of this.#byOp) if (at <= op) sum += amount;
    return sum;
  }
}

/** Checks the bank total of one replica after each op against the ledger. */
export class BalanceChecker {
  #op = -1;
  #deposits = 0;

  constructor(readonly replica: number, readonly ledger: DepositLedger) {}

  /** The replica applied `op` (after `deposit`, 0 when none) and now holds `total`. */
  check(op: number, deposit: number, total: number): void {
    // A restart restores a checkpoint: recount the deposits up to it.
    if (this.#op !== op - 1) this.#deposits = this.ledger.upTo(op - 1);
    this.#deposits += deposit;
    this.#op = op;
    if (total !== this.#deposits) {
      throw new Violation("balances", `replica ${this.replica} holds ${total} in all accounts after op ${op}, but the deposits committed up to it sum to ${this.#deposits}`);
    }
  }
}

/** The executor of one replica, reporting outbox effects, acknowledgements, deposits and totals. */
class CheckedExecutor implements StateMachine {
  readonly #balances: BalanceChecker;

  constructor(
    readonly executor: Executor,
    readonly replica: number,
    readonly effects: EffectsChecker,
    ledger: DepositLedger,
  ) {
    this.#balances = new BalanceChecker(replica, ledger);
  }

  commit(entry: CommittedEntry): Uint8Array {
    const executor = this.executor;
    const acked: string[] = [];
    if (entry.operation === operationEffectResults) {
      // Which outcomes this entry carries for effects still pending here (the rest are ignored).
      try {
        for (const outcome of decodeEffectResults(entry.body)) {
          if (typeof outcome.id === "string" && executor.outboxEntry(outcome.id)?.status === "pending") acked.push(outcome.id);
        }
      } catch {
        // A malformed body is the executor's to reject.
      }
    }
    const createdBefore = executor.counters().effectsCreated;
    const reply = executor.commit(entry);
    if (executor.counters().effectsCreated !== createdBefore) {
      for (const stored of executor.outboxEntries()) {
        if (stored.eventIndex === entry.op && stored.generation === 0 && stored.status === "pending") {
          this.effects.recordEffect(this.replica, stored.id, entry.op, stored.effectBytes);
        }
      }
    }
    for (const id of acked) {
      const stored = executor.outboxEntry(id);
      if (stored === undefined) this.effects.recordAck(this.replica, id, entry.op);
      else if (stored.status === "dead_lettered") this.effects.recordDeadLetter(this.replica, id, entry.op, stored.lastError);
    }
    let deposit = 0;
    if (entry.operation === operationEvent && decodeReply(reply).ok) {
      const event = (decodeValue(entry.body) as [number, { type?: unknown; amount?: unknown }])[1];
      if (event.type === "deposit" && typeof event.amount === "number") {
        deposit = event.amount;
        this.#balances.ledger.record(entry.op, deposit);
      }
    }
    this.#balances.check(entry.op, deposit, decodeQueryResult<number>(executor.query(totalQuery)));
    return reply;
  }
  query(body: Uint8Array): Uint8Array {
    return this.executor.query(body);
  }
  stateHash(): Uint8Array {
    return this.executor.stateHash();
  }
  snapshot(): Uint8Array {
    return this.executor.snapshot();
  }
  restore(snapshot: Uint8Array): void {
    this.executor.restore(snapshot);
  }
}

/** Builds the bank workload of one run (fresh per seed: it holds the run's checkers). */
export function bankWorkload(app: App, seed: number): SimWorkload & { readonly checker: EffectsChecker } {
  const prng = new Prng(seed).fork(40);
  const checker = new EffectsChecker();
  const ledger = new DepositLedger();
  const executors: (Executor | null)[] = [];
  const counters: BankClientCounters = { replied: 0, rejected: 0 };
  const sink = new EffectSink(checker, prng.fork(1), prng.pick([0, 0.05, 0.2]));
  const driver = new EffectsDriver(
    {
      delayTicksMean: 1 + prng.int(5),
      requestLossProbability: prng.pick([0, 0.02, 0.1]),
      responseLossProbability: prng.pick([0, 0.02, 0.1]),
      stallProbability: prng.pick([0, 0.05, 0.2]),
      inFlightMax: prng.pick([2, 8, 64]),
      resultsBatchMax: prng.pick([1, 4, 64]),
      maxAttempts: 1_000,
    },
    prng.fork(2),
    sink,
    (replica) => executors[replica] ?? null,
  );
  const accounts = ["fees", ...[...Array(2 + prng.int(4)).keys()].map((k) => `a${k}`)];
  return {
    checker,
    stateMachine(replica: number): StateMachine {
      const executor = new Executor(app, { limits: { channelRetention: simChannelRetention } });
      executors[replica] = executor;
      return new CheckedExecutor(executor, replica, checker, ledger);
    },
    client(index: number, world: ClientWorld, timeoutTicks: number, attemptsMax: number, clientPrng: Prng): SimClientLike {
      return new BankClient(index, world, accounts, timeoutTicks, attemptsMax, clientPrng, counters);
    },
    afterStep(run: Simulation, now: number): void {
      // Faults stop with the liveness phase: the sink stops failing too.
      if (!run.world.mayGiveUp) sink.failureProbability = 0;
      driver.step(run, now);
    },
    takeReply(replica: number, reply: ClientReply): boolean {
      return driver.takeReply(replica, reply);
    },
    crashed(replica: number): void {
      executors[replica] = null;
      driver.crashed(replica);
    },
    pending(run: Simulation): string | null {
      for (let r = 0; r < run.replicas.length; r++) {
        const executor = executors[r];
        if (executor === null || executor === undefined) continue;
        for (const stored of executor.outboxEntries()) return `replica ${r} still holds effect ${stored.id} (op ${stored.eventIndex}, ${stored.status}) in its outbox`;
      }
      const unacknowledged = checker.unacknowledged();
      return unacknowledged === 0 ? null : `${unacknowledged} committed effects are not acknowledged`;
    },
    finalCheck(): void {
      checker.final();
    },
    stats(): Readonly<Record<string, number>> {
      const counts = checker.counts();
      return {
        eventsReplied: counters.replied,
        eventsRejected: counters.rejected,
        effectsCommitted: counts.committed,
        effectsAcknowledged: counts.acknowledged,
        sinkDeliveries: sink.stats.deliveries,
        sinkDuplicates: sink.stats.duplicates,
        sinkFenced: sink.stats.fenced,
        sinkFailed: sink.stats.failed,
        attemptsStalled: driver.stats.stalls,
        runnersStarted: driver.stats.runnersStarted,
        runnersFenced: driver.stats.runnersFenced,
        attempts: driver.stats.attempts,
        attemptTimeouts: driver.stats.timeouts,
        resultSubmits: driver.stats.resultSubmits,
        resultSubmitsFailed: driver.stats.resultSubmitsFailed,
        tickSubmits: driver.stats.tickSubmits,
      };
    },
  };
}
