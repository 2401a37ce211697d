import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sameRuntimeCommand } from "../src/cli/commands/storage_common.ts";
import { Client } from "../src/client/client.ts";
import { replacedMarkerName } from "../src/node/recover.ts";
import guestbookApp from "../examples/app_main.ts";
import { parseConfig } from "../src/node/config.ts";
import { createReplica } from "../src/node/replica_factory.ts";
import { startReplica } from "../src/node/replica_node.ts";
import { primaryOf, repoRoot, spawnChild, statusOf, stopChild, waitFor, writeCluster } from "./dev_cluster_helpers.ts";
import type { Child } from "./dev_cluster_helpers.ts";

test("a replica whose disk was replaced: --format is refused, --replace catches up before voting, and then holds the log", { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-replace-"));
  const cluster = await writeCluster(dir, 3);
  const replicas: (Child | null)[] = [null, null, null];
  const launch = (i: number, flag: "--format" | "--replace" | null) => {
    const args = ["start", "--config", cluster.configPath, "--replica", String(i), "--app", join(repoRoot, "examples/app_main.ts"), "--io", "sync"];
    if (flag !== null) args.push(flag);
    const { command, args: full, cwd } = sameRuntimeCommand(args);
    return spawnChild(command, full, { cwd });
  };
  const logs = () => replicas.map((r, i) => `--- replica ${i}\n${r?.output() ?? ""}`).join("\n");
  try {
    for (let i = 0; i < 3; i++) replicas[i] = launch(i, "--format");
    const primary = await waitFor("a primary", 30_000, () => primaryOf(cluster.urls), logs);
    const client = new Client<typeof guestbookApp>({ addresses: cluster.urls, token: cluster.token, deadlineMs: 15_000 });
    for (let i = 0; i < 20; i++) await client.submit({ name: "before", text: `${i}` });

    // A backup loses its disk.
    const lost = (primary.replica + 1) % 3;
    const other = (primary.replica + 2) % 3;
    replicas[lost]!.child.kill("SIGKILL");
    await replicas[lost]!.exited;
    rmSync(join(dir, `replica-${lost}`), { recursive: true, force: true });

    // --format on a cluster with history is refused, naming --replace.
    const refused = launch(lost, "--format");
    assert.equal(await refused.exited, 1, refused.output());
    assert.match(refused.output(), /this cluster has history.*start it with --replace/);
    assert.equal(existsSync(join(dir, `replica-${lost}`)), false, "nothing was formatted");

    // --replace: formatted, marked, not voting until it caught up.
    replicas[lost] = launch(lost, "--replace");
    await waitFor("the replaced replica to catch up and vote", 30_000, () => Promise.resolve(/caught up: voting again/.test(replicas[lost]!.output()) ? true : null), logs);
    assert.match(replicas[lost]!.output(), /replaces a lost disk: the replica will not vote until it has caught up/);
    assert.equal(existsSync(join(dir, `replica-${lost}`, replacedMarkerName)), false, "marker removed once voting");
    await waitFor("the replaced replica at the others' commit", 20_000, async () => {
      const [a, b] = await Promise.all([statusOf(cluster.urls[lost]!), statusOf(cluster.urls[primary.replica]!)]);
      return a !== null && b !== null && a.commit >= 20 && a.commit === b.commit ? true : null;
    }, logs);

    // Now it is a full member: with the other backup down, it and the primary still form a
    // quorum, take writes, and every earlier write is there.
    replicas[other]!.child.kill("SIGKILL");
    await replicas[other]!.exited;
    for (let i = 0; i < 5; i++) await client.submit({ name: "after", text: `${i}` });
    assert.equal(await client.query({ type: "count" }), 25);
  } finally {
    await Promise.all(replicas.map((r) => (r === null ? null : stopChild(r))));
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a replaced replica does not vote: with it and one backup left, no primary is elected until the old primary returns, and nothing is lost", { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-replace-stall-"));
  const cluster = await writeCluster(dir, 3);
  const replicas: (Child | null)[] = [null, null, null];
  const launch = (i: number, flag: "--format" | "--replace" | null) => {
    const args = ["start", "--config", cluster.configPath, "--replica", String(i), "--app", join(repoRoot, "examples/app_main.ts"), "--io", "sync"];
    if (flag !== null) args.push(flag);
    const { command, args: full, cwd } = sameRuntimeCommand(args);
    return spawnChild(command, full, { cwd });
  };
  const logs = () => replicas.map((r, i) => `--- replica ${i}\n${r?.output() ?? ""}`).join("\n");
  try {
    for (let i = 0; i < 3; i++) replicas[i] = launch(i, "--format");
    const primary = await waitFor("a primary", 30_000, () => primaryOf(cluster.urls), logs);
    const client = new Client<typeof guestbookApp>({ addresses: cluster.urls, token: cluster.token, deadlineMs: 15_000 });
    for (let i = 0; i < 20; i++) await client.submit({ name: "before", text: `${i}` });

    // A backup loses its disk and the primary goes down: one intact backup is left.
    const lost = (primary.replica + 1) % 3;
    const backup = (primary.replica + 2) % 3;
    for (const i of [lost, primary.replica]) {
      replicas[i]!.child.kill("SIGKILL");
      await replicas[i]!.exited;
    }
    rmSync(join(dir, `replica-${lost}`), { recursive: true, force: true });
    replicas[lost] = launch(lost, "--replace");
    // Two processes, but one vote: no view change may complete. The replaced replica must
    // not help elect the backup, which could lack writes the old primary had committed.
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      const statuses = await Promise.all([lost, backup].map((i) => statusOf(cluster.urls[i]!)));
      for (const status of statuses) {
        assert.ok(status === null || status.status !== "normal" || status.view === primary.view,
          `replica ${status?.replica} is normal in view ${status?.view} without a quorum of voters\n${logs()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(existsSync(join(dir, `replica-${lost}`, replacedMarkerName)), "still marked: it has not caught up");

    // The old primary returns with its disk: a quorum of voters again.
    replicas[primary.replica] = launch(primary.replica, null);
    await waitFor("the replaced replica to catch up and vote", 30_000, () => Promise.resolve(/caught up: voting again/.test(replicas[lost]!.output()) ? true : null), logs);
    for (let i = 0; i < 5; i++) await client.submit({ name: "after", text: `${i}` });
    assert.equal(await client.query({ type: "count" }), 25);
  } finally {
    await Promise.all(replicas.map((r) => (r === null ? null : stopChild(r))));
    rmSync(dir, { recursive: true, force: true });
  }
});

test("start with replace passes intact=false to the replica until it votes, then intact=true on the next start", { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-replace-unit-"));
  const config = parseConfig({
    cluster: "replace-unit",
    replicas: [{ bus: "127.0.0.1:0", api: "127.0.0.1:0", dataDir: join(dir, "data") }],
    secret: { value: "a-secret-of-enough-length" },
    token: "none",
  });
  const intactSeen: boolean[] = [];
  const start = (options: { format?: boolean; replace?: boolean }) => startReplica({
    config, replica: 0, app: guestbookApp, io: "sync", log: () => {}, ...options,
    createReplica: (replicaConfig, stateMachine, recovered) => {
      intactSeen.push(recovered.intact);
      return createReplica(replicaConfig, stateMachine, recovered);
    },
  });
  try {
    const first = await start({ replace: true });
    // A one-replica cluster votes at once (nobody to catch up from): the marker goes.
    await waitFor("the marker to be removed", 5000, () => Promise.resolve(existsSync(join(dir, "data", replacedMarkerName)) ? null : true));
    await first.stop();
    const second = await start({});
    await second.stop();
    const third = await start({ format: true });
    await third.stop();
    assert.deepEqual(intactSeen, [false, true, true]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
