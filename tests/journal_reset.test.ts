import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checksum } from "../src/codec/checksum.ts";
import { AssertionFailed } from "../src/assert.ts";
import { DiskError } from "../src/storage/disk.ts";
import type { Disk, DiskFile, DiskOpenOptions, WriteOptions } from "../src/storage/disk.ts";
import { MemoryDisk } from "../src/storage/disk_memory.ts";
import { PortableDisk } from "../src/storage/disk_portable.ts";
import { formatDataDir, openDataDir } from "../src/storage/data_dir.ts";
import { encodeSegmentHeader, segmentHeaderSize } from "../src/storage/segment.ts";
import { seededRandom } from "../src/storage/seeded_random.ts";
import { chain, cluster } from "./storage_helpers.ts";

const identity = { cluster, replica: 0, replicaCount: 3 };
const segmentSizeLimit = 4096;

/** A peer's log up to the checkpoint op 100: the reset chains from its entry 100. */
const peer = chain(100, 20);
const checkpointOp = 100;
const checkpointChecksum = peer[99]!.header.slice(0, 16);
/** What the replica held before the reset: 30 entries of its own (divergent after op 10). */
const own = chain(30, 200);
/** What it appends after the reset. */
const after = chain(20, 50, peer[99]!.header, checkpointOp + 1);

async function written(disk: Disk = new MemoryDisk(), path = "/data") {
  await formatDataDir(disk, path, identity);
  const dir = await openDataDir(disk, path, { segmentSizeLimit });
  for (const e of own) await dir.journal.append(e.header, e.body);
  await dir.superblock.write({ ...dir.superblock.state, commit: 10 });
  return dir;
}

/**
 * Passes calls through to a MemoryDisk until the `crashAt`-th call that changes anything
 * (create, write, truncate, remove, directory sync), which instead crashes the memory disk
 * (unsynced writes lost or torn, unsynced directory entries reverted) and throws.
 */
