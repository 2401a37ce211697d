import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checksum } from "../src/codec/checksum.ts";
import { directBlockBytes } from "../src/storage/disk.ts";
import { MemoryDisk } from "../src/storage/disk_memory.ts";
import { PortableDisk } from "../src/storage/disk_portable.ts";
import { formatDataDir, openDataDir } from "../src/storage/data_dir.ts";
import {
  ClusterMismatchError, DataDirError, FormatVersionError, NotFormattedError,
} from "../src/storage/errors.ts";
import { seededRandom } from "../src/storage/seeded_random.ts";
import { recoverJournal } from "../src/storage/recovery.ts";
import { entryBodySizeMax, entryHeaderSize } from "../src/codec/entry_header.ts";
import { chain, cluster } from "./storage_helpers.ts";

const identity = { cluster, replica: 1, replicaCount: 3 };

/** A memory data dir with `count` entries, closed (`padded`: direct files padded to a block). */
async function written(count: number, bodySize = 100, segmentSizeLimit?: number, padded = false) {
  const disk = new MemoryDisk();
  disk.padDirectFiles = padded;
  await formatDataDir(disk, "/d", identity);
  const dir = await openDataDir(disk, "/d", segmentSizeLimit === undefined ? {} : { segmentSizeLimit });
  const entries = chain(count, bodySize);
  for (const e of entries) await dir.journal.append(e.header, e.body);
  const where = (op: number) => dir.journal.locate(op);
  const locations = entries.map((_, i) => where(i + 1));
  await dir.close();
  return { disk, entries, locations };
}

