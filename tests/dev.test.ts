import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { sameRuntimeCommand } from "../src/cli/commands/storage_common.ts";
import { runtimeName } from "../src/cli/runtime.ts";
import { Client } from "../src/client/client.ts";
import { UnauthorizedError } from "../src/client/errors.ts";
import type guestbook from "../examples/app_main.ts";
import { primaryOf, spawnChild, stopChild, waitFor } from "./dev_cluster_helpers.ts";

test("chronon dev starts a 3-replica cluster that takes writes with its token, and Ctrl-C stops it and cleans up", { timeout: 90_000 }, async () => {
  const { command, args, cwd } = sameRuntimeCommand(["dev", "--app", "examples/app_main.ts"]);
  const dev = spawnChild(command, args, { cwd });
  try {
    const banner = await waitFor("dev's banner", 60_000, () => Promise.resolve(/Ctrl-C stops every replica/.test(dev.output()) ? dev.output() : null), dev.output);
    const urls = [...banner.matchAll(/api \d: (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
    assert.equal(urls.length, 3, banner);
    const token = /token: +([0-9a-f]{32})/.exec(banner)?.[1];
    assert.ok(token !== undefined, banner);
    const dir = /dir: +(\S+)/.exec(banner)?.[1];
    assert.ok(dir !== undefined && existsSync(dir), banner);
    assert.match(banner, /curl -s -X POST .*Bearer [0-9a-f]{32}/);

    const client = new Client<typeof guestbook>({ addresses: urls, token, deadlineMs: 15_000 });
    assert.deepEqual(await client.submit({ name: "dev", text: "one" }), { index: 0 });
    assert.deepEqual(await client.submit({ name: "dev", text: "two" }), { index: 1 });
    assert.equal(await client.query({ type: "count" }), 2);
    await assert.rejects(new Client({ addresses: urls, deadlineMs: 5000 }).submit({ name: "x", text: "no token" }), UnauthorizedError);
    // Every replica took the writes (the backups too).
    await waitFor("all replicas to commit the writes", 10_000, async () => {
      const primary = await primaryOf(urls);
      return primary !== null && primary.commit >= 3 ? primary : null;
    });

    dev.child.kill("SIGINT");
    let hangTimer: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([dev.exited, new Promise<"hung">((done) => { hangTimer = setTimeout(() => done("hung"), 20_000); })]);
    clearTimeout(hangTimer); // a pending timer would hold the test process open for 20 s
    // Deno's node:child_process reports a child it signalled as (null, SIGINT) even when the
    // child handled it and exited 0: its own last line tells.
    assert.ok(code === 0 || (code === null && runtimeName() === "deno"), `exit ${code}\n${dev.output()}`);
    assert.match(dev.output(), /chronon dev: stopped; removed /);
    assert.equal(existsSync(dir), false, "the temporary directory is gone");
    assert.equal((dev.output().match(/stopped cleanly/g) ?? []).length, 3, dev.output());
  } finally {
    await stopChild(dev);
  }
});
