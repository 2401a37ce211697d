/**
 * The native-I/O layer on whichever FFI the running runtime selects: koffi under node,
 * bun:ffi under bun, Deno.dlopen under deno. Ring tests skip only when the shim is not
 * built; with CHRONON_REQUIRE_URING=1 (set by CI when liburing is installed) the shim
 * must be there and io_uring must work.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { IoError, loadNativeIo } from "../ffi/mod.ts";
import type { Ring } from "../ffi/mod.ts";
import { ringRefused, shimPath } from "../ffi/platform.ts";

const io = await loadNativeIo();
const expectedBackend = (globalThis as { Bun?: unknown }).Bun !== undefined
  ? "bun:ffi"
  : (globalThis as { Deno?: unknown }).Deno !== undefined
  ? "Deno.dlopen"
  : "koffi";
const probe = io.openRing(8);
if (probe.ok) probe.ring.close();
const ringSkip: string | false = probe.ok ? false : `io_uring unavailable: ${probe.reason}`;

const directory = fs.mkdtempSync(path.join(os.tmpdir(), "chronon-ffi-"));
process.on("exit", () => fs.rmSync(directory, { recursive: true, force: true }));
let fileCount = 0;
const f = io.flags;
const openNew = (extra = 0) => io.open(path.join(directory, `f${fileCount++}`), f.O_RDWR | f.O_CREAT | f.O_CLOEXEC | extra, 0o644);

/**
 * Collects `count` completions. The eventfd counts completions posted since the last wait,
 * so everything ready is reaped (in small slices, to exercise that) before waiting again.
 */
async function completions(ring: Ring, count: number): Promise<Map<number, number>> {
  const results = new Map<number, number>();
  while (results.size < count) {
    const ready = ring.reap(16);
    for (const c of ready) results.set(c.tag, c.result);
    if (ready.length === 0) await ring.waitCompletions();
  }
  return results;
}

