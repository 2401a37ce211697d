import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { sameRuntimeCommand } from "../src/cli/commands/storage_common.ts";
import { runtimeName } from "../src/cli/runtime.ts";
import { Client } from "../src/client/client.ts";
import { OutcomeUnknownError } from "../src/client/errors.ts";
import type guestbook from "../examples/app_main.ts";
import { primaryOf, repoRoot, sleep, spawnChild, statusOf, stopChild, waitFor } from "./dev_cluster_helpers.ts";
import type { Child } from "./dev_cluster_helpers.ts";

// Three replicas, each in its own network namespace with one end of a veth pair; the other
// ends are joined by a bridge in this namespace, which also carries the test's client
// traffic. So the bus runs over real IP interfaces, not loopback.

/** Runs `ip ARGS…`; returns stderr on failure, null on success. */
function ip(...args: string[]): string | null {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.error !== undefined) return result.error.message;
  return result.status === 0 ? null : (result.stderr || `exit ${result.status}`).trim();
}

/** Why this machine cannot run the test, or false when it can. */
function skipReason(): string | false {
  if (runtimeName() !== "node") return "runs once, under the node run of the suite (it builds a binary and needs root)";
  if (process.getuid?.() !== 0) return "network namespaces need root (CAP_NET_ADMIN): skipped; CI runs this as root";
  const probe = `chronon-probe-${process.pid}`;
  const failed = ip("netns", "add", probe);
  if (failed !== null) return `cannot create a network namespace here (${failed}): skipped`;
  ip("netns", "del", probe);
  return false;
}
const skip = skipReason();
if (skip !== false) console.log(`netns test skipped: ${skip}`);

