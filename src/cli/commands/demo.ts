import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { sameRuntimeCommand } from "./storage_common.ts";
import { formatLocalCluster } from "./local_cluster.ts";
import { auditApplications, startWebhookSink } from "../demo/webhook_sink.ts";
import { Client } from "../../client/client.ts";
import { OutcomeUnknownError, RejectedError } from "../../client/errors.ts";
import { freePort } from "../../net/free_port.ts";

const usage = `chronon demo [--seconds S] [--clients C] [--keep]

Runs a three-replica cluster of examples/bank.ts on loopback (three processes, real TCP,
real disks) with a local webhook sink, and drives it with C concurrent clients making
transfers for S seconds (default 20 s, 8 clients). Halfway it kills the primary with
SIGKILL, keeps going through the view change, then restarts the killed replica.

At the end it checks, and prints:
  - requests acknowledged, rejected (overdraft) and of unknown outcome, view changes;
  - every committed transfer's webhook was applied at the sink (missing: must be 0);
  - no transfer was applied under two effect ids, and no webhook came from an event that
    never committed (duplicate applications: must be 0);
  - deliveries the sink answered as duplicates (allowed: delivery is at least once);
  - money is conserved (the total of all balances equals the deposits).
Exit code 0 only when all hold.

  --keep   keep the temporary directory (data dirs, replica logs) for inspection`;

interface ReplicaProcess {
  child: ChildProcess;
  index: number;
  exited: Promise<number | null>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function getJson(url: string, timeoutMs = 1000): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return await response.json();
}

interface Status {
  replica: number;
  status: string;
  view: number;
  op: number;
  commit: number;
  primary: number;
}

