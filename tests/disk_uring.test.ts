/**
 * The io_uring Disk backend beyond the shared conformance suite: many buffers in one
 * write, concurrent writes to two files, reopen after close, the direct-sync variant,
 * and the selector's modes and notice. Skips (naming why) only when io_uring is
 * unavailable; CHRONON_REQUIRE_URING=1 turns that into a failure.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import type { Disk } from "../src/storage/disk.ts";
import { directBlockBytes, DiskError } from "../src/storage/disk.ts";
import { createDirectSyncDisk, createUringDisk, directBlockingBytesMaxDefault, probeUring } from "../src/storage/disk_uring.ts";
import { DiskSelectError, diskMode, selectDisk } from "../src/storage/disk_select.ts";

const probe = await probeUring();
const skip: string | false = probe.ok ? false : `io_uring unavailable: ${probe.reason}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "chronon-uring-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let dirCount = 0;

test("CHRONON_REQUIRE_URING=1 means the uring backend is available", () => {
  if (process.env.CHRONON_REQUIRE_URING === "1") assert.equal(skip, false, String(skip));
});

const variants: [string, string, () => Promise<Disk>, string | false][] = [
  ["uring", "uring", () => createUringDisk(), skip],
  // Every write through the ring, linked to its fdatasync (the path for writes over 1 MiB).
  ["uring, writes linked to the fdatasync", "uring", () => createUringDisk({ inlineWriteBytesMax: 0 }), skip],
  // Journal (direct) writes of every size through the ring, as before directBlockingBytesMax.
  ["uring, direct writes through the ring", "uring", () => createUringDisk({ directBlockingBytesMax: 0 }), skip],
  ["direct-sync", "direct-sync", () => createDirectSyncDisk(), false],
];

for (const [label, name, make, skipReason] of variants) {
  describe(`native disk: ${label}`, () => {
    const withDisk = (title: string, body: (disk: Disk, dir: string) => Promise<void>) =>
      test(title, { skip: skipReason }, async () => {
        const disk = await make();
        const dir = path.join(root, `d${dirCount++}`);
        try {
          assert.equal(disk.name, name);
          await disk.mkdir(dir);
          await body(disk, dir);
        } finally {
          await disk.close();
        }
      });

    withDisk("a file opened direct writes O_DIRECT wherever the file system allows it (whole blocks, zero padding); otherwise the page cache", async (disk, dir) => {
      const probePath = `${dir}/probe`;
      fs.writeFileSync(probePath, "");
      let directAllowed = true;
      try {
        fs.closeSync(fs.openSync(probePath, fs.constants.O_RDWR | fs.constants.O_DIRECT));
      } catch {
        directAllowed = false;
      }
      const file = await disk.open(`${dir}/direct`, { create: true, direct: true });
      assert.equal((file as { direct?: boolean }).direct, directAllowed, `O_DIRECT allowed here: ${directAllowed}`);
      await file.write(0, [new Uint8Array(1000).fill(7)], { sync: true });
      assert.equal(await file.size(), directAllowed ? directBlockBytes : 1000);
      await file.close();
      const plain = await disk.open(`${dir}/plain`, { create: true });
      assert.equal((plain as { direct?: boolean }).direct, false, "a file not opened direct");
      await plain.close();
    });

    withDisk("a batch of 500 buffers is one write, lands in order, and survives reopen", async (disk, dir) => {
      const file = await disk.open(`${dir}/seg`, { create: true });
      const buffers: Uint8Array[] = [];
      for (let i = 0; i < 500; i++) buffers.push(new Uint8Array(100 + (i % 7)).fill(i & 0xff));
      const total = buffers.reduce((n, b) => n + b.length, 0);
      await file.write(7, buffers, { sync: true });
      for (const buffer of buffers) buffer.fill(0); // the caller may reuse its buffers now
      assert.equal(await file.size(), 7 + total);
      await file.close();
      await assert.rejects(file.size(), DiskError);
      const again = await disk.open(`${dir}/seg`, { create: false });
      const back = await again.read(7, total + 50);
      assert.equal(back.length, total, "short read at end of file");
      let at = 0;
      for (let i = 0; i < 500; i++) {
        const size = 100 + (i % 7);
        assert.ok(back.subarray(at, at + size).every((b) => b === (i & 0xff)), `buffer ${i}`);
        at += size;
      }
      await again.close();
    });

    withDisk("concurrent synced writes to two files and to one file all land", async (disk, dir) => {
      const a = await disk.open(`${dir}/a`, { create: true });
      const b = await disk.open(`${dir}/b`, { create: true });
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 40; i++) {
        writes.push(a.write(i * 64, [new Uint8Array(64).fill(i)], { sync: true }));
        writes.push(b.write(i * 32, [new Uint8Array(16).fill(i), new Uint8Array(16).fill(i + 1)], { sync: i % 2 === 0 }));
      }
      await Promise.all(writes);
      await b.sync();
      assert.equal(await a.size(), 40 * 64);
      assert.equal(await b.size(), 40 * 32);
      const backA = await a.read(0, 40 * 64);
      const backB = await b.read(0, 40 * 32);
      for (let i = 0; i < 40; i++) {
        assert.equal(backA[i * 64 + 63], i);
        assert.equal(backB[i * 32], i);
        assert.equal(backB[i * 32 + 31], i + 1);
      }
      await a.close();
      await b.close();
    });

    withDisk("truncate, list, remove and errors carry errno names", async (disk, dir) => {
      const file = await disk.open(`${dir}/t`, { create: true });
      await file.write(0, [new Uint8Array(5000).fill(3)], { sync: false });
      await file.truncate(100);
      assert.equal(await file.size(), 100);
      assert.deepEqual(await file.read(98, 10), new Uint8Array([3, 3]));
      await file.close();
      assert.deepEqual(await disk.list(dir), ["t"]);
      await disk.remove(`${dir}/t`);
      await disk.syncDirectory(dir);
      assert.deepEqual(await disk.list(dir), []);
      await assert.rejects(disk.open(`${dir}/t`, { create: false }), (e: unknown) => e instanceof DiskError && e.code === "ENOENT");
    });

    withDisk("close() of the disk closes files left open", async (disk, dir) => {
      const file = await disk.open(`${dir}/left`, { create: true });
      await file.write(0, [new Uint8Array([1])], { sync: true });
      await disk.close();
      await assert.rejects(file.read(0, 1), DiskError);
    });
  });
}

test("a direct file's synced writes up to directBlockingBytesMax block in one pwrite; larger ones, and every one at 0, go through the ring", { skip }, async () => {
  const probe = path.join(root, `probe-${dirCount++}`);
  let directAllowed = true;
  try {
    fs.closeSync(fs.openSync(probe, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT));
  } catch {
    directAllowed = false;
  }
  if (!directAllowed) return; // the file system refuses O_DIRECT: covered by the page-cache test below
  for (const [blockingMax, smallOnRing] of [[undefined, false], [0, true]] as const) {
    const disk = await createUringDisk(blockingMax === undefined ? {} : { directBlockingBytesMax: blockingMax });
    const dir = path.join(root, `d${dirCount++}`);
    try {
      await disk.mkdir(dir);
      const file = await disk.open(`${dir}/j`, { create: true, direct: true });
      const chains = () => (disk as unknown as { ringChains: number }).ringChains;
      const small = new Uint8Array(1000).fill(7);
      const large = Uint8Array.from({ length: directBlockingBytesMaxDefault + 5000 }, (_, i) => i & 0xff);
      const before = chains();
      await file.write(0, [small], { sync: true });
      assert.equal(chains() > before, smallOnRing, `a ${small.length}-byte journal write ${smallOnRing ? "goes through" : "skips"} the ring (directBlockingBytesMax ${blockingMax ?? "default"})`);
      const beforeLarge = chains();
      await file.write(small.length, [large], { sync: true });
      assert.ok(chains() > beforeLarge, "a write over the bound goes through the ring");
      assert.deepEqual(await file.read(0, small.length), small);
      assert.deepEqual(await file.read(small.length, large.length), large);
      await file.close();
    } finally {
      await disk.close();
    }
  }
});

test("directWrites: false, or a file system that refuses O_DIRECT (tmpfs), gives page-cache writes with exact sizes", { skip }, async () => {
  const cases: [string, () => Promise<Disk>, string][] = [["directWrites: false", () => createUringDisk({ directWrites: false }), root]];
  if (fs.existsSync("/dev/shm")) {
    let refuses = false;
    const probePath = fs.mkdtempSync("/dev/shm/chronon-probe-");
    try {
      fs.closeSync(fs.openSync(`${probePath}/f`, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT));
    } catch {
      refuses = true;
    } finally {
      fs.rmSync(probePath, { recursive: true, force: true });
    }
    if (refuses) cases.push(["/dev/shm refuses O_DIRECT", () => createUringDisk(), "/dev/shm"]);
  }
  for (const [label, make, base] of cases) {
    const dir = fs.mkdtempSync(path.join(base, "chronon-nodirect-"));
    const disk = await make();
    try {
      const file = await disk.open(`${dir}/f`, { create: true, direct: true });
      assert.equal((file as { direct?: boolean }).direct, false, label);
      await file.write(0, [new Uint8Array(1000).fill(7)], { sync: true });
      await file.write(1000, [new Uint8Array(10).fill(8)], { sync: true });
      assert.equal(await file.size(), 1010, label);
      assert.deepEqual(await file.read(995, 10), new Uint8Array([7, 7, 7, 7, 7, 8, 8, 8, 8, 8]), label);
      await file.close();
    } finally {
      await disk.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

describe("selectDisk", () => {
  test("CHRONON_IO overrides auto only, and bad values are named", () => {
    assert.equal(diskMode("auto", undefined), "auto");
    assert.equal(diskMode("auto", "sync"), "sync");
    assert.equal(diskMode("auto", "uring"), "uring");
    assert.equal(diskMode("sync", "uring"), "sync");
    assert.equal(diskMode("auto", "direct"), "direct");
    assert.throws(() => diskMode("auto", "fast"), (e: unknown) => e instanceof DiskSelectError && /CHRONON_IO=fast/.test(e.message));
  });

  test("direct gives the ring-less native backend without a notice, or an error naming why it cannot", async () => {
    const lines: string[] = [];
    try {
      const disk = await selectDisk("direct", (line) => lines.push(line));
      assert.equal(disk.name, "direct-sync");
      await disk.close();
    } catch (error) {
      assert.ok(error instanceof DiskSelectError && /CHRONON_IO=direct needs the native layer/.test(error.message), String(error));
      assert.notEqual(process.env.CHRONON_REQUIRE_URING, "1", "with the shim required, the native layer must load");
    }
    assert.deepEqual(lines, []);
  });

  test("sync gives the portable backend without a notice", async () => {
    const lines: string[] = [];
    const disk = await selectDisk("sync", (line) => lines.push(line));
    assert.equal(disk.name, "portable");
    assert.deepEqual(lines, []);
    await disk.close();
  });

  test("auto gives uring when available, else portable with exactly one notice naming the reason", async () => {
    const saved = process.env.CHRONON_IO;
    delete process.env.CHRONON_IO;
    try {
      const lines: string[] = [];
      const disk = await selectDisk("auto", (line) => lines.push(line));
      if (probe.ok) {
        assert.equal(disk.name, "uring");
        assert.deepEqual(lines, []);
      } else {
        assert.equal(disk.name, "portable");
        assert.equal(lines.length, 1);
        assert.ok(lines[0]!.includes(probe.reason));
      }
      await disk.close();
    } finally {
      if (saved !== undefined) process.env.CHRONON_IO = saved;
    }
  });

  test("uring when unavailable is an error that says why, never a silent fallback", async () => {
    const saved = process.env.CHRONON_URING_SHIM;
    // A fresh shim path makes the ring unavailable even where io_uring works.
    process.env.CHRONON_URING_SHIM = path.join(root, "missing-shim.so");
    try {
      await assert.rejects(selectDisk("uring", () => assert.fail("no notice expected")), (e: unknown) => e instanceof DiskSelectError && /no io_uring shim built/.test(e.message));
      const lines: string[] = [];
      const disk = await selectDisk("auto", (line) => lines.push(line));
      if (process.env.CHRONON_IO === undefined || process.env.CHRONON_IO === "auto") {
        assert.equal(disk.name, "portable");
        assert.equal(lines.length, 1);
        assert.match(lines[0]!, /^chronon: io_uring unavailable \(no io_uring shim built/);
      }
      await disk.close();
    } finally {
      if (saved === undefined) delete process.env.CHRONON_URING_SHIM;
      else process.env.CHRONON_URING_SHIM = saved;
    }
  });
});