describe(`native io (${io.backend})`, () => {
  test("the runtime picks its own FFI", () => {
    assert.equal(io.backend, expectedBackend);
  });

  test("CHRONON_REQUIRE_URING=1 means the shim is built and io_uring works", () => {
    if (process.env.CHRONON_REQUIRE_URING !== "1") return;
    assert.ok(fs.existsSync(shimPath()), `shim missing at ${shimPath()}`);
    assert.equal(ringSkip, false, String(ringSkip));
  });

  test("pwrite, pread, fileSize, ftruncate, fdatasync, fsync on a plain Uint8Array", () => {
    const fd = openNew();
    try {
      assert.equal(io.pwrite(fd, new Uint8Array([1, 2, 3, 4, 5]), 10), 5);
      io.fdatasync(fd);
      assert.equal(io.fileSize(fd), 15);
      const back = new Uint8Array(20);
      assert.equal(io.pread(fd, back, 8), 7, "short read at end of file");
      assert.deepEqual(back.subarray(0, 7), new Uint8Array([0, 0, 1, 2, 3, 4, 5]));
      io.ftruncate(fd, 12);
      io.fsync(fd);
      assert.equal(io.fileSize(fd), 12);
      assert.equal(io.pread(fd, back, 12), 0, "end of file reads 0");
    } finally {
      io.close(fd);
    }
  });

  test("preadOffThread reads into an ordinary buffer off the event loop; 0 at end of file; a bad descriptor rejects", async () => {
    const fd = openNew();
    try {
      const data = new Uint8Array(3 * 1024 * 1024 + 5);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
      let written = 0;
      while (written < data.length) written += io.pwrite(fd, data.subarray(written), written);
      const target = new Uint8Array(2 * 1024 * 1024);
      let done = 0;
      while (done < target.length) done += await io.preadOffThread(fd, target.subarray(done), 1000 + done);
      assert.deepEqual(target, data.subarray(1000, 1000 + target.length));
      assert.equal(await io.preadOffThread(fd, target, data.length), 0, "end of file reads 0");
    } finally {
      io.close(fd);
    }
    await assert.rejects(io.preadOffThread(fd, new Uint8Array(1 << 20), 0), (e: unknown) => e instanceof IoError && e.operation === "pread");
  });

  test("a failed call throws IoError with the errno name", () => {
    const fd = openNew();
    io.close(fd);
    assert.throws(() => io.close(fd), (e: unknown) => e instanceof IoError && e.code === "EBADF" && e.errno === 9 && e.operation === "close");
    assert.throws(() => io.pwrite(fd, new Uint8Array(1), 0), (e: unknown) => e instanceof IoError && e.code === "EBADF");
    assert.throws(() => io.open(path.join(directory, "no", "such"), f.O_RDWR, 0), (e: unknown) => e instanceof IoError && e.code === "ENOENT");
    const readOnly = io.open(path.join(directory, "ro"), f.O_RDONLY | f.O_CREAT, 0o644);
    try {
      assert.throws(() => io.ftruncate(readOnly, 1), (e: unknown) => e instanceof IoError && e.code === "EINVAL");
    } finally {
      io.close(readOnly);
    }
  });

  test("aligned native buffers: alignment, size rounding, contents survive, use after free refused", () => {
    const buffer = io.allocate(5000, 4096);
    assert.equal(buffer.size, 8192);
    assert.equal(buffer.bytes.length, 8192);
    assert.equal(buffer.alignment, 4096);
    buffer.bytes.fill(0xab);
    const fd = openNew(f.O_DIRECT);
    try {
      // O_DIRECT takes a block-aligned address, length and offset: only native memory gives the first.
      assert.equal(io.pwrite(fd, buffer.bytes.subarray(4096), 4096), 4096);
      const back = io.allocate(4096, 4096);
      assert.equal(io.pread(fd, back.bytes, 4096), 4096);
      assert.ok(back.bytes.every((b) => b === 0xab));
      io.free(back);
      // A misaligned offset into the file is refused by the kernel, and named.
      assert.throws(() => io.pwrite(fd, buffer.bytes.subarray(0, 4096), 100), (e: unknown) => e instanceof IoError && e.code === "EINVAL");
    } finally {
      io.close(fd);
    }
    io.free(buffer);
    assert.equal(buffer.freed, true);
    assert.throws(() => buffer.bytes);
    assert.throws(() => io.allocate(100, 3), "alignment must be a power of two");
  });

  test("io_uring: 64 writes linked to one fdatasync in one submission, read back through the ring", { skip: ringSkip }, async () => {
    const opened = io.openRing(128);
    assert.ok(opened.ok);
    const ring = opened.ring;
    const fd = openNew();
    const buffer = io.allocate(64 * 128, 4096);
    try {
      for (let i = 0; i < 64; i++) buffer.bytes.fill(i, i * 128, (i + 1) * 128);
      for (let i = 0; i < 64; i++) ring.prepWrite(fd, buffer.bytes.subarray(i * 128, (i + 1) * 128), i * 128, i, true);
      ring.prepFsync(fd, true, 64, false);
      assert.equal(ring.submit(), 65);
      const results = await completions(ring, 65);
      for (let i = 0; i < 64; i++) assert.equal(results.get(i), 128, `write ${i}`);
      assert.equal(results.get(64), 0, "fdatasync");
      assert.equal(io.fileSize(fd), 64 * 128);
      buffer.bytes.fill(0);
      ring.prepRead(fd, buffer.bytes.subarray(0, 4096), 63 * 128, 7, false);
      assert.equal(ring.submit(), 1);
      const read = await completions(ring, 1);
      assert.equal(read.get(7), 128, `read stops at end of file: ${JSON.stringify([...read])}`);
      assert.ok(buffer.bytes.subarray(0, 128).every((b) => b === 63));
    } finally {
      io.close(fd);
      io.free(buffer);
      ring.close();
    }
  });

  test("io_uring: a failed write cancels the fdatasync linked to it", { skip: ringSkip }, async () => {
    const opened = io.openRing(8);
    assert.ok(opened.ok);
    const ring = opened.ring;
    const buffer = io.allocate(4096, 4096);
    const fd = openNew();
    io.close(fd); // now a bad descriptor
    try {
      ring.prepWrite(fd, buffer.bytes.subarray(0, 10), 0, 1, true);
      ring.prepFsync(fd, true, 2, false);
      ring.submit();
      const results = await completions(ring, 2);
      assert.equal(results.get(1), -9, "EBADF");
      assert.equal(results.get(2), -125, "ECANCELED");
    } finally {
      io.free(buffer);
      ring.close();
    }
  });

  test("io_uring: waitMicros blocks until a completion is ready, and times out when none comes", { skip: ringSkip }, () => {
    const opened = io.openRing(4);
    assert.ok(opened.ok);
    const ring = opened.ring;
    const fd = openNew();
    try {
      let started = performance.now();
      const idle = ring.waitMicros(20_000);
      const idleMs = performance.now() - started;
      // Linux 5.11 brought the timed wait (IORING_FEAT_EXT_ARG); before it, null is the answer.
      const [major = 0, minor = 0] = os.release().split(".").map(Number);
      if (major < 5 || (major === 5 && minor < 11)) {
        assert.equal(idle, null);
        return;
      }
      assert.equal(idle, false, "nothing in flight: the wait times out");
      assert.ok(idleMs >= 15, `the timeout waited ${idleMs.toFixed(1)} ms of 20`);
      ring.prepFsync(fd, true, 7, false);
      ring.submit();
      started = performance.now();
      assert.equal(ring.waitMicros(5_000_000), true);
      assert.ok(performance.now() - started < 4000, "the wait ends at the completion, not at the timeout");
      assert.deepEqual(ring.reap(8), [{ tag: 7, result: 0 }]);
    } finally {
      io.close(fd);
      ring.close();
    }
  });

  test("io_uring refuses buffers that are not native memory", { skip: ringSkip }, () => {
    const opened = io.openRing(2);
    assert.ok(opened.ok);
    try {
      assert.throws(() => opened.ring.prepWrite(0, new Uint8Array(16), 0, 1, false), /NativeBuffer/);
    } finally {
      opened.ring.close();
    }
  });

  test("waiting for completions leaves the event loop free", { skip: ringSkip }, async () => {
    const opened = io.openRing(4);
    assert.ok(opened.ok);
    const ring = opened.ring;
    const fd = openNew();
    const buffer = io.allocate(1 << 20, 4096);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      for (let round = 0; round < 20; round++) {
        ring.prepWrite(fd, buffer.bytes, round * buffer.size, round, true);
        ring.prepFsync(fd, true, 100 + round, false);
        ring.submit();
        await completions(ring, 2);
      }
    } finally {
      clearInterval(timer);
      io.close(fd);
      io.free(buffer);
      ring.close();
    }
    assert.ok(ticks > 0, "timers ran while 20 MiB were written and synced");
  });

  test("a missing or foreign shim is reported as unavailable, with the remedy", () => {
    const missing = io.openRing(8, { shimPath: path.join(directory, "none.so") });
    assert.equal(missing.ok, false);
    assert.ok(!missing.ok && /no io_uring shim built .*apt-get install liburing-dev/.test(missing.reason), !missing.ok ? missing.reason : "");
    const garbage = path.join(directory, "garbage.so");
    fs.writeFileSync(garbage, "not a shared library");
    const foreign = io.openRing(8, { shimPath: garbage });
    assert.equal(foreign.ok, false);
    assert.ok(!foreign.ok && /does not load .*rebuild it with node liburing-shim\/build\.mjs/.test(foreign.reason), !foreign.ok ? foreign.reason : "");
  });

  test("a refused io_uring_queue_init names the cause", () => {
    const eperm = ringRefused(1);
    assert.equal(eperm.code, "EPERM");
    assert.match(eperm.reason, /seccomp|io_uring_disabled/);
    const enosys = ringRefused(38);
    assert.equal(enosys.code, "ENOSYS");
    assert.match(enosys.reason, /no io_uring|io_uring_disabled/);
  });
});
