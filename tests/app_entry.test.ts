import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "../src/client/client.ts";
import { RejectedError } from "../src/client/errors.ts";
import { runtimeName } from "../src/cli/runtime.ts";
import { isMain } from "../src/runner.ts";
import guestbook from "../examples/app_main.ts";
import { repoRoot, runTsFile, spawnChild, statusOf, stopChild, waitFor, writeCluster } from "./dev_cluster_helpers.ts";

test("an app module with the isMain guard only defines its app when imported", () => {
  assert.equal(typeof guestbook.apply, "function");
  assert.equal(typeof guestbook.genesis, "function");
  // This test file is the main module, not examples/app_main.ts.
  assert.equal(isMain({ url: new URL("../examples/app_main.ts", import.meta.url).href }), false);
  assert.equal(isMain({ url: "file:///elsewhere/app.ts", main: true }), true, "a runtime's own import.meta.main is trusted");
  assert.equal(isMain({ url: "https://example.com/app.ts" }), false);
});

test("the app file is its own entry point: start a replica, write, query, stop", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-app-entry-"));
  const cluster = await writeCluster(dir, 1);
  const { command, args } = runTsFile(join(repoRoot, "examples/app_main.ts"), ["start", "--config", cluster.configPath, "--replica", "0", "--format", "--io", "sync"]);
  const replica = spawnChild(command, args);
  try {
    const url = cluster.urls[0]!;
    await waitFor("the replica to be primary", 30_000, async () => {
      const status = await statusOf(url);
      return status !== null && status.status === "normal" ? status : null;
    }, replica.output);
    const client = new Client<typeof guestbook>({ addresses: [url], token: cluster.token, deadlineMs: 10_000 });
    assert.deepEqual(await client.submit({ name: "ada", text: "hello" }), { index: 0 });
    await assert.rejects(client.submit({ name: "", text: "no name" }), RejectedError);
    assert.equal(await client.query({ type: "count" }), 1);
    const latest = await client.query({ type: "latest", count: 5 }) as { name: string }[];
    assert.deepEqual(latest.map((e) => e.name), ["ada"]);
    const code = await stopChild(replica);
    // Deno's node:child_process reports a child it signalled as (null, SIGTERM) even when
    // the child handled the signal and exited 0; the child's own last line tells.
    assert.ok(code === 0 || (code === null && runtimeName() === "deno"), `exit code ${code}\n${replica.output()}`);
    assert.match(replica.output(), /chronon\[0\] stopped cleanly/);
    assert.match(replica.output(), /chronon\[0\] started: bus 127\.0\.0\.1:\d+/);
  } finally {
    await stopChild(replica);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the app file's runner names a bad command line and exits 2", { timeout: 30_000 }, async () => {
  const { command, args } = runTsFile(join(repoRoot, "examples/app_main.ts"), ["start", "--replica", "0"]);
  const run = spawnChild(command, args);
  assert.equal(await run.exited, 2, run.output());
  assert.match(run.output(), /--config is required/);
});
