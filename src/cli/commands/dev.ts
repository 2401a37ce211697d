/**
 * `chronon dev --app app.ts`: a three-replica cluster of an application on loopback, in one
 * command, for development. Temporary data dirs, a generated secret and token, the API
 * URLs and a curl line printed; Ctrl-C stops every replica and removes the directory.
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { sameRuntimeCommand } from "./storage_common.ts";
import { formatLocalCluster } from "./local_cluster.ts";
import { freePort } from "../../net/free_port.ts";

const usage = `chronon dev --app APP.ts [--replicas 1|3|5] [--api-port P] [--keep]

Starts a development cluster of APP.ts on 127.0.0.1: each replica in its own process, with
temporary data dirs, a generated cluster secret and API token. Prints the API URLs, the
token and a curl example, then runs until Ctrl-C (SIGINT) or SIGTERM, which stops every
replica and removes the temporary directory.

  --app FILE      the application module (default export: defineApp({...}))
  --replicas N    replica count (default 3)
  --api-port P    API ports P, P+1, …; bus ports P+100, P+101, … (default: free ports)
  --keep          keep the temporary directory (data dirs, cluster.json) after stopping`;

/** Replica processes are given this long to stop on SIGTERM before SIGKILL. */
const stopGraceMs = 5000;
/** How long the cluster has to elect a primary before dev gives up. */
const primaryWaitMs = 30_000;

interface Replica {
  readonly index: number;
  readonly child: ChildProcess;
  readonly closed: Promise<number | null>;
}

async function primaryUrl(urls: readonly string[]): Promise<string | null> {
  for (const url of urls) {
    try {
      const response = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(1000) });
      const status = await response.json() as { status: string; primary: number; replica: number };
      if (status.status === "normal" && status.primary === status.replica) return url;
    } catch {
      // Not up yet.
    }
  }
  return null;
}

/** `chronon dev`: a loopback cluster of an app for development. */
export const command: Command = {
  name: "dev",
  summary: "run a 3-replica loopback cluster of an app for development (--app app.ts; Ctrl-C stops it)",
  usage,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          app: { type: "string" },
          replicas: { type: "string", default: "3" },
          "api-port": { type: "string" },
          keep: { type: "boolean", default: false },
        },
        strict: true,
      }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (values.app === undefined) throw new UsageError("--app is required");
    const count = Number(values.replicas);
    if (count !== 1 && count !== 3 && count !== 5) throw new UsageError("--replicas must be 1, 3 or 5");
    let basePort: number | null = null;
    if (values["api-port"] !== undefined) {
      basePort = Number(values["api-port"]);
      if (!Number.isInteger(basePort) || basePort < 1 || basePort + 100 + count > 65535) throw new UsageError("--api-port must be a port from 1 to 65430");
    }
    const appPath = resolve(values.app);
    if (!existsSync(appPath)) {
      console.error(`chronon dev: ${values.app} does not exist`);
      return 1;
    }

    const dir = mkdtempSync(join(tmpdir(), "chronon-dev-"));
    const apiPorts = basePort === null ? await Promise.all(Array.from({ length: count }, freePort)) : Array.from({ length: count }, (_, i) => basePort + i);
    const busPorts = basePort === null ? await Promise.all(Array.from({ length: count }, freePort)) : Array.from({ length: count }, (_, i) => basePort + 100 + i);
    const token = randomBytes(16).toString("hex");
    const replicas = Array.from({ length: count }, (_, i) => ({
      bus: `127.0.0.1:${busPorts[i]}`,
      api: `127.0.0.1:${apiPorts[i]}`,
      dataDir: join(dir, `replica-${i}`),
    }));
    const configPath = join(dir, "cluster.json");
    writeFileSync(configPath, JSON.stringify({
      cluster: `dev-${randomBytes(6).toString("hex")}`,
      replicas,
      secret: { value: randomBytes(24).toString("hex") },
      token: { value: token },
    }, null, 2) + "\n", { mode: 0o600 });
    const urls = replicas.map((r) => `http://${r.api}`);

    let stopping = false;
    const running: Replica[] = [];
    let stopRequested!: (reason: string) => void;
    const stopped = new Promise<string>((done) => { stopRequested = done; });
    await formatLocalCluster(configPath);
    for (let index = 0; index < count; index++) {
      const { command, args, cwd } = sameRuntimeCommand(["start", "--config", configPath, "--replica", String(index), "--app", appPath]);
      const child = spawn(command, args, { cwd, stdio: ["ignore", "inherit", "inherit"] });
      const closed = new Promise<number | null>((done) => child.once("close", (code) => done(code)));
      void closed.then((code) => {
        if (!stopping) stopRequested(`replica ${index} exited (code ${code}) on its own`);
      });
      running.push({ index, child, closed });
    }
    const onSignal = () => stopRequested("stopping (signal)");
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    let exitCode = 0;
    try {
      const deadline = Date.now() + primaryWaitMs;
      let primary: string | null = null;
      while (primary === null && Date.now() < deadline) {
        const early = await Promise.race([stopped, new Promise<null>((done) => setTimeout(() => done(null), 200))]);
        if (early !== null) throw new Error(early);
        primary = await primaryUrl(urls);
      }
      if (primary === null) throw new Error(`no primary after ${primaryWaitMs / 1000} s`);
      console.log([
        "",
        `chronon dev: ${count} replica${count === 1 ? "" : "s"} of ${values.app} are up; primary ${primary}`,
        ...urls.map((url, i) => `  api ${i}: ${url}`),
        `  token:  ${token}`,
        `  dir:    ${dir}${values.keep ? " (kept)" : " (removed on exit)"}`,
        `  config: ${configPath}`,
        "",
        "  curl -s -X POST -H 'content-type: application/json' -H 'authorization: Bearer " + token + "' \\",
        `       ${primary}/v1/sessions -d '{}'`,
        "  then POST /v1/requests with {\"session\": …, \"request\": 1, \"event\": …} (docs/api.md);",
        `  from code: new Client({ addresses: ${JSON.stringify(urls)}, token: "${token}" })`,
        "",
        "Ctrl-C stops every replica.",
      ].join("\n"));
      const reason = await stopped;
      console.log(`chronon dev: ${reason}`);
      if (!reason.startsWith("stopping")) exitCode = 1;
    } catch (error) {
      console.error(`chronon dev: ${(error as Error).message}`);
      exitCode = 1;
    } finally {
      // The signal handlers stay until the end: a second Ctrl-C during the cleanup must not
      // kill this process and leave replicas or the directory behind.
      stopping = true;
      for (const replica of running) replica.child.kill("SIGTERM");
      const killer = setTimeout(() => {
        for (const replica of running) replica.child.kill("SIGKILL");
      }, stopGraceMs);
      await Promise.all(running.map((replica) => replica.closed));
      clearTimeout(killer);
      if (values.keep) {
        console.log(`chronon dev: stopped; kept ${dir}`);
      } else {
        rmSync(dir, { recursive: true, force: true });
        console.log(`chronon dev: stopped; removed ${dir}`);
      }
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    return exitCode;
  },
};