/** `chronon demo`: a three-replica bank with a primary killed halfway. */
export const command: Command = {
  name: "demo",
  summary: "run a 3-replica bank cluster, SIGKILL its primary halfway, prove nothing was lost or doubled",
  usage,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: { seconds: { type: "string", default: "20" }, clients: { type: "string", default: "8" }, keep: { type: "boolean", default: false } },
        strict: true,
      }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const seconds = Number(values.seconds);
    const clientCount = Number(values.clients);
    if (!(seconds >= 4 && seconds <= 3600)) throw new UsageError("--seconds must be from 4 to 3600");
    if (!Number.isInteger(clientCount) || clientCount < 1 || clientCount > 256) throw new UsageError("--clients must be from 1 to 256");

    const dir = mkdtempSync(join(tmpdir(), "chronon-demo-"));
    const say = (line: string) => console.log(`demo: ${line}`);
    const sink = await startWebhookSink();
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const replicas = [0, 1, 2].map((i) => ({
      bus: `127.0.0.1:${ports[i]}`,
      api: `127.0.0.1:${ports[i + 3]}`,
      dataDir: join(dir, `replica-${i}`),
    }));
    const configPath = join(dir, "cluster.json");
    // Writes need the token (the safe default): the demo makes one and gives it to its clients.
    const token = randomBytes(16).toString("hex");
    writeFileSync(configPath, JSON.stringify({
      cluster: `demo-${Date.now()}`,
      replicas,
      secret: { value: randomBytes(24).toString("hex") },
      token: { value: token },
      checkpointIntervalOps: 1024,
    }, null, 2));
    const apps = replicas.map((r) => `http://${r.api}`);
    const bankPath = fileURLToPath(new URL("../../../examples/bank.ts", import.meta.url));
    const processes: (ReplicaProcess | null)[] = [null, null, null];

    const launch = (index: number): ReplicaProcess => {
      const args = ["start", "--config", configPath, "--replica", String(index), "--app", bankPath];
      const { command, args: full, cwd } = sameRuntimeCommand(args);
      const child = spawn(command, full, { cwd, stdio: ["ignore", "pipe", "pipe"] });
      const logFile = createWriteStream(join(dir, `replica-${index}.log`), { flags: "a" });
      child.stdout?.pipe(logFile);
      child.stderr?.pipe(logFile);
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      return { child, index, exited };
    };

    const statusOf = async (index: number): Promise<Status | null> => {
      try {
        return await getJson(`${apps[index]}/v1/status`) as Status;
      } catch {
        return null;
      }
    };
    const primaryNow = async (): Promise<Status | null> => {
      for (let i = 0; i < 3; i++) {
        const status = await statusOf(i);
        if (status !== null && status.status === "normal" && status.primary === status.replica) return status;
      }
      return null;
    };
    const waitFor = async <T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const value = await probe();
        if (value !== null) return value;
        await sleep(100);
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (logs in ${dir})`);
    };

    let exitCode = 1;
    try {
      say(`data and logs in ${dir}; webhook sink at ${sink.url}`);
      await formatLocalCluster(configPath);
      for (let i = 0; i < 3; i++) processes[i] = launch(i);
      const first = await waitFor("a primary", 20_000, primaryNow);
      say(`3 replicas up; replica ${first.replica} is primary of view ${first.view}`);

      const admin = new Client<typeof import("../../../examples/bank.ts").default>({ addresses: apps, token });
      await admin.submit({ type: "configure", webhookUrl: sink.url });
      const accounts = Array.from({ length: 16 }, (_, i) => `acct-${i}`);
      const depositEach = 1_000_000;
      for (const account of accounts) {
        await admin.submit({ type: "open", account });
        await admin.submit({ type: "deposit", account, amount: depositEach });
      }
      const totalExpected = accounts.length * depositEach;
      say(`opened ${accounts.length} accounts with ${depositEach} each; ${clientCount} clients transfer for ${seconds} s`);

      let acknowledged = 0;
      let rejected = 0;
      let unknown = 0;
      let running = true;
      const loops = Array.from({ length: clientCount }, async (_, c) => {
        const client = new Client<typeof import("../../../examples/bank.ts").default>({ addresses: apps, token, deadlineMs: 15_000 });
        let n = c;
        while (running) {
          n = (n * 1103515245 + 12345) % 2147483648;
          const from = accounts[n % accounts.length]!;
          const to = accounts[(n >> 8) % accounts.length]!;
          if (from === to) continue;
          try {
            await client.submit({ type: "transfer", from, to, amount: 1 + (n % 500) });
            acknowledged++;
          } catch (error) {
            if (error instanceof RejectedError) rejected++;
            else if (error instanceof OutcomeUnknownError) unknown++;
            else throw error;
          }
        }
      });

      const started = Date.now();
      const progress = setInterval(() => {
        const counts = sink.counts();
        say(`${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s  acknowledged ${acknowledged}  rejected ${rejected}  unknown ${unknown}  webhooks applied ${counts.applied}`);
      }, 2000);
      let viewChanges = 0;
      try {
        await sleep((seconds * 1000) / 2);
        const victim = await waitFor("the primary", 10_000, primaryNow);
        const killedAt = Date.now();
        processes[victim.replica]!.child.kill("SIGKILL");
        await processes[victim.replica]!.exited;
        say(`SIGKILL sent to the primary, replica ${victim.replica} (view ${victim.view})`);
        const next = await waitFor("a new primary", 20_000, async () => {
          const status = await primaryNow();
          return status !== null && status.view > victim.view ? status : null;
        });
        viewChanges = next.view - victim.view;
        say(`replica ${next.replica} is primary of view ${next.view} after ${Date.now() - killedAt} ms`);
        await sleep(2000);
        processes[victim.replica] = launch(victim.replica);
        say(`replica ${victim.replica} restarted from its disk`);
        await sleep(Math.max(0, started + seconds * 1000 - Date.now()));
      } finally {
        running = false;
        await Promise.allSettled(loops);
        clearInterval(progress);
      }

      say("load stopped; waiting for the outbox to drain and the replicas to converge");
      await waitFor("every pending effect to be acknowledged", 30_000, async () => {
        const primary = await primaryNow();
        if (primary === null) return null;
        const page = await getJson(`${apps[primary.replica]}/v1/effects?status=pending&limit=1`).catch(() => null) as { effects?: unknown[] } | null;
        return page !== null && Array.isArray(page.effects) && page.effects.length === 0 ? true : null;
      });
      await waitFor("all three replicas to reach the same commit", 30_000, async () => {
        const statuses = await Promise.all([0, 1, 2].map(statusOf));
        if (statuses.some((s) => s === null)) return null;
        const commits = statuses.map((s) => s!.commit);
        return commits.every((c) => c === commits[0]) ? true : null;
      });

      // Every committed transfer is in the "transfers" channel, with its op.
      const committedOps = new Set<number>();
      let cursor = 0;
      for (;;) {
        const primary = await waitFor("the primary", 10_000, primaryNow);
        const page = await getJson(`${apps[primary.replica]}/v1/channels/transfers?cursor=${cursor}&limit=1000`) as { entries: { cursor: number; payload: { op: number } }[]; next: number };
        for (const entry of page.entries) committedOps.add(entry.payload.op);
        if (page.entries.length === 0 || page.next === cursor) break;
        cursor = page.next;
      }
      const { missing, doubled } = auditApplications(sink.applications().values(), committedOps);
      const total = await admin.query({ type: "total" }) as number;
      const counts = sink.counts();
      const transfersWithinBounds = committedOps.size >= acknowledged && committedOps.size <= acknowledged + unknown;

      const checks: [string, boolean][] = [
        [`missing effects: ${missing} (must be 0)`, missing === 0],
        [`duplicate applications at the sink: ${doubled} (must be 0)`, doubled === 0],
        [`balances conserved: total ${total}, deposits ${totalExpected}`, total === totalExpected],
        [`committed transfers ${committedOps.size} between acknowledged ${acknowledged} and acknowledged + unknown ${acknowledged + unknown}`, transfersWithinBounds],
        [`deliveries without an Idempotency-Key: ${counts.withoutKey} (must be 0)`, counts.withoutKey === 0],
      ];
      console.log("");
      console.log("chronon demo summary");
      console.log(`  requests acknowledged        ${acknowledged} transfers (+ ${accounts.length * 2 + 1} setup requests)`);
      console.log(`  rejected by the application  ${rejected} (overdrafts: definite, not applied)`);
      console.log(`  outcome unknown at deadline  ${unknown}`);
      console.log(`  view changes                 ${viewChanges}`);
      console.log(`  webhooks delivered           ${counts.deliveries} (${counts.duplicateDeliveries} duplicate deliveries, answered without applying)`);
      console.log(`  webhooks applied             ${counts.applied}`);
      for (const [line, ok] of checks) console.log(`  ${ok ? "ok  " : "FAIL"} ${line}`);
      exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
      console.log(exitCode === 0 ? "demo: every check holds" : `demo: a check FAILED (logs in ${dir})`);
    } catch (error) {
      console.error(`demo: ${(error as Error).message}`);
      exitCode = 1;
    } finally {
      for (const p of processes) p?.child.kill("SIGKILL");
      await Promise.allSettled(processes.map((p) => p?.exited));
      await sink.close();
      if (!values.keep && exitCode === 0) rmSync(dir, { recursive: true, force: true });
    }
    return exitCode;
  },
};
