/**
 * What a workload plugs into a simulated run besides the kv store: its state machine, its
 * clients, a step hook (e.g. the effect runners of the primaries), replies it routes to
 * itself, and its own checks. The kv workload is built into simulator.ts; the bank
 * workload (bank_workload.ts) runs an application through the kernel's executor.
 * @module
 */
import type { ClientReply } from "../vsr/replica_api.ts";
import type { StateMachine } from "../vsr/state_machine.ts";
import type { ClientWorld } from "./client.ts";
import type { Prng } from "./prng.ts";
import type { SimClientLike, Simulation } from "./simulator.ts";

/** The hooks a run calls (see the module comment); all are deterministic functions of the run. */
export interface SimWorkload {
  /** A fresh state machine for replica `replica`, at each of its starts. */
  stateMachine(replica: number): StateMachine;
  /** Client `index` of the run. */
  client(index: number, world: ClientWorld, timeoutTicks: number, attemptsMax: number, prng: Prng): SimClientLike;
  /** After the replicas' ticks, storage completions and deliveries of tick `now`. */
  afterStep(run: Simulation, now: number): void;
  /** True when `reply` (sent by `replica`) is the workload's own, not a client's. */
  takeReply(replica: number, reply: ClientReply): boolean;
  /** Replica `replica` crashed: whatever ran beside it in its process is gone. */
  crashed(replica: number): void;
  /** Once every replica converged: null when the workload's work is done, else what is pending. */
  pending(run: Simulation): string | null;
  /** At the end of a run, after the built-in checks; throws a Violation. */
  finalCheck(run: Simulation): void;
  /** Counters for the run's summary. */
  stats(): Readonly<Record<string, number>>;
}
