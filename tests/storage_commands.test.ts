import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { command as format } from "../src/cli/commands/format.ts";
import { command as inspect } from "../src/cli/commands/inspect.ts";
import { UsageError } from "../src/cli/command.ts";

async function quietly(run: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...args: unknown[]) => void out.push(args.join(" "));
  console.error = (...args: unknown[]) => void err.push(args.join(" "));
  try {
    return { code: await run(), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("format creates a data dir once; inspect verifies it, then names a flipped superblock copy with exit 1", async () => {
  const root = mkdtempSync(join(tmpdir(), "chronon-cmd-"));
  const dir = join(root, "d");
  try {
    const made = await quietly(() => format.run(["--cluster", "orders", "--replica", "2", dir]));
    assert.equal(made.code, 0, made.err);
    const again = await quietly(() => format.run(["--cluster", "orders", "--replica", "2", dir]));
    assert.equal(again.code, 1);
    assert.match(again.err, /AlreadyFormattedError/);
    const clean = await quietly(() => inspect.run([dir, "--json"]));
    assert.equal(clean.code, 0, clean.out + clean.err);
    const report = JSON.parse(clean.out) as { identity: { replica: number }; journal: { opHead: number; faults: unknown[] } };
    assert.equal(report.identity.replica, 2);
    assert.equal(report.journal.opHead, 0);
    const superblock = readFileSync(join(dir, "superblock"));
    superblock[512 + 70]! ^= 4;
    writeFileSync(join(dir, "superblock"), superblock);
    const bad = await quietly(() => inspect.run([dir]));
    assert.equal(bad.code, 1);
    assert.match(bad.out, /copy 1 bad \(checksum\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("format refuses a bad command line with UsageError", async () => {
  await assert.rejects(format.run(["--cluster", "0", "--replica", "0", "/tmp/x"]), UsageError);
  await assert.rejects(format.run(["--cluster", "a", "--replica", "3", "--replicas", "3", "/tmp/x"]), UsageError);
  await assert.rejects(format.run(["--replica", "0", "/tmp/x"]), UsageError);
});
