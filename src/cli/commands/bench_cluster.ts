/**
 * `chronon bench cluster`: committed requests/s and latency of a real 3-replica loopback
 * cluster of examples/kv.ts (three replica processes, real TCP, real disks, every request
 * durable on a quorum before it is acknowledged), driven by closed-loop clients running in
 * their own load process(es), next to the targets of issue 5.
 *
 * The parent starts the replicas and the load processes (this same command with
 * `--worker`), samples each replica's resident memory from /proc, merges the workers'
 * latency histograms and prints the figures. A worker prints one JSON line on stdout.
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, createWriteStream, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { BenchTarget } from "./bench.ts";
import { UsageError } from "../command.ts";
import { runtimeName, runtimeVersion } from "../runtime.ts";
import { sameRuntimeCommand } from "./storage_common.ts";
import { formatLocalCluster } from "./local_cluster.ts";
import { assert } from "../../assert.ts";
import { Client } from "../../client/client.ts";
import { freePort } from "../../net/free_port.ts";

/** Client protocol the load processes use. */
type ClientProtocol = "http" | "binary";

const usage = `chronon bench cluster [--clients C[,C2,...]] [--duration S] [--trials N] [--json]
                      [--protocol binary|http] [--load-processes P] [--value-bytes B] [--keep]
                      [--runtime node|bun|deno]

Starts a 3-replica cluster of examples/kv.ts on loopback (child processes, fresh temp
data dirs, real disk; every request is durable on a quorum before it is acknowledged),
then for each concurrency C runs C closed-loop clients (one request in flight each, the
next sent on its reply) doing kv puts, in P load processes of their own. Prints committed
requests/s and p50/p99/p999 latency, and each replica's peak resident memory, next to the
targets (issue 5):
  1 client:    >= 1,500 requests/s, p50 < 1 ms
  64 clients:  >= 30,000 requests/s, p99 < 20 ms
  replica resident memory under that load < 300 MB
The load processes share the machine's cores with the replicas.

  --clients LIST        concurrencies to measure (default 1,64)
  --duration S          measured seconds per trial (default 5), after 1 s of warm-up
  --trials N            trials per concurrency; medians are printed (default 1)
  --protocol P          client protocol: binary (CBOR frames on the replicas' client
                        ports, the server-side client's fast path; default) or http
                        (the HTTP API, CBOR bodies, through fetch)
  --load-processes P    processes the clients are spread over (default 1)
  --value-bytes B       size of each put's value (default 256, as the etcd figures);
                        client k puts to its own 1024 keys round robin, in every trial
  --keep                keep the temp dir (data dirs, replica logs)
  --json                one JSON object on stdout instead of the table

Exit code 0 when every target for the concurrencies measured is met, 1 otherwise.`;

/** The targets of issue 5. */
export const clusterTargets = {
  oneClientRequestsPerSecondMin: 1500,
  oneClientP50MsMax: 1,
  manyClients: 64,
  manyClientsRequestsPerSecondMin: 30_000,
  manyClientsP99MsMax: 20,
  replicaRssBytesMax: 300 * 1000 * 1000,
} as const;

/** Concurrency the bench accepts at most (sessions per cluster are bounded too). */
const clientsMax = 1024;
const warmupMs = 1000;
/** Keys each client puts to, round robin (the same ones in every trial). */
const keysPerClient = 1024;

/**
 * Latencies in logarithmic buckets 1% wide (from 1 µs), so that load processes can be
 * merged exactly and memory stays fixed however many requests are recorded.
 */
export class LatencyHistogram {
  /** Buckets per factor e: ln(1.01) wide each. */
  static readonly bucketsPerE = 1 / Math.log(1.01);
  /** Buckets: enough for latencies up to e^14 µs (about 20 minutes). */
  static readonly bucketCount = Math.ceil(14 * LatencyHistogram.bucketsPerE) + 1;
  readonly #counts = new Float64Array(LatencyHistogram.bucketCount);
  #total = 0;

