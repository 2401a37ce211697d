import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checksumEqual } from "../src/codec/checksum.ts";
import { CheckpointStore } from "../src/storage/checkpoint_store.ts";
import { MemoryDisk } from "../src/storage/disk_memory.ts";
import { formatDataDir, openDataDir } from "../src/storage/data_dir.ts";
import { StorageDriver } from "../src/node/storage_driver.ts";
import type { StorageAction } from "../src/vsr/replica_api.ts";
import { chain, cluster } from "./storage_helpers.ts";

/** A storage driver on a fresh memory data dir, recording completions in order. */
async function driver() {
  const disk = new MemoryDisk();
  await formatDataDir(disk, "/d", { cluster, replica: 0, replicaCount: 3 });
  const dataDir = await openDataDir(disk, "/d", {});
  const completed: number[] = [];
  const timed: string[] = [];
  let failure: unknown = null;
  const storage = new StorageDriver({
    dataDir,
    checkpoints: new CheckpointStore(disk, "/d/checkpoints", cluster),
    done: (id, result) => {
      assert.equal(result.ok, true);
      completed.push(id);
    },
    fatal: (error) => (failure = error),
    timer: (kind) => timed.push(kind),
  });
  return { dataDir, storage, completed, timed, failure: () => failure };
}

const write = (id: number, e: { header: Uint8Array; body: Uint8Array }, op: number): StorageAction =>
  ({ kind: "write_entry", id, op, header: e.header, body: e.body });

describe("storage driver", () => {
  test("every action completes once, in the order handed over, with appends around serial actions and a truncate", async () => {
    const { dataDir, storage, completed, failure } = await driver();
    const entries = chain(12, 50);
    const other = chain(4, 60, entries[6]!.header, 8); // ops 8..11 of another log, after op 7
    const superblock = { view: 1, logView: 1, commit: 0, checkpointOp: 0 };
    let id = 1;
    const actions: StorageAction[] = [];
    for (let op = 1; op <= 5; op++) actions.push(write(id++, entries[op - 1]!, op));
    actions.push({ kind: "write_superblock", id: id++, superblock });
    for (let op = 6; op <= 10; op++) actions.push(write(id++, entries[op - 1]!, op));
    actions.push({ kind: "write_superblock", id: id++, superblock: { ...superblock, commit: 3 } });
    actions.push(write(id++, entries[10]!, 11));
    // Handed over in three turns, as a replica does: what a turn hands over must not wait
    // for what the journal is still writing, but its order must hold.
    storage.run(actions.slice(0, 4));
    storage.run(actions.slice(4, 9));
    storage.run(actions.slice(9));
    // A divergent suffix: cut after op 7, append the other log's ops 8..11.
    const tail: StorageAction[] = [{ kind: "truncate", id: id++, op: 7 }];
    for (let i = 0; i < other.length; i++) tail.push(write(id++, other[i]!, 8 + i));
    storage.run(tail);
    await storage.drain();
    assert.equal(failure(), null);
    assert.deepEqual(completed, Array.from({ length: id - 1 }, (_, i) => i + 1), "each once, in order");
    assert.equal(dataDir.journal.opHead, 11);
    for (let op = 1; op <= 11; op++) {
      const read = await dataDir.journal.read(op);
      assert.ok(read.ok);
      const expected = op <= 7 ? entries[op - 1]! : other[op - 8]!;
      assert.ok(checksumEqual(read.header.subarray(0, 16), expected.header.subarray(0, 16)), `op ${op} holds the entry written last`);
    }
    await dataDir.close();
  });

  test("appends of one journal batch complete together and are timed once", async () => {
    const { storage, completed, timed } = await driver();
    const entries = chain(40, 30);
    storage.run(entries.map((e, i) => write(i + 1, e, i + 1)));
    await storage.drain();
    assert.deepEqual(completed, Array.from({ length: 40 }, (_, i) => i + 1));
    assert.ok(timed.length >= 1 && timed.length < 40, `one timing per journal batch, not per entry (${timed.length})`);
    assert.ok(timed.every((kind) => kind === "write_entry"));
  });

  test("a serial action waits for the appends handed over before it", async () => {
    const { dataDir, storage, completed } = await driver();
    const entries = chain(6, 30);
    const order: string[] = [];
    const realWrite = dataDir.superblock.write.bind(dataDir.superblock);
    dataDir.superblock.write = async (state) => {
      order.push(`superblock after op ${dataDir.journal.opHead}`);
      return await realWrite(state);
    };
    storage.run([
      write(1, entries[0]!, 1), write(2, entries[1]!, 2),
      { kind: "write_superblock", id: 3, superblock: { view: 0, logView: 0, commit: 0, checkpointOp: 0 } },
      write(4, entries[2]!, 3),
      { kind: "write_superblock", id: 5, superblock: { view: 0, logView: 0, commit: 1, checkpointOp: 0 } },
      write(6, entries[3]!, 4),
    ]);
    await storage.drain();
    assert.deepEqual(order, ["superblock after op 2", "superblock after op 3"]);
    assert.deepEqual(completed, [1, 2, 3, 4, 5, 6]);
    await dataDir.close();
  });
});
