import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checksum } from "../src/codec/checksum.ts";
import { encodeEntry, rootEntry } from "../src/codec/entry_header.ts";
import { LogWindow } from "../src/vsr/log.ts";
import { ReadRounds } from "../src/vsr/read_rounds.ts";
import { CheckpointTransfer } from "../src/vsr/state_transfer.ts";

describe("vsr read rounds", () => {
  test("a query waits for a round that started after it and for its commit", () => {
    const reads = new ReadRounds(0, 2, 8);
    assert.deepEqual(reads.add(1, new Uint8Array(), 5), [1], "the first query starts round 1");
    // A second query during round 1 must wait for round 2: round 1 may predate it.
    assert.deepEqual(reads.add(2, new Uint8Array(), 5), []);
    assert.deepEqual(reads.takeAnswerable(5), [], "nothing before a quorum answers");
    assert.deepEqual(reads.pong(1, 99), [], "a pong for another round does not count");
    assert.deepEqual(reads.pong(1, 1), [2], "round 1 confirmed; round 2 starts for the second query");
    assert.deepEqual(reads.takeAnswerable(4), [], "the commit the queries must see is not applied yet");
    assert.deepEqual(reads.takeAnswerable(5).map((q) => q.token), [1]);
    reads.pong(2, 2);
    assert.deepEqual(reads.takeAnswerable(5).map((q) => q.token), [2]);
    assert.equal(reads.pending, 0);
  });

  test("rounds are retried on ticks, bounded, and abandoned on leaving primacy", () => {
    const reads = new ReadRounds(0, 3, 2);
    reads.add(1, new Uint8Array(), 0);
    assert.equal(reads.tick(3), null);
    assert.equal(reads.tick(3), null);
    assert.equal(reads.tick(3), 1, "re-broadcast after retryTicks");
    reads.add(2, new Uint8Array(), 0);
    assert.equal(reads.hasRoom, false);
    assert.throws(() => reads.add(3, new Uint8Array(), 0));
    assert.deepEqual(reads.abandon().map((q) => q.token), [1, 2]);
    assert.equal(reads.tick(1), null, "no round after abandoning");
  });

  test("a single replica confirms its own rounds at once", () => {
    const reads = new ReadRounds(0, 1, 4);
    reads.add(7, new Uint8Array(), 0);
    assert.deepEqual(reads.takeAnswerable(0).map((q) => q.token), [7]);
  });
});

describe("vsr state transfer", () => {
  const blob = new Uint8Array(10).map((_, i) => i + 1);
  const sum = checksum(blob);
  const chunk = (offset: number, end: number, op = 16, s = sum, size = blob.length) =>
    ({ op, checksum: s, size, offset, bytes: blob.subarray(offset, end) });

  test("chunks are taken in order and the blob is checked whole", () => {
    const t = new CheckpointTransfer(2, 16);
    assert.equal(t.accept(chunk(4, 10)).kind, "ignored", "a chunk past the start of a new checkpoint");
    assert.equal(t.accept(chunk(0, 4)).kind, "more");
    assert.equal(t.received, 4);
    assert.equal(t.accept(chunk(8, 10)).kind, "ignored", "out of order");
    const done = t.accept(chunk(4, 10));
    assert.equal(done.kind, "complete");
    assert.deepEqual(done.kind === "complete" ? done.blob : null, blob);
  });

  test("a blob that does not match the announced checksum is corrupt", () => {
    const t = new CheckpointTransfer(2, 16);
    const wrong = checksum(new Uint8Array([9]));
    assert.equal(t.accept(chunk(0, 10, 16, wrong)).kind, "corrupt");
  });

  test("a peer that moved to a newer checkpoint restarts the transfer from its first chunk", () => {
    const t = new CheckpointTransfer(2, 16);
    assert.equal(t.accept(chunk(0, 4)).kind, "more");
    assert.equal(t.accept(chunk(0, 5, 32)).kind, "more");
    assert.equal(t.op, 32);
    assert.equal(t.received, 5);
    const oversized = { op: 32, checksum: sum, size: 10, offset: 5, bytes: new Uint8Array(6) };
    assert.equal(t.accept(oversized).kind, "ignored", "beyond the announced size");
    assert.equal(t.accept(chunk(5, 10, 32)).kind, "complete");
  });
});

describe("vsr log window", () => {
  const cluster = new Uint8Array(16).fill(5);
  /** Headers of ops 1..count chained from the root; `view` tells two logs apart. */
  const chainOf = (count: number, view: number) => {
    const headers: Uint8Array[] = [];
    let parent = rootEntry(cluster).subarray(0, 16);
    for (let op = 1; op <= count; op++) {
      const header = encodeEntry({
        parent, cluster, client: new Uint8Array(16), op, commit: 0, timestamp: op, view, request: op, operation: 16,
      }, new Uint8Array([op]));
      headers.push(header);
      parent = header.subarray(0, 16);
    }
    return headers;
  };

  test("walking the chain down trusts matching slots and removes the first that does not match", () => {
    const log = new LogWindow(rootEntry(cluster));
    const good = chainOf(5, 1);
    const other = chainOf(5, 2);
    log.put(other[1]!, null, false); // op 2: a stale entry of another log
    for (const op of [3, 4]) log.put(good[op - 1]!, null, false);
    log.put(good[4]!, null, true);
    assert.equal(log.walkDown(5, 0), 2, "op 2 does not chain under op 3");
    assert.equal(log.get(2), undefined);
    assert.deepEqual([3, 4].map((op) => log.get(op)?.trusted), [true, true]);
  });

  test("walking the chain down stops at a slot already trusted (no re-walk of the window per entry)", () => {
    // The walk used to go on to the floor from every entry accepted; a replica catching up
    // thousands of ops spent minutes in it. A trusted slot that chains was walked when it
    // became trusted, so what lies below it is not this walk's business: here the stale op
    // 1 under trusted op 2 stays (the old walk removed it).
    const log = new LogWindow(rootEntry(cluster));
    const good = chainOf(4, 1);
    log.put(chainOf(1, 2)[0]!, null, false);
    log.put(good[1]!, null, true);
    log.put(good[2]!, null, false);
    log.put(good[3]!, null, true);
    assert.equal(log.walkDown(4, 0), null);
    assert.equal(log.get(3)?.trusted, true);
    assert.ok(log.get(1) !== undefined, "the walk stopped at trusted op 2");
  });
});
