import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointStore, checkpointFileName } from "../src/storage/checkpoint_store.ts";
import { PortableDisk } from "../src/storage/disk_portable.ts";

const cluster = new Uint8Array(16).fill(3);

async function withStore(run: (store: CheckpointStore, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "chronon-chk-"));
  const disk = new PortableDisk();
  try {
    await run(new CheckpointStore(disk, dir, cluster), dir);
  } finally {
    await disk.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the newest valid checkpoint is read back byte for byte, and only two are kept", async () => {
  await withStore(async (store) => {
    for (const op of [100, 200, 300]) await store.write(op, new Uint8Array([op & 0xff, 1, 2, 3]));
    assert.deepEqual(await store.list(), [200, 300]);
    const { latest, faults } = await store.latest();
    assert.equal(faults.length, 0);
    assert.equal(latest?.op, 300);
    assert.deepEqual(latest?.bytes, new Uint8Array([300 & 0xff, 1, 2, 3]));
  });
});

test("a corrupt newest checkpoint is named and the previous one is used", async () => {
  await withStore(async (store, dir) => {
    await store.write(10, new Uint8Array(1000).fill(1));
    await store.write(20, new Uint8Array(1000).fill(2));
    const path = join(dir, checkpointFileName(20));
    const bytes = readFileSync(path);
    bytes[500] = bytes[500]! ^ 0x10;
    writeFileSync(path, bytes);
    const { latest, faults } = await store.latest();
    assert.equal(latest?.op, 10);
    assert.equal(faults.length, 1);
    assert.match(faults[0]!.reason, /body checksum/);
  });
});

test("a torn checkpoint and one of another cluster are refused with a reason", async () => {
  await withStore(async (store, dir) => {
    await store.write(5, new Uint8Array(4096).fill(9));
    const path = join(dir, checkpointFileName(5));
    writeFileSync(path, readFileSync(path).subarray(0, 2000));
    const torn = await store.read(5);
    assert.ok(!("bytes" in torn) && /torn/.test(torn.reason));

    const other = new CheckpointStore(new PortableDisk(), dir, new Uint8Array(16).fill(4));
    await store.write(6, new Uint8Array([1]));
    const foreign = await other.read(6);
    assert.ok(!("bytes" in foreign) && /another cluster/.test(foreign.reason));
  });
});
