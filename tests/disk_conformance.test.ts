/**
 * One conformance suite for every Disk backend: the portable node:fs disk, the in-memory
 * disk with its faults off, and the native io_uring and direct-sync disks when the shim
 * loads and io_uring is allowed on this machine.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes } from "../src/codec/bytes.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { directBlockBytes, DiskError } from "../src/storage/disk.ts";
import type { Disk } from "../src/storage/disk.ts";
import { MemoryDisk } from "../src/storage/disk_memory.ts";
import { PortableDisk } from "../src/storage/disk_portable.ts";
import { createDirectSyncDisk, createUringDisk, probeUring } from "../src/storage/disk_uring.ts";

interface Backend {
  readonly name: string;
  make(): Promise<{ disk: Disk; root: string; cleanup: () => void }>;
}

function onTempDir(name: string, create: () => Disk | Promise<Disk>): Backend {
  return {
    name,
    async make() {
      const root = mkdtempSync(join(tmpdir(), `chronon-disk-${name}-`));
      const disk = await create();
      return { disk, root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
    },
  };
}

/** The native backends (io_uring, and the ring-less direct-sync one) where they work here. */
async function nativeBackends(): Promise<Backend[]> {
  const out: Backend[] = [];
  if ((await probeUring()).ok) {
    out.push(onTempDir("uring", () => createUringDisk()));
    // Every write through the ring, linked to its fdatasync (the path for writes over 1 MiB).
    out.push(onTempDir("uring-linked", () => createUringDisk({ inlineWriteBytesMax: 0 })));
  }
  try {
    await (await createDirectSyncDisk()).close();
    out.push(onTempDir("direct-sync", () => createDirectSyncDisk()));
  } catch {
    // no shim built here: the portable and memory backends still run
  }
  return out;
}

const backends: Backend[] = [
  onTempDir("portable", () => new PortableDisk()),
  {
    name: "memory",
    make() {
      const disk = new MemoryDisk();
      return disk.mkdir("/root").then(() => ({ disk, root: "/root", cleanup: () => {} }));
    },
  },
  {
    // Direct files padded to a block, as on the io_uring backend.
    name: "memory-padded",
    make() {
      const disk = new MemoryDisk();
      disk.padDirectFiles = true;
      return disk.mkdir("/root").then(() => ({ disk, root: "/root", cleanup: () => {} }));
    },
  },
];
backends.push(...await nativeBackends());

const bytes = (...values: number[]) => new Uint8Array(values);