  /** Number of latencies recorded. */
  get count(): number {
    return this.#total;
  }

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    assert(ms >= 0, "latencies are not negative");
    const us = Math.max(1, ms * 1000);
    const index = Math.min(LatencyHistogram.bucketCount - 1, Math.floor(Math.log(us) * LatencyHistogram.bucketsPerE));
    this.#counts[index]! += 1;
    this.#total += 1;
  }

  /** The latency (ms, bucket midpoint) below which `q` of the recorded ones fall; 0 when empty. */
  quantileMs(q: number): number {
    assert(q > 0 && q <= 1, "quantile in (0, 1]");
    if (this.#total === 0) return 0;
    const rank = Math.ceil(q * this.#total);
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.exp((i + 0.5) / LatencyHistogram.bucketsPerE) / 1000;
    }
    assert(false, "rank within the total");
  }

  /** Sparse form for JSON: [index, count, index, count, …]. */
  toJSON(): number[] {
    const out: number[] = [];
    this.#counts.forEach((n, i) => {
      if (n > 0) out.push(i, n);
    });
    return out;
  }

  /** Adds a histogram in its sparse form. */
  merge(sparse: readonly number[]): void {
    assert(sparse.length % 2 === 0, "sparse histogram in pairs");
    for (let i = 0; i < sparse.length; i += 2) {
      const index = sparse[i]!;
      const n = sparse[i + 1]!;
      assert(Number.isInteger(index) && index >= 0 && index < this.#counts.length && n > 0, "sparse bucket in range");
      this.#counts[index]! += n;
      this.#total += n;
    }
  }
}

/** What one worker reports. */
interface WorkerResult {
  readonly completed: number;
  readonly errors: number;
  readonly errorSample: string | null;
  readonly measuredMs: number;
  readonly histogram: number[];
  /** CPU time the load process used from the start of the measured window to its end. */
  readonly cpuMs: number;
}

/** Figures of one trial at one concurrency. */
export interface TrialFigures {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly errors: number;
  /** CPU time per committed request (µs): each replica's, and the load processes'. */
  readonly replicaCpuUsPerRequest: readonly number[];
  readonly loadCpuUsPerRequest: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resident set (current, peak) of a process in bytes, from /proc; null when unreadable. */
export function residentBytes(pid: number): { rss: number; hwm: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return match === null ? 0 : Number(match[1]) * 1024;
  };
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

/**
 * The disk's own pace in this run, for context: one 512-byte write + fdatasync at a time
 * for `ms`, in `directory`. Flushes/s and median flush time. (The replicas' fsyncs, and
 * other people's on a shared machine, compete with it.)
 */
export function rawFlushRate(directory: string, ms: number): { perSecond: number; p50Ms: number } {
  const path = join(directory, "raw-flush-probe");
  const fd = openSync(path, "w");
  const buffer = new Uint8Array(512).fill(0x5a);
  const times: number[] = [];
  const started = performance.now();
  try {
    while (performance.now() - started < ms) {
      const t = performance.now();
      writeSync(fd, buffer, 0, buffer.length, times.length * buffer.length);
      fdatasyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return { perSecond: times.length / ((performance.now() - started) / 1000), p50Ms: median(times) };
}

/** CPU time (user + system) a process has used, in ms, from /proc; null when unreadable. */
export function cpuMsOf(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks * 10 : null; // USER_HZ is 100 on Linux
}

function median(values: readonly number[]): number {
  assert(values.length > 0, "median of at least one value");
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function parseList(raw: string): number[] {
  const list = raw.split(",").map((part) => Number(part.trim()));
  for (const c of list) {
    if (!Number.isInteger(c) || c < 1 || c > clientsMax) throw new UsageError(`--clients: each concurrency must be an integer from 1 to ${clientsMax}`);
  }
  return list;
}

function positive(raw: string, name: string, max: number): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > max) throw new UsageError(`${name} must be a number from 1 to ${max}`);
  return value;
}

/** The load process: C closed-loop clients for warm-up + duration; prints one JSON line. */
async function runWorker(options: {
  addresses: string[];
  clients: number;
  durationMs: number;
  valueBytes: number;
  protocol: ClientProtocol;
  /** Index of this process's first client among all the run's clients (keys are per client). */
  id: number;
}): Promise<number> {
  const value = "v".repeat(options.valueBytes);
  const clients = Array.from({ length: options.clients }, () =>
    new Client({ addresses: options.addresses, deadlineMs: 20_000 }));
  await Promise.all(clients.map((client) => client.register()));
  const histogram = new LatencyHistogram();
  let completed = 0;
  let errors = 0;
  let errorSample: string | null = null;
  const started = performance.now();
  const measureFrom = started + warmupMs;
  const end = measureFrom + options.durationMs;
  // The parent samples the replicas' CPU time at these two lines.
  let cpuAtStart = process.cpuUsage();
  let ended = false;
  const markEnd = () => {
    if (ended) return;
    ended = true;
    process.stdout.write("measure-end\n");
  };
  const marks = [
    setTimeout(() => {
      cpuAtStart = process.cpuUsage();
      process.stdout.write("measure-start\n");
    }, warmupMs),
    setTimeout(markEnd, warmupMs + options.durationMs),
  ];
  const loops = clients.map(async (client, c) => {
    let n = 0;
    for (;;) {
      const sent = performance.now();
      if (sent >= end) {
        markEnd(); // a loop may see the end before the timer fires
        return;
      }
      // Client k of the run overwrites its own 1024 keys, in every trial: the state stays
      // at clients × 1024 keys however long the bench runs (memory is one of the targets).
      const key = `c${options.id + c}k${n++ % keysPerClient}`;
      try {
        await client.submit({ type: "put", key, value });
        const done = performance.now();
        if (sent >= measureFrom && done <= end) {
          completed++;
          histogram.record(done - sent);
        }
      } catch (error) {
        errors++;
        errorSample ??= (error as Error).message;
      }
    }
  });
  await Promise.all(loops);
  markEnd();
  const cpu = process.cpuUsage(cpuAtStart);
  for (const mark of marks) clearTimeout(mark);
  for (const client of clients) client.close();
  const result: WorkerResult = {
    completed, errors, errorSample, measuredMs: options.durationMs, histogram: histogram.toJSON(), cpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
  return 0;
}

interface ReplicaProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  rssMaxBytes: number;
}

async function statusOf(url: string): Promise<{ status: string; view: number; primary: number; replica: number } | null> {
  try {
    const response = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(1000) });
    return await response.json() as { status: string; view: number; primary: number; replica: number };
  } catch {
    return null;
  }
}