test("three single binaries in three network namespaces: writes, kill -9 of the primary, view change, restart, no acknowledged write lost", { skip, timeout: 120_000 }, async () => {
  const id = randomBytes(2).toString("hex"); // interface names must stay under 16 bytes
  const subnet = `10.${200 + (Number.parseInt(id.slice(0, 2), 16) % 50)}.${Number.parseInt(id.slice(2), 16)}`;
  const bridge = `chb${id}`;
  const namespaces = [0, 1, 2].map((i) => `chronon-${id}-${i}`);
  const dir = mkdtempSync(join(tmpdir(), "chronon-netns-"));
  const replicas: (Child | null)[] = [null, null, null];
  try {
    // The network. Every step is checked; the finally clause undoes whatever was made.
    const must = (...args: string[]) => {
      const failed = ip(...args);
      assert.equal(failed, null, `ip ${args.join(" ")}: ${failed}`);
    };
    must("link", "add", bridge, "type", "bridge");
    must("addr", "add", `${subnet}.254/24`, "dev", bridge);
    must("link", "set", bridge, "up");
    for (let i = 0; i < 3; i++) {
      const outside = `chv${id}${i}`;
      const inside = `chp${id}${i}`;
      must("netns", "add", namespaces[i]!);
      must("link", "add", outside, "type", "veth", "peer", "name", inside);
      must("link", "set", inside, "netns", namespaces[i]!);
      must("link", "set", outside, "master", bridge);
      must("link", "set", outside, "up");
      must("-n", namespaces[i]!, "addr", "add", `${subnet}.${i + 1}/24`, "dev", inside);
      must("-n", namespaces[i]!, "link", "set", inside, "up");
      must("-n", namespaces[i]!, "link", "set", "lo", "up");
    }

    // The single binary; where bun build --compile cannot run, node bin/chronon.mjs start.
    const binary = join(dir, "guestbook");
    const { command, args } = sameRuntimeCommand(["build", join(repoRoot, "examples/app_main.ts"), "--outfile", binary]);
    const built = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", timeout: 80_000 });
    const program = built.status === 0
      ? [binary, "start"]
      : [process.execPath, join(repoRoot, "bin/chronon.mjs"), "start", "--app", join(repoRoot, "examples/app_main.ts")];
    if (built.status !== 0) console.log(`netns: no single binary (${built.stderr.trim().split("\n")[0]}): running node bin/chronon.mjs start`);

    const token = randomBytes(16).toString("hex");
    const configPath = join(dir, "cluster.json");
    writeFileSync(configPath, JSON.stringify({
      cluster: `netns-${id}`,
      replicas: [0, 1, 2].map((i) => ({ bus: `${subnet}.${i + 1}:4000`, api: `${subnet}.${i + 1}:8080`, dataDir: join(dir, `replica-${i}`) })),
      secret: { value: randomBytes(24).toString("hex") },
      token: { value: token },
    }));
    const urls = [0, 1, 2].map((i) => `http://${subnet}.${i + 1}:8080`);
    const launch = (i: number, format: boolean) => {
      const startArgs = ["netns", "exec", namespaces[i]!, ...program, "--config", configPath, "--replica", String(i), "--io", "sync"];
      if (format) startArgs.push("--format");
      replicas[i] = spawnChild("ip", startArgs, { cwd: built.status === 0 ? dir : repoRoot, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TMPDIR: dir } });
    };
    for (let i = 0; i < 3; i++) launch(i, true);
    const logs = () => replicas.map((r, i) => `--- replica ${i}\n${r?.output() ?? ""}`).join("\n");

    const first = await waitFor("a primary", 30_000, () => primaryOf(urls), logs);
    const client = new Client<typeof guestbook>({ addresses: urls, token, deadlineMs: 20_000 });
    const acknowledged: string[] = [];
    let unknown = 0;
    const write = async (text: string) => {
      try {
        await client.submit({ name: "netns", text });
        acknowledged.push(text);
      } catch (error) {
        if (error instanceof OutcomeUnknownError) unknown++;
        else throw error;
      }
    };
    for (let i = 0; i < 20; i++) await write(`a${i}`);
    assert.equal(acknowledged.length, 20);

    // Kill -9 the primary while a writer keeps going.
    let writing = true;
    const writer = (async () => {
      // Bounded, so that every entry fits one query page (the guestbook answers at most 100).
      for (let i = 0; writing && i < 60; i++) {
        await write(`b${i}`);
        await sleep(25); // spread over the kill and the view change
      }
    })();
    await sleep(300);
    replicas[first.replica]!.child.kill("SIGKILL");
    await replicas[first.replica]!.exited;
    const next = await waitFor("a new primary", 30_000, async () => {
      const status = await primaryOf(urls.filter((_, i) => i !== first.replica));
      return status !== null && status.view > first.view ? status : null;
    }, logs);
    assert.notEqual(next.replica, first.replica);
    await sleep(500);
    launch(first.replica, false);
    await sleep(1000);
    writing = false;
    await writer;
    for (let i = 0; i < 10; i++) await write(`c${i}`);

    // The restarted replica catches up; every acknowledged write is there, once.
    await waitFor("all three replicas at the same commit", 30_000, async () => {
      const statuses = await Promise.all(urls.map(statusOf));
      if (statuses.some((s) => s === null || s.status !== "normal")) return null;
      return statuses.every((s) => s!.commit === statuses[0]!.commit) ? statuses : null;
    }, logs);
    const entries = await client.query({ type: "latest", count: 100 }) as { text: string }[];
    const count = await client.query({ type: "count" }) as number;
    assert.ok(count <= 100, `the check reads every entry (${count})`);
    const texts = entries.map((e) => e.text);
    for (const text of acknowledged) assert.equal(texts.filter((t) => t === text).length, 1, `acknowledged write ${text} present once`);
    assert.ok(count >= acknowledged.length && count <= acknowledged.length + unknown, `count ${count}, acknowledged ${acknowledged.length}, unknown ${unknown}`);
    // The bus really crossed the bridge: the restarted replica talks to its peers by their IPs.
    const metrics = await (await fetch(`${urls[first.replica]}/metrics`)).text();
    assert.match(metrics, /chronon_bus_frames_in_total [1-9]/);
    console.log(`netns: ${acknowledged.length} acknowledged, ${unknown} unknown, view ${first.view} -> ${next.view}, primary ${first.replica} -> ${next.replica}`);
  } finally {
    await Promise.all(replicas.map((r) => (r === null ? null : stopChild(r, 3000))));
    for (const namespace of namespaces) ip("netns", "del", namespace);
    ip("link", "del", bridge);
    rmSync(dir, { recursive: true, force: true });
    // Nothing left behind, even after a failure.
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    assert.ok(!namespaces.some((n) => left.includes(n)), `namespaces left: ${left}`);
    assert.equal(existsSync(`/sys/class/net/${bridge}`), false, "bridge removed");
  }
});