describe("recovery", () => {
  test("a torn tail (partial last write) is truncated; nothing acknowledged is lost (also before a direct segment's padding)", async () => {
    for (const padded of [false, true]) for (let seed = 1; seed <= (padded ? 20 : 30); seed++) {
      const { disk, entries, locations } = await written(10, 700, undefined, padded);
      const last = locations[9]!;
      const extra = chain(3, 700, entries[9]!.header, 11);
      const file = await disk.open(last.path, { create: false });
      // An unacknowledged batch that the crash interrupts: written, never synced.
      await file.write(last.offset + last.size, extra.flatMap((e) => [e.header, e.body]), { sync: false });
      disk.crash({ tear: seededRandom(seed) });
      const dir = await openDataDir(disk, "/d", {});
      assert.deepEqual(dir.journal.faults(), [], `seed ${seed}`);
      assert.ok(dir.journal.opHead >= 10 && dir.journal.opHead <= 13, `seed ${seed}: head ${dir.journal.opHead}`);
      const head = dir.journal.locate(dir.journal.opHead);
      const bytes = disk.bytes(last.path);
      const clean = padded ? paddedOrExact(bytes, head.offset + head.size) : bytes.length === head.offset + head.size;
      assert.ok(clean, `seed ${seed}${padded ? ", padded" : ""}: no partial bytes remain (${bytes.length} bytes, head ends at ${head.offset + head.size})`);
      for (let op = 1; op <= dir.journal.opHead; op++) assert.ok((await dir.journal.read(op)).ok);
      await dir.close();
    }
  });

  test("a bit flip in an inner entry's header or body is named by op and offset; later entries stay readable", async () => {
    for (const [where, kind] of [[5, "header"], [60, "header"], [128 + 10, "body"]] as const) {
      const { disk, locations } = await written(10, 300);
      const target = locations[4]!;
      disk.flipBit(target.path, target.offset + where, 3);
      const dir = await openDataDir(disk, "/d", {});
      const faults = dir.journal.faults();
      assert.equal(faults.length, 1, JSON.stringify(faults));
      assert.equal(faults[0]!.op, 5);
      assert.equal(faults[0]!.kind, kind);
      assert.equal(faults[0]!.offset, target.offset);
      assert.equal(faults[0]!.path, target.path);
      assert.equal(dir.journal.opHead, 10);
      for (const op of [4, 6, 10]) assert.ok((await dir.journal.read(op)).ok, `op ${op} readable`);
      assert.equal((await dir.journal.read(5)).ok, false);
      await dir.close();
    }
  });

  test("a corrupt last entry at or below the commit is a fault, not a tear", async () => {
    const { disk, locations } = await written(10, 300);
    const open = await openDataDir(disk, "/d", {});
    await open.superblock.write({ ...open.superblock.state, commit: 10 });
    await open.close();
    const last = locations[9]!;
    disk.flipBit(last.path, last.offset + 200);
    const sizeBefore = disk.bytes(last.path).length;
    const dir = await openDataDir(disk, "/d", {});
    assert.deepEqual(dir.journal.faultyOps(), [10]);
    assert.equal(dir.journal.faults()[0]!.kind, "body");
    assert.equal(disk.bytes(last.path).length, sizeBefore, "nothing truncated");
    await dir.close();
  });

  test("a corrupt entry followed by valid ones at the end of the log is corruption, not a tear", async () => {
    const { disk, locations } = await written(10, 300);
    disk.flipBit(locations[7]!.path, locations[7]!.offset + 20);
    const dir = await openDataDir(disk, "/d", {});
    assert.deepEqual(dir.journal.faultyOps(), [8]);
    assert.equal(dir.journal.opHead, 10);
    await dir.close();
  });

  test("a broken chain link is named; a repair with the right copy clears it", async () => {
    const { disk, entries, locations } = await written(10, 100);
    const forged = chain(1, 100, new Uint8Array(128).fill(9), 6)[0]!; // op 6 with a wrong parent
    const file = await disk.open(locations[5]!.path, { create: false });
    await file.write(locations[5]!.offset, [forged.header, forged.body], { sync: true });
    const dir = await openDataDir(disk, "/d", {});
    const chainFaults = dir.journal.faults().filter((f) => f.kind === "chain").map((f) => f.op);
    assert.ok(chainFaults.includes(6), JSON.stringify(dir.journal.faults()));
    await dir.journal.repair(6, entries[5]!.header, entries[5]!.body);
    assert.deepEqual(dir.journal.faults(), []);
    await dir.close();
  });

  test("a new last segment whose header never became durable is a torn creation: recreated, appends go on", async () => {
    const { disk, entries } = await written(10, 100);
    const file = await disk.open("/d/journal/0000000000000002.segment", { create: true });
    await file.write(0, [new Uint8Array(300).fill(0xab)], { sync: true }); // garbage, no header
    await disk.syncDirectory("/d/journal");
    const readOnly = await openDataDir(disk, "/d", { readOnly: true });
    assert.deepEqual(readOnly.journal.faults(), []);
    assert.equal(readOnly.recovery.tornTail?.offset, 0);
    await readOnly.close();
    const dir = await openDataDir(disk, "/d", {});
    const more = chain(3, 100, entries[9]!.header, 11);
    for (const e of more) await dir.journal.append(e.header, e.body);
    await dir.close();
    const again = await openDataDir(disk, "/d", {});
    assert.deepEqual(again.journal.faults(), []);
    assert.equal(again.journal.opHead, 13);
    assert.equal(again.journal.segments()[1]!.firstOp, 11);
    await again.close();
  });

  test("a missing middle segment is a gap named by op; entries after it stay readable", async () => {
    const { disk } = await written(60, 200, 4096);
    const names = await disk.list("/d/journal");
    assert.ok(names.length >= 4);
    await disk.remove(`/d/journal/${names[1]}`);
    const dir = await openDataDir(disk, "/d", {});
    const gaps = dir.journal.faults().filter((f) => f.kind === "gap");
    assert.ok(gaps.length > 0);
    assert.ok(dir.journal.faults().every((f) => f.kind === "gap"));
    assert.equal(dir.journal.opHead, 60);
    assert.ok((await dir.journal.read(60)).ok);
    await dir.close();
  });

  test("the ops of a lost middle segment can be repaired from copies, after the previous op", async () => {
    const { disk, entries } = await written(60, 200, 4096);
    const names = await disk.list("/d/journal");
    await disk.remove(`/d/journal/${names[1]}`);
    const dir = await openDataDir(disk, "/d", {});
    const gaps = dir.journal.faultyOps();
    assert.ok(gaps.length > 5);
    // Out of order, a gap op has nowhere to go yet: refused.
    await assert.rejects(dir.journal.repair(gaps[1]!, entries[gaps[1]! - 1]!.header, entries[gaps[1]! - 1]!.body));
    for (const op of gaps) await dir.journal.repair(op, entries[op - 1]!.header, entries[op - 1]!.body);
    assert.deepEqual(dir.journal.faults(), []);
    await dir.close();
    const again = await openDataDir(disk, "/d", {});
    assert.deepEqual(again.journal.faults(), []);
    assert.equal(again.journal.opHead, 60);
    for (const op of [gaps[0]!, gaps[gaps.length - 1]!, 60]) assert.ok((await again.journal.read(op)).ok);
    await again.close();
  });

  test("decision table: header × body × position → accept, fault or truncate", async () => {
    // position "inner": op 5 of 10; "tail": op 10 of 10 above the commit; "committed tail": op 10, commit 10.
    const cases = [
      { damage: "header", position: "inner", expect: "fault" },
      { damage: "body", position: "inner", expect: "fault" },
      { damage: "header", position: "tail", expect: "truncate" },
      { damage: "body", position: "tail", expect: "truncate" },
      { damage: "header", position: "committed tail", expect: "fault" },
      { damage: "body", position: "committed tail", expect: "fault" },
      { damage: "none", position: "tail", expect: "accept" },
    ] as const;
    for (const c of cases) {
      const { disk, locations } = await written(10, 300);
      if (c.position === "committed tail") {
        const open = await openDataDir(disk, "/d", {});
        await open.superblock.write({ ...open.superblock.state, commit: 10 });
        await open.close();
      }
      const target = locations[c.position === "inner" ? 4 : 9]!;
      if (c.damage !== "none") disk.flipBit(target.path, target.offset + (c.damage === "header" ? 90 : 200));
      const dir = await openDataDir(disk, "/d", {});
      const label = `${c.damage} damage at ${c.position}`;
      if (c.expect === "accept") {
        assert.equal(dir.journal.opHead, 10, label);
        assert.deepEqual(dir.journal.faults(), [], label);
      } else if (c.expect === "truncate") {
        assert.equal(dir.journal.opHead, 9, label);
        assert.deepEqual(dir.journal.faults(), [], label);
        assert.ok(dir.recovery.tornTail !== null, label);
      } else {
        const op = c.position === "inner" ? 5 : 10;
        assert.deepEqual(dir.journal.faultyOps(), [op], label);
        assert.equal(dir.journal.faults()[0]!.kind, c.damage, label);
        assert.equal(dir.recovery.tornTail, null, label);
      }
      await dir.close();
    }
  });
});

