import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { sameRuntimeCommand } from "./storage_common.ts";
import { auditApplications, startWebhookSink } from "../demo/webhook_sink.ts";

const usage = `chronon demo-one-node [--seconds S] [--keep]

A durable bank with a webhook per transfer, crashed on purpose. A child process orders
transfers of examples/bank.ts into the real journal (hash chain, group commit, fdatasync),
applies them with the real kernel, acknowledges each once durable, and executes each
transfer's webhook against a local sink that honours the Idempotency-Key. Halfway the demo
kills the child with SIGKILL (mid-write, effects in flight), restarts it from its disk, and
at the end checks:
  - every acknowledged transfer survived the crash (lost: must be 0);
  - every committed transfer's webhook was applied at the sink (missing: must be 0);
  - no transfer was applied under two ids and no webhook came from an uncommitted event
    (duplicate applications: must be 0);
  - money is conserved.
Exit code 0 only when all hold.

One replica, no network: the smallest setting in which a crash meets the journal and the
outbox. \`chronon demo\` runs the same bank on a three-replica cluster.

  --seconds S   length of the run (default 10)
  --keep        keep the data dir for \`chronon inspect\``;

interface Child {
  readonly process: ChildProcess;
  readonly lines: AsyncIterableIterator<string>;
}

/** `chronon demo`. */
export const command: Command = {
  name: "demo-one-node",
  summary: "one durable node: SIGKILL mid-write, restart, prove nothing was lost or applied twice",
  usage,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: { seconds: { type: "string", default: "10" }, keep: { type: "boolean", default: false }, node: { type: "string" }, sink: { type: "string" } },
        strict: true,
      }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (values.node !== undefined) {
      const { runSingleNode } = await import("../demo/single_node.ts");
      await runSingleNode(values.node, values.sink ?? "", 16);
      return 0;
    }
    const seconds = Number(values.seconds);
    if (!(seconds >= 2 && seconds <= 3600)) throw new UsageError("--seconds must be from 2 to 3600");
    const say = (line: string) => console.log(`demo: ${line}`);
    const dir = mkdtempSync(join(tmpdir(), "chronon-demo-"));
    const dataDir = join(dir, "data");
    const sink = await startWebhookSink();

    const launch = (): Child => {
      const { command, args, cwd } = sameRuntimeCommand(["demo-one-node", "--node", dataDir, "--sink", sink.url]);
      const child = spawn(command, args, { cwd, stdio: ["pipe", "pipe", "inherit"] });
      return { process: child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
    };
    const next = async (child: Child, prefix: string): Promise<string> => {
      for (;;) {
        const { value, done } = await child.lines.next();
        if (done === true) throw new Error(`the bank node exited before '${prefix}'`);
        if (value.startsWith(prefix)) return value;
      }
    };

    let exitCode = 1;
    try {
      say(`data dir ${dataDir}; webhook sink ${sink.url}`);
      let child = launch();
      await next(child, "ready");
      let acked = 0;
      let maxAcked = 0;
      const count = (line: string) => {
        if (!line.startsWith("ack ")) return;
        acked++;
        maxAcked = Math.max(maxAcked, Number(line.slice(4)));
      };
      const pump = async (c: Child, untilMs: number, label: string) => {
        let last = Date.now();
        while (Date.now() < untilMs) {
          const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), Math.max(1, untilMs - Date.now())));
          const line = await Promise.race([c.lines.next(), timeout]);
          if (line === null) break;
          if (line.done === true) throw new Error(`the bank node exited during ${label}`);
          count(line.value);
          if (Date.now() - last >= 1000) {
            last = Date.now();
            say(`${label}: ${acked} transfers acknowledged (durable), ${sink.counts().applied} webhooks applied`);
          }
        }
      };
      const half = (seconds * 1000) / 2;
      await pump(child, Date.now() + half, "running");
      child.process.kill("SIGKILL");
      await new Promise((resolve) => child.process.once("exit", resolve));
      say(`SIGKILL sent mid-write: ${acked} transfers acknowledged so far, highest op ${maxAcked}; ${sink.counts().applied} webhooks applied`);
      child = launch();
      const ready = Number((await next(child, "ready")).slice(6));
      const lost = Math.max(0, maxAcked - ready);
      say(`restarted: recovered the journal through op ${ready} (highest acknowledged ${maxAcked})`);
      await pump(child, Date.now() + half, "after restart");
      child.process.stdin!.write("drain\n");
      say("load stopped; waiting for the outbox to drain");
      let reportLine = "";
      for (;;) {
        const { value, done } = await child.lines.next();
        if (done === true) throw new Error("the bank node exited before its report");
        count(value);
        if (value.startsWith("report ")) {
          reportLine = value.slice(7);
          break;
        }
      }
      await new Promise((resolve) => child.process.once("exit", resolve));
      const report = JSON.parse(reportLine) as { op: number; outbox: number; total: number; transferOps: number[]; rejections: Record<string, number> };
      const committed = new Set(report.transferOps);
      const { missing, doubled } = auditApplications(sink.applications().values(), committed);
      const counts = sink.counts();
      const deposits = 16 * 1_000_000;
      const checks: [string, boolean][] = [
        [`acknowledged transfers lost in the crash: ${lost} (must be 0)`, lost === 0],
        [`missing effects: ${missing} of ${committed.size} committed transfers (must be 0)`, missing === 0],
        [`duplicate applications at the sink: ${doubled} (must be 0)`, doubled === 0],
        [`outbox drained: ${report.outbox} pending (must be 0)`, report.outbox === 0],
        [`balances conserved: total ${report.total}, deposits ${deposits}`, report.total === deposits],
      ];
      console.log("");
      console.log("chronon demo summary (one replica)");
      console.log(`  transfers acknowledged   ${acked}`);
      console.log(`  transfers committed      ${committed.size} (overdrafts are rejected, not committed as transfers)`);
      const rejectedTotal = Object.values(report.rejections).reduce((a, b) => a + b, 0);
      const reasons = Object.entries(report.rejections).map(([code, n]) => `${n} ${code}`).join(", ");
      console.log(`  transfers rejected       ${rejectedTotal}${reasons === "" ? "" : ` (${reasons})`}`);
      console.log(`  crashes                  1 (SIGKILL)`);
      console.log(`  webhooks delivered       ${counts.deliveries} (${counts.duplicateDeliveries} duplicate deliveries, answered without applying again)`);
      console.log(`  webhooks applied         ${counts.applied}`);
      for (const [line, ok] of checks) console.log(`  ${ok ? "ok  " : "FAIL"} ${line}`);
      exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
      console.log(exitCode === 0 ? "demo: every check holds" : `demo: a check FAILED (data kept in ${dir})`);
    } catch (error) {
      console.error(`demo: ${(error as Error).message}`);
    } finally {
      await sink.close();
      if (!values.keep && exitCode === 0) rmSync(dir, { recursive: true, force: true });
      else say(`data kept in ${dataDir} (chronon inspect ${dataDir})`);
    }
    return exitCode;
  },
};
