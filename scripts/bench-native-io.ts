// Measures the native-I/O layer on the running runtime (node --import tsx, bun, deno run -A):
//   1. pwrite 128 B + fdatasync per call (the raw flush rate);
//   2. one io_uring submission of 64 x 128 B writes linked to one fdatasync;
//   3. the same 8 KiB as one ring write linked to an fdatasync (what the uring Disk does);
//   4. one coalesced 8 KiB pwrite + fdatasync (the same bytes as 2, no ring).
// Each runs for SECONDS (default 1.5) appending to a fresh file in $TMPDIR.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { loadNativeIo } from "../ffi/mod.ts";

const seconds = Number(process.argv[2] ?? "1.5");
const io = await loadNativeIo();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chronon-bench-io-"));
const f = io.flags;
const buffer = io.allocate(64 * 128, 4096);
buffer.bytes.fill(0x5a);

async function trial(name: string, step: (fd: number, round: number) => Promise<void> | void): Promise<void> {
  const fd = io.open(path.join(dir, name), f.O_RDWR | f.O_CREAT | f.O_CLOEXEC, 0o644);
  const started = performance.now();
  let rounds = 0;
  while (performance.now() - started < seconds * 1000) await step(fd, rounds++);
  const elapsed = (performance.now() - started) / 1000;
  io.close(fd);
  console.log(`${io.backend.padEnd(11)} ${name.padEnd(26)} ${(rounds / elapsed).toFixed(0).padStart(6)} flushes/s  ${(elapsed / rounds * 1e6).toFixed(0).padStart(5)} us/flush`);
}

await trial("pwrite128+fdatasync", (fd, round) => {
  io.pwrite(fd, buffer.bytes.subarray(0, 128), round * 128);
  io.fdatasync(fd);
});
const opened = io.openRing(128);
if (opened.ok) {
  const ring = opened.ring;
  await trial("ring 64x128B+fdatasync", async (fd, round) => {
    for (let i = 0; i < 64; i++) ring.prepWrite(fd, buffer.bytes.subarray(i * 128, (i + 1) * 128), round * 8192 + i * 128, i, true);
    ring.prepFsync(fd, true, 64, false);
    ring.submit();
    let seen = 0;
    while (seen < 65) {
      const ready = ring.reap(128);
      for (const c of ready) {
        if (c.result < 0) throw new Error(`entry ${c.tag} failed: ${c.result}`);
        seen++;
      }
      if (ready.length === 0) await ring.waitCompletions();
    }
  });
  await trial("ring 1x8KiB+fdatasync", async (fd, round) => {
    ring.prepWrite(fd, buffer.bytes, round * 8192, 0, true);
    ring.prepFsync(fd, true, 1, false);
    ring.submit();
    let seen = 0;
    while (seen < 2) {
      const ready = ring.reap(128);
      for (const c of ready) {
        if (c.result < 0) throw new Error(`entry ${c.tag} failed: ${c.result}`);
        seen++;
      }
      if (ready.length === 0) await ring.waitCompletions();
    }
  });
  ring.close();
} else {
  console.log(`${io.backend}: no ring: ${opened.reason}`);
}
await trial("pwrite 8KiB+fdatasync", (fd, round) => {
  io.pwrite(fd, buffer.bytes, round * 8192);
  io.fdatasync(fd);
});
io.free(buffer);
fs.rmSync(dir, { recursive: true, force: true });
