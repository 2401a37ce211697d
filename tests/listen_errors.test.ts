import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { Server } from "node:net";
import { tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import guestbookApp from "../examples/app_main.ts";
import { freePort } from "../src/net/free_port.ts";
import { parseConfig } from "../src/node/config.ts";
import { createReplica } from "../src/node/replica_factory.ts";
import { ListenError, startReplica } from "../src/node/replica_node.ts";
import { sameRuntimeCommand } from "../src/cli/commands/storage_common.ts";
import { repoRoot, spawnChild, writeCluster } from "./dev_cluster_helpers.ts";

function ephemeralLow(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  } catch {
    return 32768;
  }
}

/** Paths this process holds open under `dir` (Linux; null where /proc/self/fd is missing). */
function openFilesUnder(dir: string): string[] | null {
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return null;
  }
  const paths: string[] = [];
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) paths.push(target);
    } catch {
      // Closed between the listing and the read.
    }
  }
  return paths;
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

test("freePort hands out ports below the ephemeral range, free to listen on", async () => {
  const low = ephemeralLow();
  for (let i = 0; i < 10; i++) {
    const port = await freePort();
    assert.ok(port >= 20_000 && port < low, `port ${port} below ${low}`);
    const server = await occupy(port);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

for (const role of ["bus", "api"] as const) {
  test(`a replica whose ${role} port is taken fails to start with a ListenError naming it, and closes its data dir`, { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "chronon-listen-"));
    const taken = await freePort();
    const blocker = await occupy(taken);
    const other = await freePort();
    const config = parseConfig({
      cluster: "listen-errors",
      replicas: [{ bus: `127.0.0.1:${role === "bus" ? taken : other}`, api: `127.0.0.1:${role === "api" ? taken : other}`, dataDir: join(dir, "data") }],
      secret: { value: "a-secret-of-enough-length" },
      token: "none",
    });
    const start = () => startReplica({ config, replica: 0, app: guestbookApp, io: "sync", log: () => {}, format: true, createReplica });
    try {
      await assert.rejects(start(), (error: unknown) => {
        assert.ok(error instanceof ListenError, String(error));
        assert.match((error as Error).message, new RegExp(`127\\.0\\.0\\.1:${taken} for the ${role === "bus" ? "replica bus" : "HTTP API"}: the address is already in use`));
        return true;
      });
      // Nothing under the data dir is held open any more (journal segments, superblock)…
      const held = openFilesUnder(dir);
      if (held !== null) assert.deepEqual(held, [], "files of the data dir left open");
      // …and once the port is free, the same replica starts.
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
      const running = await start();
      await running.stop();
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("a disk failure while a replica starts is one FATAL line and exit code 70, as at run time (chaos finding 10)", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-start-eio-"));
  try {
    const cluster = await writeCluster(dir, 1);
    const faults = join(dir, "faults.json");
    writeFileSync(faults, JSON.stringify({ syncEioProbability: 1 }));
    const args = ["start", "--config", cluster.configPath, "--replica", "0", "--app", join(repoRoot, "examples/app_main.ts"), "--io", "sync", "--format"];
    const { command, args: full, cwd } = sameRuntimeCommand(args);
    const child = spawnChild(command, full, { cwd, env: { ...process.env, CHRONON_TEST_FAULTS: faults } });
    const code = await child.exited;
    assert.equal(code, 70, child.output());
    assert.match(child.output(), /chronon\[0\] FATAL storage failure while starting .*EIO \(injected by CHRONON_TEST_FAULTS\)/);
    assert.doesNotMatch(child.output(), /\n\s+at /, "no stack trace");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