/** Every file under `root` with its bytes and mtime, to prove nothing was written. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const stat = statSync(full);
      if (stat.isDirectory()) walk(full);
      else out.set(full, `${stat.mtimeMs}:${checksum(readFileSync(full)).join(",")}`);
    }
  };
  walk(root);
  return out;
}

/** True when `bytes` past `end` are a direct file's padding: under a block of zeros, ending on a block. */
function paddedOrExact(bytes: Uint8Array, end: number): boolean {
  if (bytes.length === end) return true;
  return bytes.length > end && bytes.length % directBlockBytes === 0 && bytes.length - end < directBlockBytes && bytes.subarray(end).every((b) => b === 0);
}

describe("recovery of direct segments (zero padding to a block, as the io_uring backend writes them)", () => {
  test("segments reopen to the same head with no fault and no torn tail; closed segments are cut to their last entry", async () => {
    const { disk, entries, locations } = await written(60, 200, 4096, true);
    const dir = await openDataDir(disk, "/d", {});
    assert.deepEqual(dir.journal.faults(), []);
    assert.equal(dir.recovery.tornTail, null);
    assert.equal(dir.journal.opHead, 60);
    const segments = dir.journal.segments();
    assert.ok(segments.length > 3, `${segments.length} segments`);
    for (const segment of segments.slice(0, -1)) {
      const last = locations.filter((l) => l.path === segment.path).at(-1)!;
      assert.equal(disk.bytes(segment.path).length, last.offset + last.size, `${segment.path} cut at its last entry`);
    }
    const tail = segments.at(-1)!;
    const head = locations[59]!;
    const bytes = disk.bytes(tail.path);
    assert.ok(bytes.length > head.offset + head.size && paddedOrExact(bytes, head.offset + head.size), `last segment padded: ${bytes.length}`);
    // Appends go on after the data, over the padding.
    const more = chain(3, 200, entries[59]!.header, 61);
    for (const e of more) await dir.journal.append(e.header, e.body);
    await dir.close();
    const again = await openDataDir(disk, "/d", {});
    assert.deepEqual(again.journal.faults(), []);
    assert.equal(again.journal.opHead, 63);
    for (let op = 1; op <= 63; op++) assert.ok((await again.journal.read(op)).ok, `op ${op}`);
    await again.close();
  });

  test("a corrupt last entry above the commit, followed only by padding, is a torn tail", async () => {
    const { disk, locations } = await written(10, 300, undefined, true);
    const last = locations[9]!;
    assert.ok(disk.bytes(last.path).length > last.offset + last.size, "the segment is padded");
    disk.flipBit(last.path, last.offset + 200);
    const dir = await openDataDir(disk, "/d", {});
    assert.deepEqual(dir.journal.faults(), []);
    assert.equal(dir.recovery.tornTail?.offset, last.offset);
    assert.equal(dir.journal.opHead, 9);
    await dir.close();
  });

  test("zeros that are not padding (a block or more, or a file not ending on a block) are a torn tail, as before", async () => {
    for (const zeros of ["block", "unaligned"] as const) {
      const { disk, locations } = await written(10, 300, undefined, zeros === "block");
      const last = locations[9]!;
      const size = disk.bytes(last.path).length;
      const file = await disk.open(last.path, { create: false });
      await file.write(size, [new Uint8Array(zeros === "block" ? directBlockBytes : 10)], { sync: true });
      const dir = await openDataDir(disk, "/d", {});
      assert.deepEqual(dir.journal.faults(), [], zeros);
      assert.equal(dir.recovery.tornTail?.offset, last.offset + last.size, zeros);
      assert.equal(dir.journal.opHead, 10, zeros);
      assert.equal(disk.bytes(last.path).length, last.offset + last.size, `${zeros}: truncated to the last entry`);
      await dir.close();
    }
  });

  test("padding left in a closed segment (a crash before the cut) is accepted; a non-zero byte in it is named", async () => {
    const { disk, locations } = await written(60, 200, 4096, true);
    const first = locations[0]!;
    const lastOfFirst = locations.filter((l) => l.path === first.path).at(-1)!;
    const end = lastOfFirst.offset + lastOfFirst.size;
    const file = await disk.open(first.path, { create: false });
    const pad = directBlockBytes - (end % directBlockBytes);
    await file.write(end, [new Uint8Array(pad)], { sync: true });
    const dir = await openDataDir(disk, "/d", {});
    assert.deepEqual(dir.journal.faults(), []);
    assert.equal(dir.journal.opHead, 60);
    await dir.close();
    disk.flipBit(first.path, end + 5);
    const damaged = await openDataDir(disk, "/d", { readOnly: true });
    assert.ok(damaged.journal.faults().length > 0, "garbage after the last entry of a closed segment is named");
    await damaged.close();
  });
});

