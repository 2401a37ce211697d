/**
 * What a replica claims in a view change (its do_view_change) and how the new primary
 * reads a quorum of claims: which headers and nacks a claim carries, and which op of the
 * winning log a quorum proves never committed. Pure functions over the log window; the
 * replica sends, collects and installs.
 * @module
 */
import { assert } from "../assert.ts";
import { checksumEqual } from "../codec/checksum.ts";
import { decodeHeader } from "../codec/entry_header.ts";
import { messageHeadersMax } from "./constants.ts";
import type { LogWindow } from "./log.ts";
import type { MessageBody } from "./message.ts";

/** Committed headers a do_view_change carries below the claimed suffix. */
export const claimCommittedHeadersMax = 64;

/** A do_view_change as the new primary keeps it. */
export interface Claim {
  readonly replica: number;
  readonly logView: number;
  readonly op: number;
  readonly commit: number;
  readonly checkpointOp: number;
  readonly headers: readonly Uint8Array[];
  readonly nacks: readonly number[];
}

/** The claim a do_view_change from `replica` (with `commit` in its envelope) makes. */
export function claimOf(replica: number, commit: number, m: MessageBody & { kind: "do_view_change" }): Claim {
  return { replica, logView: m.logView, op: m.op, commit, checkpointOp: m.checkpointOp, headers: m.headers, nacks: m.nacks };
}

/**
 * The headers a claim carries, ascending: every trusted header above the applied commit
 * (holes skipped), and up to {@link claimCommittedHeadersMax} committed headers below, so
 * that a new primary that applied less learns the committed entries it must repair and
 * the chain down from the lowest one.
 */
export function claimHeaders(log: LogWindow, commitMin: number): Uint8Array[] {
  const suffix = log.trustedHeaders(commitMin, messageHeadersMax - claimCommittedHeadersMax);
  const lowest = suffix.length > 0 ? decodeHeader(suffix[0]!).op : log.head + 1;
  const committed: Uint8Array[] = [];
  const from = Math.max(log.anchorOp + 1, commitMin - claimCommittedHeadersMax + 1);
  for (let op = from; op <= Math.min(commitMin, lowest - 1); op++) {
    const slot = log.get(op);
    assert(slot !== undefined && slot.trusted, `applied op ${op} is in the log`);
    committed.push(slot.bytes);
  }
  return committed.length === 0 ? suffix : [...committed, ...suffix];
}

/**
 * The ops a claim nacks, descending: ops above the commit this replica does not hold
 * durably (a gap, or not yet written), so it never acknowledged whatever entry is there.
 * A copy recovery found corrupt (`faultyHoles`) may have been the acknowledged one, even
 * when a header for the op has arrived since: never a nack until it is rewritten.
 */
export function claimNacks(log: LogWindow, commitMin: number, faultyHoles: ReadonlySet<number>): number[] {
  const nacks: number[] = [];
  const low = Math.max(commitMin, log.anchorOp, log.head - messageHeadersMax);
  for (let op = log.head; op > low; op--) {
    if (faultyHoles.has(op)) continue;
    const slot = log.get(op);
    if (slot === undefined || (!slot.durable && !slot.faulty)) nacks.push(op);
  }
  return nacks;
}

/**
 * The lowest op of the installed winning log above `floor` that a quorum of claims nacks,
 * or null. A commit needs the entry durable on a quorum, which meets every quorum of
 * claims, so an op a whole quorum nacks never committed, and neither did anything above
 * it. A claim nacks an op it lists, one whose header it carries with another checksum,
 * and one past its log when it claims the winner's log_view (the same log, shorter).
 * Ops this primary holds durably, or holds untrusted, are not candidates.
 */
export function nackedByQuorum(
  log: LogWindow, claims: readonly Claim[], winner: Claim, floor: number, quorum: number,
): number | null {
  const views = claims.map((claim) => {
    const sums = new Map<number, Uint8Array>();
    for (const bytes of claim.headers) sums.set(decodeHeader(bytes).op, bytes.subarray(0, 16));
    return { claim, sums, nacks: new Set(claim.nacks) };
  });
  for (let op = floor + 1; op <= Math.min(winner.op, log.head); op++) {
    const slot = log.get(op);
    if (slot !== undefined && (!slot.trusted || slot.durable)) continue; // held here
    let nacks = 0;
    for (const { claim, sums, nacks: claimNacks } of views) {
      const sum = sums.get(op);
      if (claimNacks.has(op)) nacks++;
      else if (slot !== undefined && sum !== undefined && !checksumEqual(sum, slot.header.checksum)) nacks++;
      else if (claim.logView === winner.logView && claim.op < op) nacks++;
    }
    if (nacks >= quorum) return op;
  }
  return null;
}