/** Runs one worker process to completion and returns its result. */
function runLoad(args: string[], dir: string, label: string, onMark: (mark: "measure-start" | "measure-end") => void): Promise<WorkerResult> {
  const { command, args: full, cwd } = sameRuntimeCommand(["bench", "cluster", "--worker", ...args]);
  const child = spawn(command, full, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  const log = createWriteStream(join(dir, `${label}.log`), { flags: "a" });
  child.stderr?.pipe(log);
  let out = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    out += chunk;
    for (;;) {
      const newline = out.indexOf("\n");
      if (newline < 0 || !out.startsWith("measure-")) break;
      const mark = out.slice(0, newline);
      out = out.slice(newline + 1);
      if (mark === "measure-start" || mark === "measure-end") onMark(mark);
    }
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || line === "") {
        reject(new Error(`load process ${label} exited with code ${code} (log in ${join(dir, `${label}.log`)})`));
        return;
      }
      resolve(JSON.parse(line) as WorkerResult);
    });
  });
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function fmtMs(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

const verdict = (met: boolean) => (met ? "PASS" : "MISS");

async function runBench(options: {
  concurrencies: number[];
  durationMs: number;
  trials: number;
  protocol: ClientProtocol;
  loadProcesses: number;
  valueBytes: number;
  keep: boolean;
  json: boolean;
}): Promise<number> {
  const say = options.json ? (_line: string) => {} : (line: string) => console.log(line);
  const dir = mkdtempSync(join(tmpdir(), "chronon-bench-cluster-"));
  const ports = await Promise.all(Array.from({ length: 9 }, () => freePort()));
  const replicas = [0, 1, 2].map((i) => ({
    bus: `127.0.0.1:${ports[i]}`,
    api: `127.0.0.1:${ports[i + 3]}`,
    clientPort: `127.0.0.1:${ports[i + 6]}`,
    dataDir: join(dir, `replica-${i}`),
  }));
  const configPath = join(dir, "cluster.json");
  writeFileSync(configPath, JSON.stringify({
    cluster: `bench-${Date.now()}`,
    replicas,
    secret: { value: "bench-secret-" + Math.random().toString(36).slice(2) + "-0123456789" },
    clientSessionsMax: 4096,
    // Loopback only, torn down at the end: open writes keep token handling out of the figures.
    token: "none",
  }, null, 2));
  const apiUrls = replicas.map((r) => `http://${r.api}`);
  const addresses = options.protocol === "binary" ? replicas.map((r) => `chronon://${r.clientPort}`) : apiUrls;
  const kvPath = fileURLToPath(new URL("../../../examples/kv.ts", import.meta.url));
  const processes: ReplicaProcess[] = [];
  let sampler: ReturnType<typeof setInterval> | null = null;
  try {
    await formatLocalCluster(configPath);
    for (let i = 0; i < 3; i++) {
      const { command, args, cwd } = sameRuntimeCommand(["start", "--config", configPath, "--replica", String(i), "--app", kvPath]);
      const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
      const log = createWriteStream(join(dir, `replica-${i}.log`), { flags: "a" });
      child.stdout?.pipe(log);
      child.stderr?.pipe(log);
      processes.push({ child, exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))), rssMaxBytes: 0 });
    }
    // Ready once all three are normal in one view with a primary: the bus is connected.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const statuses = await Promise.all(apiUrls.map(statusOf));
      const normal = statuses.filter((s) => s !== null && s.status === "normal");
      if (normal.length === 3 && normal.every((s) => s!.view === normal[0]!.view && s!.primary === normal[0]!.primary)) break;
      if (Date.now() > deadline) throw new Error(`the cluster did not come up within 30 s (logs in ${dir})`);
      await sleep(100);
    }
    sampler = setInterval(() => {
      for (const p of processes) {
        const resident = p.child.pid === undefined ? null : residentBytes(p.child.pid);
        if (resident !== null) p.rssMaxBytes = Math.max(p.rssMaxBytes, resident.rss, resident.hwm);
      }
    }, 200);

    const runtime = `${runtimeName()} ${runtimeVersion()}`;
    const rawBefore = rawFlushRate(dir, 1000);
    say(`bench cluster: 3 replicas of examples/kv.ts on loopback (${runtime}), real disks in ${tmpdir()}, every put durable on a quorum before its reply`);
    say(`  ${options.protocol} clients in ${options.loadProcesses} load process(es) of their own; clients and replicas share this ${cpus().length}-core machine`);
    say(`  this disk right now: ${fmtInt(rawBefore.perSecond)} write+fdatasync/s one at a time (p50 ${fmtMs(rawBefore.p50Ms)} ms), measured before the load`);
    say(`  ${options.durationMs / 1000} s measured per trial after ${warmupMs / 1000} s warm-up, ${options.trials} trial(s) per concurrency (medians), ${options.valueBytes}-byte values`);

    const results: { clients: number; trials: TrialFigures[]; median: TrialFigures; targets: Record<string, boolean> }[] = [];
    let allMet = true;
    let workerId = 0;
    for (const clients of options.concurrencies) {
      const trials: TrialFigures[] = [];
      for (let t = 0; t < options.trials; t++) {
        const processesUsed = Math.min(options.loadProcesses, clients);
        const runs: Promise<WorkerResult>[] = [];
        // Replica CPU over the measured window: sampled when the first load process starts
        // measuring and when the first one stops (they all run the same window).
        const cpuStart: (number | null)[] = [null, null, null];
        const cpuEnd: (number | null)[] = [null, null, null];
        const onMark = (mark: "measure-start" | "measure-end") => {
          const target = mark === "measure-start" ? cpuStart : cpuEnd;
          if (target[0] !== null) return;
          processes.forEach((p, i) => {
            target[i] = p.child.pid === undefined ? null : cpuMsOf(p.child.pid);
          });
        };
        let firstClient = 0;
        for (let p = 0; p < processesUsed; p++) {
          const share = Math.floor(clients / processesUsed) + (p < clients % processesUsed ? 1 : 0);
          const id = workerId++;
          runs.push(runLoad([
            "--addresses", addresses.join(","), "--clients", String(share), "--duration", String(options.durationMs / 1000),
            "--value-bytes", String(options.valueBytes), "--protocol", options.protocol, "--worker-id", String(firstClient),
          ], dir, `load-${id}`, onMark));
          firstClient += share;
        }
        const outcomes = await Promise.all(runs);
        const histogram = new LatencyHistogram();
        let completed = 0;
        let errors = 0;
        for (const outcome of outcomes) {
          histogram.merge(outcome.histogram);
          completed += outcome.completed;
          errors += outcome.errors;
          if (outcome.errorSample !== null) say(`  (a load process saw ${outcome.errors} errors, e.g. ${outcome.errorSample})`);
        }
        const loadCpuMs = outcomes.reduce((sum, o) => sum + o.cpuMs, 0);
        const perRequestUs = (ms: number | null) => (ms === null || completed === 0 ? NaN : (ms * 1000) / completed);
        const figures: TrialFigures = {
          replicaCpuUsPerRequest: cpuStart.map((start, i) => perRequestUs(start === null || cpuEnd[i] === null ? null : cpuEnd[i]! - start)),
          loadCpuUsPerRequest: perRequestUs(loadCpuMs),
          requestsPerSecond: completed / (options.durationMs / 1000),
          p50Ms: histogram.quantileMs(0.5),
          p99Ms: histogram.quantileMs(0.99),
          p999Ms: histogram.quantileMs(0.999),
          errors,
        };
        trials.push(figures);
        say(`  trial ${t + 1}: ${String(clients).padStart(3)} client(s) ${fmtInt(figures.requestsPerSecond).padStart(7)} req/s  p50 ${fmtMs(figures.p50Ms)} ms  p99 ${fmtMs(figures.p99Ms)} ms  p999 ${fmtMs(figures.p999Ms)} ms  errors ${errors}  CPU/request: replicas ${figures.replicaCpuUsPerRequest.map((us) => fmtInt(us)).join(", ")} µs, load ${fmtInt(figures.loadCpuUsPerRequest)} µs`);
      }
      const med: TrialFigures = {
        requestsPerSecond: median(trials.map((f) => f.requestsPerSecond)),
        p50Ms: median(trials.map((f) => f.p50Ms)),
        p99Ms: median(trials.map((f) => f.p99Ms)),
        p999Ms: median(trials.map((f) => f.p999Ms)),
        errors: trials.reduce((sum, f) => sum + f.errors, 0),
        replicaCpuUsPerRequest: [0, 1, 2].map((i) => median(trials.map((f) => f.replicaCpuUsPerRequest[i]!))),
        loadCpuUsPerRequest: median(trials.map((f) => f.loadCpuUsPerRequest)),
      };
      const targets: Record<string, boolean> = {};
      let line = `${String(clients).padStart(3)} client(s): ${fmtInt(med.requestsPerSecond).padStart(7)} req/s`;
      if (clients === 1) {
        targets.requestsPerSecond = med.requestsPerSecond >= clusterTargets.oneClientRequestsPerSecondMin;
        targets.p50 = med.p50Ms < clusterTargets.oneClientP50MsMax;
        line += ` (target >= ${fmtInt(clusterTargets.oneClientRequestsPerSecondMin)}: ${verdict(targets.requestsPerSecond)})`;
        line += `  p50 ${fmtMs(med.p50Ms)} ms (target < ${clusterTargets.oneClientP50MsMax} ms: ${verdict(targets.p50)})  p99 ${fmtMs(med.p99Ms)} ms  p999 ${fmtMs(med.p999Ms)} ms`;
      } else if (clients === clusterTargets.manyClients) {
        targets.requestsPerSecond = med.requestsPerSecond >= clusterTargets.manyClientsRequestsPerSecondMin;
        targets.p99 = med.p99Ms < clusterTargets.manyClientsP99MsMax;
        line += ` (target >= ${fmtInt(clusterTargets.manyClientsRequestsPerSecondMin)}: ${verdict(targets.requestsPerSecond)})`;
        line += `  p50 ${fmtMs(med.p50Ms)} ms  p99 ${fmtMs(med.p99Ms)} ms (target < ${clusterTargets.manyClientsP99MsMax} ms: ${verdict(targets.p99)})  p999 ${fmtMs(med.p999Ms)} ms`;
      } else {
        line += ` (no target)  p50 ${fmtMs(med.p50Ms)} ms  p99 ${fmtMs(med.p99Ms)} ms  p999 ${fmtMs(med.p999Ms)} ms`;
      }
      if (med.errors > 0) line += `  errors ${med.errors}`;
      line += `  CPU/request: replicas ${med.replicaCpuUsPerRequest.map((us) => fmtInt(us)).join(", ")} µs, load ${fmtInt(med.loadCpuUsPerRequest)} µs`;
      say(line);
      for (const met of Object.values(targets)) allMet &&= met;
      results.push({ clients, trials, median: med, targets });
    }
    if (sampler !== null) clearInterval(sampler);
    sampler = null;
    for (const p of processes) {
      const resident = p.child.pid === undefined ? null : residentBytes(p.child.pid);
      if (resident !== null) p.rssMaxBytes = Math.max(p.rssMaxBytes, resident.hwm);
    }
    const rssMet = processes.every((p) => p.rssMaxBytes > 0 && p.rssMaxBytes < clusterTargets.replicaRssBytesMax);
    allMet &&= rssMet;
    say(`replica peak resident memory (VmHWM): ${processes.map((p, i) => `r${i} ${(p.rssMaxBytes / 1e6).toFixed(0)} MB`).join(", ")} (target < ${clusterTargets.replicaRssBytesMax / 1e6} MB: ${verdict(rssMet)})`);
    for (let i = 0; i < processes.length; i++) {
      if (processes[i]!.child.exitCode !== null) {
        allMet = false;
        say(`replica ${i} exited early with code ${processes[i]!.child.exitCode} (log in ${dir})`);
      }
    }
    if (options.json) {
      console.log(JSON.stringify({
        runtime,
        protocol: options.protocol,
        loadProcesses: options.loadProcesses,
        durationSeconds: options.durationMs / 1000,
        valueBytes: options.valueBytes,
        cores: cpus().length,
        results,
        replicaRssPeakBytes: processes.map((p) => p.rssMaxBytes),
        rawFlushesPerSecond: rawBefore.perSecond,
        rawFlushP50Ms: rawBefore.p50Ms,
        targets: clusterTargets,
        allTargetsMet: allMet,
      }));
    }
    return allMet ? 0 : 1;
  } finally {
    if (sampler !== null) clearInterval(sampler);
    for (const p of processes) p.child.kill("SIGTERM");
    await Promise.race([Promise.all(processes.map((p) => p.exited)), sleep(5000)]);
    for (const p of processes) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    if (options.keep) say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** The `cluster` target of `chronon bench`. */
export const bench: BenchTarget = {
  summary: "3-replica loopback cluster of the kv example: requests/s and latency at 1 and 64 clients",
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          clients: { type: "string", default: "1,64" },
          duration: { type: "string", default: "5" },
          trials: { type: "string", default: "1" },
          protocol: { type: "string", default: "binary" },
          "load-processes": { type: "string", default: "1" },
          "value-bytes": { type: "string", default: "256" },
          keep: { type: "boolean", default: false },
          json: { type: "boolean", default: false },
          help: { type: "boolean", short: "h", default: false },
          worker: { type: "boolean", default: false },
          "worker-id": { type: "string", default: "0" },
          addresses: { type: "string" },
        },
        strict: true,
      }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const protocol = values.protocol;
    if (protocol !== "http" && protocol !== "binary") throw new UsageError("--protocol must be http or binary");
    const durationMs = positive(values.duration, "--duration", 3600) * 1000;
    const valueBytes = Number(values["value-bytes"]);
    if (!Number.isInteger(valueBytes) || valueBytes < 0 || valueBytes > 60_000) throw new UsageError("--value-bytes must be an integer from 0 to 60000");
    if (values.worker) {
      if (values.addresses === undefined) throw new UsageError("--worker needs --addresses");
      const clients = parseList(values.clients);
      if (clients.length !== 1) throw new UsageError("--worker takes one concurrency");
      return await runWorker({
        addresses: values.addresses.split(","), clients: clients[0]!, durationMs, valueBytes, protocol, id: Number(values["worker-id"]),
      });
    }
    const trials = positive(values.trials, "--trials", 100);
    const loadProcesses = positive(values["load-processes"], "--load-processes", 16);
    if (!Number.isInteger(trials) || !Number.isInteger(loadProcesses)) throw new UsageError("--trials and --load-processes must be integers");
    return await runBench({
      concurrencies: parseList(values.clients), durationMs, trials, protocol, loadProcesses, valueBytes, keep: values.keep, json: values.json,
    });
  },
};
