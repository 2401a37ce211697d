/**
 * Quorum arithmetic and the view-change decision, as small pure functions with their own
 * tests (cross-checked against naive versions in tests/vsr_quorum.test.ts).
 * @module
 */
import { assert } from "../assert.ts";

/** Replicas that must agree (replicate, vote) in a cluster of `replicaCount` = 2f+1: f+1. */
export function quorumSize(replicaCount: number): number {
  assert(Number.isSafeInteger(replicaCount) && replicaCount >= 1, "replica count is positive");
  assert(replicaCount % 2 === 1, "replica count is odd (2f+1)");
  return Math.floor(replicaCount / 2) + 1;
}

/** The primary of `view`: views rotate round-robin over the replicas. */
export function primaryOf(view: number, replicaCount: number): number {
  assert(Number.isSafeInteger(view) && view >= 0, "view is a count");
  return view % replicaCount;
}

/**
 * The highest op durable on at least `quorum` replicas, given each replica's highest
 * contiguously durable op in the current view (-1 for none known). This is what the
 * primary may commit.
 */
export function quorumOp(durableOps: readonly number[], quorum: number): number {
  assert(quorum >= 1 && quorum <= durableOps.length, "quorum within replica count");
  const sorted = [...durableOps].sort((a, b) => b - a);
  const op = sorted[quorum - 1]!;
  return op;
}

/** A do_view_change's claim, as the new primary compares them. */
export interface LogClaim {
  readonly replica: number;
  /** The last view in which the sender was normal. */
  readonly logView: number;
  /** The sender's highest op. */
  readonly op: number;
}

/**
 * Which log wins a view change (VR Revisited, corrected):
 *
 * | compare              | winner                                                  |
 * |----------------------|---------------------------------------------------------|
 * | higher logView       | wins, whatever the ops: its suffix was installed later  |
 * | equal logView        | higher op wins: same view ⇒ one log, the longer prefix  |
 * | equal logView and op | lower replica index (the logs are identical)            |
 *
 * Never "the longest log": a long suffix from an old view may hold ops a later view
 * replaced.
 */
export function compareClaims(a: LogClaim, b: LogClaim): number {
  if (a.logView !== b.logView) return a.logView > b.logView ? -1 : 1;
  if (a.op !== b.op) return a.op > b.op ? -1 : 1;
  return a.replica - b.replica;
}

/** The winning claim among `claims` (non-empty). */
export function winningClaim<T extends LogClaim>(claims: readonly T[]): T {
  assert(claims.length > 0, "a view change has claims");
  let best = claims[0]!;
  for (const claim of claims) if (compareClaims(claim, best) < 0) best = claim;
  return best;
}
