import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeHeader } from "../src/codec/entry_header.ts";
import { AssertionFailed } from "../src/assert.ts";
import { MemoryDisk } from "../src/storage/disk_memory.ts";
import { formatDataDir, openDataDir } from "../src/storage/data_dir.ts";
import { JournalError } from "../src/storage/errors.ts";
import { chain, cluster, CountingDisk } from "./storage_helpers.ts";

const identity = { cluster, replica: 0, replicaCount: 3 };

async function fresh(options: { segmentSizeLimit?: number } = {}) {
  const memory = new MemoryDisk();
  const disk = new CountingDisk(memory);
  await formatDataDir(disk, "/data", identity);
  const dir = await openDataDir(disk, "/data", options);
  return { memory, disk, dir, journal: dir.journal };
}

describe("journal", () => {
  test("appended entries read back byte for byte and chain from the root", async () => {
    const { journal, dir } = await fresh();
    const entries = chain(20, 50);
    for (const e of entries) await journal.append(e.header, e.body);
    assert.equal(journal.opMin, 1);
    assert.equal(journal.opHead, 20);
    assert.deepEqual(journal.headChecksum, entries[19]!.header.slice(0, 16));
    for (let op = 1; op <= 20; op++) {
      const r = await journal.read(op);
      assert.ok(r.ok);
      assert.deepEqual(r.header, entries[op - 1]!.header);
      assert.deepEqual(r.body, entries[op - 1]!.body);
    }
    await dir.close();
  });

  test("an append out of order or off the chain is refused", async () => {
    const { journal } = await fresh();
    const entries = chain(3);
    assert.throws(() => journal.append(entries[1]!.header, entries[1]!.body), AssertionFailed);
    await journal.append(entries[0]!.header, entries[0]!.body);
    const other = chain(2, 10, entries[0]!.header.map((b) => b ^ 1), 2);
    assert.throws(() => journal.append(other[0]!.header, other[0]!.body), AssertionFailed);
  });

  test("group commit: 200 concurrent appends take far fewer write calls than entries", async () => {
    const { journal, disk } = await fresh();
    const entries = chain(200, 64);
    const before = disk.writes;
    await Promise.all(entries.map((e) => journal.append(e.header, e.body)));
    const writes = disk.writes - before;
    assert.ok(writes <= 3, `200 appends took ${writes} write calls`);
    assert.equal(journal.stats.batches, writes);
    assert.equal(journal.opHead, 200);
  });

  test("a full queue makes append wait, in op order, without losing entries", async () => {
    const memory = new MemoryDisk();
    await formatDataDir(memory, "/data", identity);
    const dir = await openDataDir(memory, "/data", { queueEntriesMax: 8, batchEntriesMax: 4 });
    const entries = chain(100, 10);
    await Promise.all(entries.map((e) => dir.journal.append(e.header, e.body)));
    assert.equal(dir.journal.opHead, 100);
    assert.ok(dir.journal.stats.batches >= 25, "batches bounded by batchEntriesMax");
    for (const op of [1, 50, 100]) assert.ok((await dir.journal.read(op)).ok);
  });

  test("segments roll past the size limit and survive reopening", async () => {
    const { journal, memory, dir } = await fresh({ segmentSizeLimit: 4096 });
    const entries = chain(100, 200);
    for (const e of entries) await journal.append(e.header, e.body);
    const segments = journal.segments();
    assert.ok(segments.length >= 7, `only ${segments.length} segments`);
    for (let i = 1; i < segments.length; i++) assert.equal(segments[i]!.firstOp, segments[i - 1]!.lastOp + 1);
    await dir.close();
    const again = await openDataDir(memory, "/data", {});
    assert.equal(again.journal.opHead, 100);
    assert.deepEqual(again.journal.faults(), []);
    assert.deepEqual(again.journal.headChecksum, entries[99]!.header.slice(0, 16));
  });

  test("releaseBefore deletes only whole segments below the op, keeping the rest readable", async () => {
    const { journal, memory } = await fresh({ segmentSizeLimit: 4096 });
    const entries = chain(100, 200);
    for (const e of entries) await journal.append(e.header, e.body);
    const segments = journal.segments();
    const cut = segments[3]!.firstOp + 1;
    await journal.releaseBefore(cut);
    assert.equal(journal.opMin, segments[3]!.firstOp);
    assert.equal((await memory.list("/data/journal")).length, segments.length - 3);
    assert.ok((await journal.read(journal.opMin)).ok);
    const next = chain(1, 10, entries[99]!.header, 101);
    await journal.append(next[0]!.header, next[0]!.body);
    await journal.releaseBefore(1_000_000);
    assert.equal(journal.segments().length, 1, "the last segment is always kept");
  });

  test("truncateAfter drops the uncommitted suffix and is refused below the commit", async () => {
    const { journal, dir, memory } = await fresh({ segmentSizeLimit: 4096 });
    const entries = chain(60, 200);
    for (const e of entries) await journal.append(e.header, e.body);
    await dir.superblock.write({ ...dir.superblock.state, commit: 10 });
    await assert.rejects(journal.truncateAfter(9), AssertionFailed);
    await journal.truncateAfter(12);
    assert.equal(journal.opHead, 12);
    assert.deepEqual(journal.headChecksum, entries[11]!.header.slice(0, 16));
    const replacement = chain(5, 30, entries[11]!.header, 13);
    for (const e of replacement) await journal.append(e.header, e.body);
    assert.equal(journal.opHead, 17);
    await dir.close();
    const again = await openDataDir(memory, "/data", {});
    assert.equal(again.journal.opHead, 17);
    assert.deepEqual(again.journal.faults(), []);
  });

  test("repair overwrites a corrupt entry in place with a verified copy", async () => {
    const { journal, memory, dir } = await fresh();
    const entries = chain(10, 100);
    for (const e of entries) await journal.append(e.header, e.body);
    const where = journal.locate(5);
    await dir.close();
    memory.flipBit(where.path, where.offset + 128 + 3);
    const reopened = await openDataDir(memory, "/data", {});
    assert.deepEqual(reopened.journal.faultyOps(), [5]);
    const bad = await reopened.journal.read(5);
    assert.ok(!bad.ok);
    assert.equal(bad.fault.kind, "body");
    // A copy of another op, or a tampered copy, is refused.
    await assert.rejects(reopened.journal.repair(5, entries[5]!.header, entries[5]!.body), JournalError);
    const tampered = entries[4]!.body.slice();
    tampered[0]! ^= 1;
    await assert.rejects(reopened.journal.repair(5, entries[4]!.header, tampered), JournalError);
    await reopened.journal.repair(5, entries[4]!.header, entries[4]!.body);
    assert.deepEqual(reopened.journal.faultyOps(), []);
    const good = await reopened.journal.read(5);
    assert.ok(good.ok);
    assert.equal(decodeHeader(good.header).op, 5);
    await reopened.close();
    const third = await openDataDir(memory, "/data", {});
    assert.deepEqual(third.journal.faults(), []);
  });

  test("a failed sync fails the journal: pending appends reject, later ones too", async () => {
    const { journal, memory } = await fresh();
    const entries = chain(5);
    await journal.append(entries[0]!.header, entries[0]!.body);
    memory.failNextSync();
    await assert.rejects(journal.append(entries[1]!.header, entries[1]!.body), JournalError);
    await assert.rejects(journal.append(entries[2]!.header, entries[2]!.body), JournalError);
    assert.equal(journal.opHead, 1);
  });
});
