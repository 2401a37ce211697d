/**
 * Swarm testing: the seed picks the fault probabilities too, so some runs are calm and
 * some vicious, and a fault that only bites in combination with another gets its chance.
 * @module
 */
import type { NetworkOptions } from "./network.ts";
import type { Prng } from "./prng.ts";
import type { StorageOptions } from "./storage.ts";

/** Everything the nemesis may do in the safety phase of one run. */
export interface FaultProfile {
  readonly network: NetworkOptions;
  readonly storage: StorageOptions;
  /** Per tick: probability that a running replica crashes. */
  readonly crashProbability: number;
  /** Mean ticks a crashed replica stays down. */
  readonly downTicksMean: number;
  /** Per tick with no partition: probability that one starts. */
  readonly partitionProbability: number;
  /** Probability that a partition is one-way rather than symmetric. */
  readonly partitionOneWayProbability: number;
  /** Mean ticks a partition lasts before it heals. */
  readonly partitionTicksMean: number;
  /** Replicas whose disks may suffer latent faults: at most f (see docs/simulator.md). */
  readonly faultyReplicaCount: number;
  /** Per tick: probability of a bit flip on a faulty replica's disk. */
  readonly bitFlipProbability: number;
  /** At a restart of a faulty replica: probability that its disk was lost. */
  readonly diskLossProbability: number;
  /** Largest clock offset of a replica, in ms (either sign). */
  readonly clockSkewMsMax: number;
  /** Client attempts before it gives up on a request (outcome unknown) in the safety phase. */
  readonly clientAttemptsMax: number;
}

function maybe(prng: Prng, p: number, value: number): number {
  return prng.chance(p) ? value : 0;
}

/** Picks a fault profile for a cluster of `replicaCount` (2f+1) replicas. */
export function pickFaultProfile(prng: Prng, replicaCount: number): FaultProfile {
  const f = Math.floor((replicaCount - 1) / 2);
  const delayMeanTicks = prng.range(1, 6);
  return {
    network: {
      delayMeanTicks,
      delayMaxTicks: delayMeanTicks * prng.range(2, 8),
      lossProbability: maybe(prng, 0.7, prng.float() * 0.2),
      duplicateProbability: maybe(prng, 0.5, prng.float() * 0.1),
      replayProbability: maybe(prng, 0.4, prng.float() * 0.05),
      linkInFlightMax: prng.pick([64, 256, 1024]),
    },
    storage: {
      latencyMeanTicks: prng.range(0, 3),
      latencyMaxTicks: prng.range(4, 20),
      tornWriteProbability: maybe(prng, 0.7, prng.float()),
      misdirectProbability: maybe(prng, 0.3, prng.float() * 0.01),
    },
    crashProbability: maybe(prng, 0.7, prng.float() * 0.004),
    downTicksMean: prng.range(20, 400),
    partitionProbability: maybe(prng, 0.6, prng.float() * 0.01),
    partitionOneWayProbability: prng.float(),
    partitionTicksMean: prng.range(20, 500),
    faultyReplicaCount: prng.int(f + 1),
    bitFlipProbability: maybe(prng, 0.5, prng.float() * 0.01),
    diskLossProbability: maybe(prng, 0.3, prng.float() * 0.5),
    clockSkewMsMax: maybe(prng, 0.5, prng.range(1, 60_000)),
    clientAttemptsMax: prng.range(3, 20),
  };
}

/** Network options of the liveness phase: no loss, no duplicates, short delays. */
export function calmNetwork(options: NetworkOptions): NetworkOptions {
  return { ...options, lossProbability: 0, duplicateProbability: 0, replayProbability: 0, delayMaxTicks: Math.min(options.delayMaxTicks, options.delayMeanTicks * 4) };
}

/** Storage options of the liveness phase: no new faults. */
export function calmStorage(options: StorageOptions): StorageOptions {
  return { ...options, misdirectProbability: 0, tornWriteProbability: 0 };
}
