import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeName } from "../src/cli/runtime.ts";
import { sameRuntimeCommand } from "../src/cli/commands/storage_common.ts";
import { Client } from "../src/client/client.ts";
import type guestbook from "../examples/app_main.ts";
import { repoRoot, spawnChild, statusOf, stopChild, waitFor, writeCluster } from "./dev_cluster_helpers.ts";

// Building takes a few seconds and 100 MiB of disk: once, under Node (the command itself
// runs bun build --compile whatever runtime drives it).
const skip = runtimeName() !== "node" ? "builds once, under the node run of the suite" : false;

test("chronon build makes one executable that runs a replica without the repo, node or bun on PATH", { skip, timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-build-test-"));
  try {
    const outfile = join(dir, "guestbook");
    const { command, args } = sameRuntimeCommand(["build", join(repoRoot, "examples/app_main.ts"), "--outfile", outfile]);
    const built = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", timeout: 80_000 });
    assert.equal(built.status, 0, `${built.stdout}${built.stderr}`);
    assert.match(built.stdout, /wrote .*guestbook \(\d+ MiB, bun [0-9.]+, shim embedded\)/);
    assert.equal(readdirSync(repoRoot).filter((name) => name.startsWith(".chronon-build-")).length, 0, "the build's work dir is removed");

    // A clean environment: no PATH to node or bun, its own TMPDIR, a cwd outside the repo.
    const cluster = await writeCluster(dir, 1);
    const shimDir = join(dir, "tmp");
    mkdirSync(shimDir);
    const env = { PATH: "/nonexistent", TMPDIR: shimDir, HOME: dir };
    const replica = spawnChild(outfile, ["start", "--config", cluster.configPath, "--replica", "0", "--format"], { cwd: dir, env });
    try {
      const url = cluster.urls[0]!;
      await waitFor("the built replica to serve", 20_000, async () => {
        const status = await statusOf(url);
        return status !== null && status.status === "normal" ? status : null;
      }, replica.output);
      const client = new Client<typeof guestbook>({ addresses: [url], token: cluster.token, deadlineMs: 10_000 });
      assert.deepEqual(await client.submit({ name: "grace", text: "from a single binary" }), { index: 0 });
      assert.equal(await client.query({ type: "count" }), 1);
      assert.equal(await stopChild(replica), 0, replica.output());
      assert.match(replica.output(), /chronon\[0\] stopped cleanly/);
      // The embedded shim was written out for dlopen; which disk backend then ran depends on
      // whether this kernel allows io_uring (both are named in the start line).
      assert.ok(readdirSync(shimDir).some((name) => /^chronon-uring-[0-9a-f]{16}\.so$/.test(name)), readdirSync(shimDir).join(","));
      assert.match(replica.output(), /\((uring|portable|direct-sync) disk\)/);
    } finally {
      await stopChild(replica);
    }

    // An unwritable TMPDIR: one line says so, and the replica runs on the portable backend.
    const again = spawnChild(outfile, ["start", "--config", cluster.configPath, "--replica", "0"], { cwd: dir, env: { ...env, TMPDIR: join(dir, "missing") } });
    try {
      await waitFor("the replica to restart", 20_000, async () => await statusOf(cluster.urls[0]!), again.output);
      const client = new Client<typeof guestbook>({ addresses: cluster.urls, token: cluster.token, deadlineMs: 10_000 });
      assert.equal(await client.query({ type: "count" }), 1, "the write survived the restart");
      await stopChild(again);
      assert.match(again.output(), /cannot write the io_uring shim under .*missing.*: using the portable disk backend/);
      assert.match(again.output(), /\(portable disk\)/);
    } finally {
      await stopChild(again);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("chronon build --target node makes a Node SEA executable that runs a replica from a clean PATH, or says in one line why it cannot", { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-build-test-"));
  try {
    const outfile = join(dir, "guestbook-node");
    const { command, args } = sameRuntimeCommand(["build", join(repoRoot, "examples/app_main.ts"), "--outfile", outfile, "--target", "node"]);
    const built = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", timeout: 110_000 });
    if (built.status !== 0) {
      // No postject installed and no network for npx: one line, exit 1, no file left.
      assert.equal(built.status, 1, `${built.stdout}${built.stderr}`);
      assert.equal(built.stderr.trim().split("\n").length, 1, built.stderr);
      assert.match(built.stderr, /postject .* could not inject the Node SEA blob: .*use --target bun/);
      assert.equal(existsSync(outfile), false);
      return;
    }
    assert.match(built.stdout, /wrote .*guestbook-node \(\d+ MiB, Node [0-9.]+ SEA, portable disk backend\)/);
    const cluster = await writeCluster(dir, 1);
    const replica = spawnChild(outfile, ["start", "--config", cluster.configPath, "--replica", "0", "--format"], { cwd: dir, env: { PATH: "/nonexistent", TMPDIR: dir, HOME: dir } });
    try {
      const url = cluster.urls[0]!;
      await waitFor("the Node SEA replica to serve", 20_000, async () => {
        const status = await statusOf(url);
        return status !== null && status.status === "normal" ? status : null;
      }, replica.output);
      const client = new Client<typeof guestbook>({ addresses: [url], token: cluster.token, deadlineMs: 10_000 });
      assert.deepEqual(await client.submit({ name: "node", text: "from a Node SEA" }), { index: 0 });
      assert.equal(await client.query({ type: "count" }), 1);
      assert.equal(await stopChild(replica), 0, replica.output());
      assert.match(replica.output(), /\(portable disk\)[\s\S]*stopped cleanly/);
      assert.ok(readdirSync(dir).some((name) => /^chronon-sea-[0-9a-f]{16}\.mjs$/.test(name)), "the bundle was written to TMPDIR");
    } finally {
      await stopChild(replica);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("chronon build --target deno builds where deno compile can fetch denort, else says why in one line; bad command lines exit 2", { skip, timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-build-test-"));
  try {
    const outfile = join(dir, "app-deno");
    const { command, args } = sameRuntimeCommand(["build", join(repoRoot, "examples/app_main.ts"), "--outfile", outfile, "--target", "deno"]);
    const built = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", timeout: 50_000 });
    if (built.status === 0) {
      assert.ok(existsSync(outfile), `exit 0 but no ${outfile}`);
    } else {
      assert.equal(built.status, 1, `${built.stdout}${built.stderr}`);
      const lines = built.stderr.trim().split("\n");
      assert.equal(lines.length, 1, built.stderr);
      assert.match(lines[0]!, /deno compile .*use --target bun/);
    }
    const usage = sameRuntimeCommand(["build", "--outfile", join(dir, "x")]);
    const bad = spawnSync(usage.command, usage.args, { cwd: repoRoot, encoding: "utf8" });
    assert.equal(bad.status, 2, "no application module is a usage error");
    const target = sameRuntimeCommand(["build", join(repoRoot, "examples/app_main.ts"), "--outfile", join(dir, "x"), "--target", "java"]);
    assert.equal(spawnSync(target.command, target.args, { cwd: repoRoot, encoding: "utf8" }).status, 2, "an unknown target is a usage error");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