class CrashingDisk implements Disk {
  readonly name = "crashing";
  calls = 0;
  crashAt = Number.POSITIVE_INFINITY;
  readonly #memory: MemoryDisk;
  readonly #tear: (() => number) | undefined;
  constructor(memory: MemoryDisk, tear?: () => number) {
    this.#memory = memory;
    this.#tear = tear;
  }
  #step(what: string): void {
    this.calls++;
    if (this.calls === this.crashAt) {
      this.#memory.crash(this.#tear === undefined ? {} : { tear: this.#tear });
      throw new DiskError(what, "(crash)", "EIO", "simulated crash");
    }
  }
  async open(path: string, options: DiskOpenOptions): Promise<DiskFile> {
    if (options.create && !(await this.#memory.exists(path))) this.#step("create");
    const file = await this.#memory.open(path, options);
    return {
      path: file.path,
      size: () => file.size(),
      read: (o, l) => file.read(o, l),
      write: (offset: number, buffers: readonly Uint8Array[], opts: WriteOptions) => {
        this.#step("write");
        return file.write(offset, buffers, opts);
      },
      sync: () => file.sync(),
      truncate: (s) => {
        this.#step("truncate");
        return file.truncate(s);
      },
      close: () => file.close(),
    };
  }
  exists(path: string): Promise<boolean> { return this.#memory.exists(path); }
  list(directory: string): Promise<string[]> { return this.#memory.list(directory); }
  mkdir(directory: string): Promise<void> { return this.#memory.mkdir(directory); }
  remove(path: string): Promise<void> {
    this.#step("remove");
    return this.#memory.remove(path);
  }
  syncDirectory(directory: string): Promise<void> {
    this.#step("syncDirectory");
    return this.#memory.syncDirectory(directory);
  }
  close(): Promise<void> { return this.#memory.close(); }
}

/** Checks the journal at /data is exactly the old state or exactly the new one; names which. */
async function oldOrNew(memory: MemoryDisk): Promise<{ state: "old" | "new"; discarded: number }> {
  const dir = await openDataDir(memory, "/data", { segmentSizeLimit });
  const journal = dir.journal;
  assert.deepEqual(journal.faults(), []);
  let state: "old" | "new";
  if (journal.opMin === 1) {
    state = "old";
    assert.equal(journal.opHead, own.length);
    assert.deepEqual(journal.headChecksum, own[own.length - 1]!.header.slice(0, 16));
    const next = chain(1, 10, own[own.length - 1]!.header, own.length + 1)[0]!;
    await journal.append(next.header, next.body);
  } else {
    state = "new";
    assert.equal(journal.opMin, checkpointOp + 1);
    assert.equal(journal.opHead, checkpointOp);
    assert.deepEqual(journal.headChecksum, checkpointChecksum);
    assert.deepEqual(journal.startChecksum, checkpointChecksum);
    assert.equal(journal.segments().length, 1, "only the base segment is left");
    assert.deepEqual(await memory.list("/data/journal"), [journal.segments()[0]!.path.slice("/data/journal/".length)]);
    await journal.append(after[0]!.header, after[0]!.body);
  }
  const discarded = dir.recovery.discarded.length;
  await dir.close();
  const again = await openDataDir(memory, "/data", { segmentSizeLimit });
  assert.deepEqual(again.journal.faults(), []);
  assert.equal(again.journal.opHead, state === "old" ? own.length + 1 : checkpointOp + 1);
  await again.close();
  return { state, discarded };
}

describe("journal reset after a checkpoint", () => {
  test("discards everything held, continues from op N+1 chained to the checksum, and survives a restart", async () => {
    const memory = new MemoryDisk();
    const dir = await written(memory);
    const journal = dir.journal;
    assert.ok(journal.segments().length >= 2, "the old journal spans several segments");
    const lastOld = journal.segments().at(-1)!.number;
    await journal.resetAfterCheckpoint(checkpointOp, checkpointChecksum);
    assert.equal(journal.opMin, checkpointOp + 1);
    assert.equal(journal.opHead, checkpointOp);
    assert.deepEqual(journal.headChecksum, checkpointChecksum);
    assert.deepEqual(journal.startChecksum, checkpointChecksum);
    assert.deepEqual(journal.faults(), []);
    const segments = journal.segments();
    assert.equal(segments.length, 1);
    assert.equal(segments[0]!.number, lastOld + 1, "a fresh segment, never a rewritten one");
    assert.equal(segments[0]!.firstOp, checkpointOp + 1);
    assert.equal((await memory.list("/data/journal")).length, 1);
    // The next op must chain from the checkpoint's entry, not from what was held before.
    const offChain = chain(1, 10, own[29]!.header, checkpointOp + 1)[0]!;
    assert.throws(() => journal.append(offChain.header, offChain.body), AssertionFailed);
    await Promise.all(after.map((e) => journal.append(e.header, e.body)));
    assert.equal(journal.opHead, checkpointOp + after.length);
    await dir.close();

    const again = await openDataDir(memory, "/data", { segmentSizeLimit });
    assert.equal(again.journal.opMin, checkpointOp + 1);
    assert.equal(again.journal.opHead, checkpointOp + after.length);
    assert.deepEqual(again.journal.faults(), []);
    assert.deepEqual(again.recovery.discarded, []);
    assert.deepEqual(again.journal.headChecksum, after.at(-1)!.header.slice(0, 16));
    for (const op of [checkpointOp + 1, checkpointOp + after.length]) {
      const read = await again.journal.read(op);
      assert.ok(read.ok);
      assert.deepEqual(read.header, after[op - checkpointOp - 1]!.header);
    }
    // Truncating everything appended since goes back to the checkpoint's checksum.
    await again.journal.truncateAfter(checkpointOp);
    assert.equal(again.journal.opHead, checkpointOp);
    assert.deepEqual(again.journal.headChecksum, checkpointChecksum);
    await again.journal.append(after[0]!.header, after[0]!.body);
    await again.close();
  });

  test("a first op that does not chain from the recorded checksum is a chain fault after restart", async () => {
    const memory = new MemoryDisk();
    const dir = await written(memory);
    await dir.journal.resetAfterCheckpoint(checkpointOp, checkpointChecksum);
    for (const e of after.slice(0, 3)) await dir.journal.append(e.header, e.body);
    const path = dir.journal.segments()[0]!.path;
    const number = dir.journal.segments()[0]!.number;
    await dir.close();
    // Rewrite the base header as if it recorded another checksum.
    const file = await memory.open(path, { create: false });
    const wrong = checksumOf(7);
    await file.write(0, [encodeSegmentHeader({ cluster, segment: number, firstOp: checkpointOp + 1, parent: wrong, base: true })], { sync: true });
    await file.close();
    const again = await openDataDir(memory, "/data", { segmentSizeLimit });
    assert.deepEqual(again.journal.faults().map((f) => [f.op, f.kind]), [[checkpointOp + 1, "chain"]]);
    await again.close();
  });

  test("is refused above the commit's reach and with appends in flight", async () => {
    const dir = await written();
    await dir.superblock.write({ ...dir.superblock.state, commit: 30 });
    await assert.rejects(dir.journal.resetAfterCheckpoint(29, checkpointChecksum), AssertionFailed);
    await assert.rejects(dir.journal.resetAfterCheckpoint(checkpointOp, new Uint8Array(16)), AssertionFailed);
    const next = chain(1, 10, own[29]!.header, 31)[0]!;
    const pending = dir.journal.append(next.header, next.body);
    await assert.rejects(dir.journal.resetAfterCheckpoint(checkpointOp, checkpointChecksum), AssertionFailed);
    await pending;
    assert.equal(dir.journal.opHead, 31, "a refused reset changes nothing");
    await dir.close();
  });

  for (const tear of [false, true]) {
    test(`a crash at any step leaves the old or the new journal, whole${tear ? " (unsynced writes torn)" : ""}`, async () => {
      const seen = { old: 0, new: 0, discarded: 0 };
      for (let crashAt = 1; ; crashAt++) {
        const memory = new MemoryDisk();
        const crashing = new CrashingDisk(memory, tear ? seededRandom(crashAt) : undefined);
        const dir = await written(crashing);
        crashing.crashAt = crashing.calls + crashAt;
        let crashed = false;
        try {
          await dir.journal.resetAfterCheckpoint(checkpointOp, checkpointChecksum);
        } catch (error) {
          assert.ok(error instanceof Error && /simulated crash/.test(error.message), String(error));
          crashed = true;
        }
        if (!crashed) memory.crash(); // the reset resolved: it must be durable
        const { state, discarded } = await oldOrNew(memory);
        seen[state]++;
        if (discarded > 0) seen.discarded++;
        if (!crashed) {
          assert.equal(state, "new", "a reset that resolved is durable");
          break;
        }
        assert.ok(crashAt < 50, "the reset ends within a bounded number of steps");
      }
      assert.ok(seen.old >= 1 && seen.new >= 2, `old ${seen.old}, new ${seen.new}`);
      assert.ok(seen.discarded >= 1, "some crash left old segments behind the base, and recovery removed them");
    });
  }

  test("a read-only open names the void segments a crash left and removes nothing", async () => {
    const memory = new MemoryDisk();
    const crashing = new CrashingDisk(memory);
    const dir = await written(crashing);
    const before = await memory.list("/data/journal");
    // create, header write, directory sync: the base is durable; crash at the first remove.
    crashing.crashAt = crashing.calls + 4;
    await assert.rejects(dir.journal.resetAfterCheckpoint(checkpointOp, checkpointChecksum), /simulated crash/);
    const listed = await memory.list("/data/journal");
    assert.equal(listed.length, before.length + 1);
    const inspect = await openDataDir(memory, "/data", { readOnly: true });
    assert.equal(inspect.recovery.discarded.length, before.length);
    assert.equal(inspect.journal.opMin, checkpointOp + 1);
    await inspect.close();
    assert.deepEqual(await memory.list("/data/journal"), listed);
    const opened = await openDataDir(memory, "/data", {});
    assert.deepEqual(await memory.list("/data/journal"), [listed.at(-1)!]);
    await opened.close();
  });

  test("on real files (portable backend): reset, append, restart", async () => {
    const root = mkdtempSync(join(tmpdir(), "chronon-reset-"));
    const disk = new PortableDisk();
    try {
      const dir = await written(disk, `${root}/d`);
      await dir.journal.resetAfterCheckpoint(checkpointOp, checkpointChecksum);
      for (const e of after) await dir.journal.append(e.header, e.body);
      await dir.close();
      assert.equal(readdirSync(`${root}/d/journal`).length, 1);
      const again = await openDataDir(disk, `${root}/d`, { segmentSizeLimit });
      assert.equal(again.journal.opMin, checkpointOp + 1);
      assert.equal(again.journal.opHead, checkpointOp + after.length);
      assert.deepEqual(again.journal.faults(), []);
      await again.close();
    } finally {
      await disk.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("releaseBefore and restart", () => {
  test("recovery starts at the first op retained and checks it against the recorded parent", async () => {
    const memory = new MemoryDisk();
    await formatDataDir(memory, "/data", identity);
    const dir = await openDataDir(memory, "/data", { segmentSizeLimit });
    const entries = chain(100, 200);
    for (const e of entries) await dir.journal.append(e.header, e.body);
    await dir.superblock.write({ ...dir.superblock.state, commit: 100 });
    const segments = dir.journal.segments();
    await dir.journal.releaseBefore(segments[3]!.firstOp + 1);
    const opMin = segments[3]!.firstOp;
    assert.equal(dir.journal.opMin, opMin);
    assert.deepEqual(dir.journal.startChecksum, entries[opMin - 2]!.header.slice(0, 16));
    await dir.close();

    const again = await openDataDir(memory, "/data", { segmentSizeLimit });
    assert.equal(again.journal.opMin, opMin);
    assert.equal(again.journal.opHead, 100);
    assert.deepEqual(again.journal.faults(), []);
    assert.deepEqual(again.journal.startChecksum, entries[opMin - 2]!.header.slice(0, 16));
    assert.deepEqual(again.journal.headChecksum, entries[99]!.header.slice(0, 16));
    assert.ok((await again.journal.read(opMin)).ok);
    const next = chain(1, 10, entries[99]!.header, 101)[0]!;
    await again.journal.append(next.header, next.body);
    const first = again.journal.segments()[0]!;
    await again.close();

    // The first retained segment's header records the parent of its first op: a header
    // naming another parent makes that op a chain fault, not a silently accepted start.
    const file = await memory.open(first.path, { create: false });
    await file.write(0, [encodeSegmentHeader({ cluster, segment: first.number, firstOp: opMin, parent: checksumOf(9) })], { sync: true });
    await file.close();
    const tampered = await openDataDir(memory, "/data", { segmentSizeLimit });
    assert.deepEqual(tampered.journal.faults().map((f) => [f.op, f.kind]), [[opMin, "chain"]]);
    await tampered.close();
  });

  test("a version 1 segment (no recorded parent) still opens", async () => {
    const memory = new MemoryDisk();
    await formatDataDir(memory, "/data", identity);
    const path = "/data/journal/0000000000000001.segment";
    const header = encodeSegmentHeader({ cluster, segment: 1, firstOp: 1 });
    new DataView(header.buffer).setUint32(24, 1, true);
    header.fill(0, 64, segmentHeaderSize);
    header.set(checksum(header.subarray(16)), 0);
    const file = await memory.open(path, { create: false });
    await file.write(0, [header], { sync: true });
    await file.close();
    const dir = await openDataDir(memory, "/data", {});
    assert.deepEqual(dir.journal.faults(), []);
    const e = chain(1)[0]!;
    await dir.journal.append(e.header, e.body);
    await dir.close();
  });
});

function checksumOf(seed: number): Uint8Array {
  return checksum(new Uint8Array([seed]));
}