for (const backend of backends) {
  describe(`Disk conformance: ${backend.name}`, () => {
    const withDisk = (name: string, body: (disk: Disk, root: string) => Promise<void>) =>
      test(name, async () => {
        const { disk, root, cleanup } = await backend.make();
        try {
          await body(disk, root);
        } finally {
          await disk.close();
          cleanup();
        }
      });

    withDisk("opening a missing file without create fails with ENOENT", async (disk, root) => {
      await assert.rejects(disk.open(`${root}/missing`, { create: false }), (e: unknown) => e instanceof DiskError && e.code === "ENOENT");
      assert.equal(await disk.exists(`${root}/missing`), false);
    });

    withDisk("readInto fills the caller's buffer, small and bulk (over 1 MiB), short at end of file", async (disk, root) => {
      const file = await disk.open(`${root}/big`, { create: true });
      const data = new Uint8Array(3 * 1024 * 1024 + 77);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
      await file.write(0, [data], { sync: true });
      if (file.readInto === undefined) {
        await file.close();
        return; // optional in the interface; every backend of this project has it
      }
      const small = new Uint8Array(100);
      assert.equal(await file.readInto(12345, small), 100);
      assert.deepEqual(small, data.subarray(12345, 12445));
      const bulk = new Uint8Array(2 * 1024 * 1024);
      assert.equal(await file.readInto(1024 * 1024 + 3, bulk), bulk.length);
      assert.deepEqual(bulk, data.subarray(1024 * 1024 + 3, 3 * 1024 * 1024 + 3));
      assert.equal(await file.readInto(data.length - 10, bulk), 10, "short at end of file");
      assert.deepEqual(bulk.subarray(0, 10), data.subarray(data.length - 10));
      assert.equal(await file.readInto(data.length + 5, small), 0);
      await file.close();
    });

    withDisk("a write of megabytes in several buffers lands whole, at an unaligned offset (a checkpoint's pieces)", async (disk, root) => {
      const file = await disk.open(`${root}/cp`, { create: true });
      const sizes = [100, 2 * 1024 * 1024 + 5, 0, 1024 * 1024 - 3, 700_001, 64];
      const buffers = sizes.map((size, k) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + k * 7) & 0xff));
      const joined = concatBytes(buffers);
      await file.write(4097, buffers, { sync: true });
      assert.equal(await file.size(), 4097 + joined.length);
      assert.deepEqual(await file.read(4097, joined.length), joined);
      assert.deepEqual(await file.read(0, 4097), new Uint8Array(4097), "nothing before the offset");
      await file.close();
    });

    withDisk("buffers are written back to back and read back; reads past the end are short", async (disk, root) => {
      const file = await disk.open(`${root}/f`, { create: true });
      assert.equal(await file.size(), 0);
      await file.write(0, [bytes(1, 2, 3), bytes(), bytes(4, 5)], { sync: true });
      await file.write(10, [bytes(9)], { sync: false });
      await file.sync();
      assert.equal(await file.size(), 11);
      assert.deepEqual(await file.read(0, 5), bytes(1, 2, 3, 4, 5));
      assert.deepEqual(await file.read(5, 5), bytes(0, 0, 0, 0, 0), "a hole reads as zeros");
      assert.deepEqual(await file.read(9, 100), bytes(0, 9));
      assert.deepEqual(await file.read(50, 10), bytes());
      await file.write(1, [bytes(7, 7)], { sync: true });
      assert.deepEqual(await file.read(0, 4), bytes(1, 7, 7, 4));
      await file.close();
      const again = await disk.open(`${root}/f`, { create: false });
      assert.deepEqual(await again.read(0, 11), bytes(1, 7, 7, 4, 5, 0, 0, 0, 0, 0, 9));
      await again.close();
    });

    withDisk("a large write of many buffers lands whole and in order", async (disk, root) => {
      const file = await disk.open(`${root}/big`, { create: true });
      const buffers: Uint8Array[] = [];
      for (let i = 0; i < 1500; i++) buffers.push(new Uint8Array(2048).fill(i & 0xff));
      await file.write(4096, buffers, { sync: true });
      assert.equal(await file.size(), 4096 + 1500 * 2048);
      const back = await file.read(4096, 1500 * 2048);
      for (let i = 0; i < 1500; i += 97) assert.equal(back[i * 2048 + 5], i & 0xff, `buffer ${i}`);
      await file.close();
    });

    withDisk("truncate shrinks and grows the file", async (disk, root) => {
      const file = await disk.open(`${root}/t`, { create: true });
      await file.write(0, [new Uint8Array(100).fill(1)], { sync: true });
      await file.truncate(40);
      assert.equal(await file.size(), 40);
      assert.equal((await file.read(0, 100)).length, 40);
      await file.truncate(60);
      assert.deepEqual(await file.read(39, 3), bytes(1, 0, 0));
      await file.close();
    });

    withDisk("directories: mkdir with parents, list sorted, exists, remove, syncDirectory", async (disk, root) => {
      await disk.mkdir(`${root}/a/b`);
      assert.equal(await disk.exists(`${root}/a/b`), true);
      for (const name of ["c", "a", "b"]) await (await disk.open(`${root}/a/b/${name}`, { create: true })).close();
      assert.deepEqual(await disk.list(`${root}/a/b`), ["a", "b", "c"]);
      await disk.remove(`${root}/a/b/b`);
      await disk.syncDirectory(`${root}/a/b`);
      assert.deepEqual(await disk.list(`${root}/a/b`), ["a", "c"]);
      assert.equal(await disk.exists(`${root}/a/b/b`), false);
      await assert.rejects(disk.remove(`${root}/a/b/b`), DiskError);
    });

    withDisk("a direct file: unaligned synced appends, a rewrite across a block edge, reopen, truncate; past the data only under a block of zeros", async (disk, root) => {
      const path = `${root}/direct`;
      let expected = new Uint8Array(0);
      let fill = 1;
      const place = (offset: number, length: number) => {
        const chunk = new Uint8Array(length);
        for (let i = 0; i < length; i++) chunk[i] = (fill * 31 + i) % 251 + 1; // never zero
        fill++;
        if (offset + length > expected.length) {
          const grown = new Uint8Array(offset + length);
          grown.set(expected);
          expected = grown;
        }
        expected.set(chunk, offset);
        return chunk;
      };
      const check = async (file: Awaited<ReturnType<Disk["open"]>>, label: string) => {
        const size = await file.size();
        assert.ok(size >= expected.length, `${label}: size ${size} holds the data (${expected.length})`);
        const all = await file.read(0, size);
        assert.deepEqual(all.subarray(0, expected.length), expected, `${label}: data`);
        if (size > expected.length) {
          assert.ok(size % directBlockBytes === 0 && size - expected.length < directBlockBytes, `${label}: ${size - expected.length} bytes past the data`);
          assert.ok(all.subarray(expected.length).every((b) => b === 0), `${label}: padding is zeros`);
        }
      };
      let file = await disk.open(path, { create: true, direct: true });
      for (const length of [100, 5000, 1, 4096 - 5101 % 4096, 4096, 3000, 9000, 17]) {
        const chunk = place(expected.length, length);
        // Split in two buffers: the backend must stage them back to back.
        await file.write(expected.length - length, [chunk.subarray(0, length >> 1), chunk.subarray(length >> 1)], { sync: true });
        await check(file, `append of ${length}`);
      }
      await file.write(4000, [place(4000, 300)], { sync: true }); // inside the data, across a block edge
      await check(file, "rewrite at 4000");
      await file.write(8190, [place(8190, 4)], { sync: true }); // inside one block, neither end aligned
      await check(file, "rewrite at 8190");
      await file.close();
      file = await disk.open(path, { create: false, direct: true });
      await file.write(expected.length, [place(expected.length, 777)], { sync: true }); // the first block is read back
      await check(file, "append after reopen");
      await file.truncate(expected.length - 50);
      expected = expected.slice(0, expected.length - 50);
      await file.write(expected.length, [place(expected.length, 200)], { sync: true });
      await check(file, "append after truncate");
      await file.close();
    });

    withDisk("a closed file refuses further calls", async (disk, root) => {
      const file = await disk.open(`${root}/c`, { create: true });
      await file.close();
      await assert.rejects(file.read(0, 1), DiskError);
      await assert.rejects(file.write(0, [bytes(1)], { sync: true }), DiskError);
    });
  });
}