describe("data dir refusals on a real disk", () => {
  const disk = new PortableDisk();

  test("another cluster's data dir is refused with ClusterMismatchError, nothing written", async () => {
    const root = mkdtempSync(join(tmpdir(), "chronon-rec-"));
    try {
      await formatDataDir(disk, `${root}/d`, identity);
      const before = snapshot(root);
      await assert.rejects(openDataDir(disk, `${root}/d`, { cluster: new Uint8Array(16).fill(1) }), ClusterMismatchError);
      assert.deepEqual(snapshot(root), before);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a newer format version is refused with FormatVersionError, nothing written", async () => {
    const root = mkdtempSync(join(tmpdir(), "chronon-rec-"));
    try {
      await formatDataDir(disk, `${root}/d`, identity);
      const bytes = readFileSync(`${root}/d/identity`);
      bytes.writeUInt32LE(2, 24);
      bytes.set(checksum(bytes.subarray(16)), 0);
      writeFileSync(`${root}/d/identity`, bytes);
      const before = snapshot(root);
      await assert.rejects(openDataDir(disk, `${root}/d`), FormatVersionError);
      assert.deepEqual(snapshot(root), before);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a non-chronon directory or file is refused with DataDirError, an empty one with NotFormattedError", async () => {
    const root = mkdtempSync(join(tmpdir(), "chronon-rec-"));
    try {
      mkdirSync(`${root}/other`);
      writeFileSync(`${root}/other/notes.txt`, "hello");
      writeFileSync(`${root}/file`, "hello");
      mkdirSync(`${root}/empty`);
      const before = snapshot(root);
      await assert.rejects(openDataDir(disk, `${root}/other`), DataDirError);
      await assert.rejects(openDataDir(disk, `${root}/file`), DataDirError);
      await assert.rejects(openDataDir(disk, `${root}/empty`), NotFormattedError);
      await assert.rejects(openDataDir(disk, `${root}/missing`), NotFormattedError);
      writeFileSync(`${root}/other/identity`, "not ours at all, but long enough to have a magic..............");
      await assert.rejects(openDataDir(disk, `${root}/other`), DataDirError);
      before.set(`${root}/other/identity`, snapshot(root).get(`${root}/other/identity`)!);
      assert.deepEqual(snapshot(root), before);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("committed ops are absent, not faulty, when the checkpoint lies past the journal's end (a state transfer)", async () => {
    // Found by chronon chaos: a replica killed after a state transfer, before its journal
    // continued after the checkpoint, found every op up to the commit "missing" and its
    // head faulty, and stopped at each restart.
    const { disk, entries } = await written(5, 100);
    const scan = async (checkpointOp: number) => {
      const result = await recoverJournal(disk, "/d/journal", { cluster, commit: 20, checkpointOp, readOnly: true });
      for (const segment of result.segments) await segment.file.close();
      return { missing: [...result.opFaults.values()].filter((f) => f.kind === "missing").map((f) => f.op), head: result.headChecksum };
    };
    const all = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
    assert.deepEqual((await scan(0)).missing, all);
    assert.deepEqual((await scan(5)).missing, all, "a checkpoint inside the journal: the journal continued, so the ops must be there");
    assert.deepEqual((await scan(15)).missing, [], "nothing after a transferred checkpoint was ever written here");
    const covered = await scan(20);
    assert.deepEqual(covered.missing, []);
    assert.deepEqual(covered.head, entries[4]!.header.subarray(0, 16), "the head is sound: the log continues after the checkpoint");
  });

  test("a scan over many reused chunk buffers verifies every entry and names faults in later chunks", async () => {
    // 1,800 entries of 4,128 bytes (7.4 MiB) through chunks of the smallest size (2 MiB +
    // 256 B, not a multiple of the entry size): entries straddle chunk ends, and the three
    // pooled buffers are each reused. A body flip and a header flip (resync) in later chunks.
    const { disk, entries, locations } = await written(1800, 4000);
    const chunkSize = 2 * (entryHeaderSize + entryBodySizeMax);
    const scan = (readOnly: boolean) => recoverJournal(disk, "/d/journal", { cluster, commit: 1800, readOnly, chunkSize });
    const clean = await scan(true);
    assert.equal(clean.index.opMax, 1800);
    assert.equal(clean.opFaults.size + clean.otherFaults.length, 0);
    assert.deepEqual(clean.headChecksum, entries[1799]!.header.subarray(0, 16));
    for (const segment of clean.segments) await segment.file.close();
    const body = locations[699]!;
    const header = locations[1199]!;
    assert.ok(body.offset > chunkSize && header.offset > 2 * chunkSize, "the damage lies in the second and third chunks");
    disk.flipBit(body.path, body.offset + entryHeaderSize + 17, 2);
    disk.flipBit(header.path, header.offset + 70, 5);
    const damaged = await scan(true);
    assert.equal(damaged.index.opMax, 1800);
    assert.deepEqual([...damaged.opFaults.values()].map((f) => [f.op, f.kind, f.offset]), [[700, "body", body.offset], [1200, "header", header.offset]]);
    assert.deepEqual(damaged.headChecksum, entries[1799]!.header.subarray(0, 16));
    for (const segment of damaged.segments) await segment.file.close();
  });

  test("progress reports bytes verified: never decreasing, never past the total, and (total, total) exactly once at the end", async () => {
    const { disk } = await written(1800, 4000);
    const calls: [number, number][] = [];
    const chunkSize = 2 * (entryHeaderSize + entryBodySizeMax);
    const result = await recoverJournal(disk, "/d/journal", { cluster, commit: 0, readOnly: true, chunkSize, progress: (done, total) => calls.push([done, total]) });
    const total = result.segments.reduce((sum, segment) => sum + segment.size, 0);
    assert.ok(calls.length > 1000);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i]![0] >= calls[i - 1]![0] && calls[i]![0] <= calls[i]![1] && calls[i]![1] === total);
    assert.deepEqual(calls[calls.length - 1], [total, total]);
    assert.equal(calls.filter(([done]) => done === total).length, 1);
    for (const segment of result.segments) await segment.file.close();
  });
});
