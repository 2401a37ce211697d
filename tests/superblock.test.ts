import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDisk } from "../src/storage/disk_memory.ts";
import {
  chooseSuperblockCopy, encodeSuperblockCopy, Superblock, superblockCopyCount, superblockCopySize,
} from "../src/storage/superblock.ts";
import type { SuperblockState } from "../src/storage/superblock.ts";
import { CorruptSuperblockError, FormatVersionError } from "../src/storage/errors.ts";
import { checksum } from "../src/codec/checksum.ts";
import { seededRandom } from "../src/storage/seeded_random.ts";

const state: SuperblockState = {
  cluster: new Uint8Array(16).fill(3),
  replica: 2,
  replicaCount: 3,
  view: 7,
  logView: 6,
  commit: 1234,
  checkpointOp: 1000,
  checkpointChecksum: new Uint8Array(16).fill(5),
};

async function twoWrites(): Promise<{ disk: MemoryDisk; bytes: Uint8Array }> {
  const disk = new MemoryDisk();
  await disk.mkdir("/d");
  const superblock = await Superblock.create(disk, "/d/superblock", state);
  await superblock.write({ ...state, view: 8, commit: 1300 });
  await superblock.close();
  await disk.syncDirectory("/d");
  return { disk, bytes: disk.bytes("/d/superblock") };
}

test("the superblock round-trips every field and picks the highest sequence", async () => {
  const { disk } = await twoWrites();
  const { superblock, report } = await Superblock.open(disk, "/d/superblock");
  assert.equal(report.sequence, 2);
  assert.deepEqual(report.badCopies, []);
  assert.deepEqual(superblock.state, { ...state, view: 8, commit: 1300 });
});

test("every combination of corrupt copies short of all of them still opens; all corrupt is a clear error", async () => {
  const { bytes } = await twoWrites();
  for (let mask = 1; mask < 1 << superblockCopyCount; mask++) {
    const copy = bytes.slice();
    for (let i = 0; i < superblockCopyCount; i++) {
      if ((mask & (1 << i)) !== 0) copy[i * superblockCopySize + 40 + i]! ^= 0x10;
    }
    if (mask === (1 << superblockCopyCount) - 1) {
      assert.throws(() => chooseSuperblockCopy("/d/superblock", copy), CorruptSuperblockError);
      continue;
    }
    const { state: chosen, report } = chooseSuperblockCopy("/d/superblock", copy);
    assert.equal(chosen.commit, 1300, `mask ${mask}`);
    assert.equal(report.badCopies.length, [0, 1, 2, 3].filter((i) => (mask & (1 << i)) !== 0).length);
  }
});

test("a write torn at any sector leaves either the old or the new state, never neither", async () => {
  for (let seed = 0; seed < 40; seed++) {
    const disk = new MemoryDisk();
    await disk.mkdir("/d");
    const superblock = await Superblock.create(disk, "/d/superblock", state);
    await disk.syncDirectory("/d");
    if (seed % 2 === 0) {
      await superblock.write({ ...state, commit: 2000 }); // completes: both halves synced
    } else {
      // Interrupted: the new copies are written but not synced, and the crash tears them.
      const file = await disk.open("/d/superblock", { create: false });
      const copies = [0, 1, 2, 3].map((i) => encodeSuperblockCopy({ ...state, commit: 2000 }, 2, i));
      await file.write(0, copies, { sync: false });
    }
    disk.crash({ tear: seededRandom(seed) });
    const { superblock: after } = await Superblock.open(disk, "/d/superblock");
    assert.ok(after.state.commit === 1234 || after.state.commit === 2000, `seed ${seed}`);
    if (seed % 2 === 0) assert.equal(after.state.commit, 2000);
  }
});

test("a copy from a newer format is refused with FormatVersionError", async () => {
  const { bytes } = await twoWrites();
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  view.setUint32(24, 9, true);
  copy.set(checksum(copy.subarray(16, superblockCopySize)), 0);
  assert.throws(() => chooseSuperblockCopy("/d/superblock", copy), FormatVersionError);
});

test("a copy written to another copy's slot (misdirected) is not trusted", async () => {
  const { bytes } = await twoWrites();
  const copy = bytes.slice();
  copy.set(bytes.subarray(0, superblockCopySize), superblockCopySize); // copy 0's bytes in slot 1
  const { report } = chooseSuperblockCopy("/d/superblock", copy);
  assert.deepEqual(report.badCopies, [{ copy: 1, problem: "copy" }]);
});