test("the memory disk loses unsynced writes and files whose directory was never synced on a crash", async () => {
  const disk = new MemoryDisk();
  await disk.mkdir("/d");
  const file = await disk.open("/d/f", { create: true });
  await file.write(0, [bytes(1, 2)], { sync: true });
  await disk.syncDirectory("/d");
  await file.write(2, [bytes(3, 4)], { sync: false });
  await (await disk.open("/d/new", { create: true })).close();
  disk.crash();
  assert.deepEqual(disk.bytes("/d/f"), bytes(1, 2));
  assert.equal(await disk.exists("/d/new"), false);
  await assert.rejects(file.read(0, 1), DiskError, "handles from before the crash are dead");
});

test("the memory disk's injected faults: failed sync, bit flip, misdirected write", async () => {
  const disk = new MemoryDisk();
  await disk.mkdir("/d");
  const file = await disk.open("/d/f", { create: true });
  disk.failNextSync("/d/f");
  await assert.rejects(file.write(0, [bytes(1)], { sync: true }), (e: unknown) => e instanceof DiskError && e.code === "EIO");
  assert.equal(await file.size(), 0, "the failed sync dropped the dirty data");
  await file.write(0, [bytes(1, 2, 3)], { sync: true });
  disk.flipBit("/d/f", 1, 7);
  assert.deepEqual(await file.read(0, 3), bytes(1, 130, 3));
  disk.misdirectNextWrite("/d/f", 8);
  await file.write(0, [bytes(5)], { sync: true });
  assert.deepEqual(await file.read(0, 9), bytes(1, 130, 3, 0, 0, 0, 0, 0, 5));
});
