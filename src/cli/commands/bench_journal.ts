/**
 * `chronon bench journal`: durable appends/s of the journal for 1 and 64 concurrent
 * appenders, 128 B and 4 KiB bodies, per backend, next to the raw limits measured in the
 * same run on the same file system; optionally the time to recover a 1 GiB journal.
 * @module
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import type { BenchTarget } from "./bench.ts";
import { UsageError } from "../command.ts";
import { runtimeName, runtimeVersion } from "../runtime.ts";
import { checksumImplementation } from "../../codec/checksum.ts";
import { encodeEntry, entryHeaderSize, rootEntry } from "../../codec/entry_header.ts";
import { clusterIdBytes } from "../../storage/cluster_id.ts";
import { formatDataDir, openDataDir } from "../../storage/data_dir.ts";
import type { Disk } from "../../storage/disk.ts";
import { backendsFor, defaultDisk, sameRuntimeCommand, ttyProgress } from "./storage_common.ts";
import type { DiskBackend } from "./storage_common.ts";

const usage = `chronon bench journal [--json] [--backend portable|uring|direct-sync|all] [--seconds S] [--trials N] [--recovery] [--recovery-mib M]

Durable appends per second (each counted only once its promise resolved, i.e. after the
barrier) for 1 appender and for 64 concurrent appenders, with 128 B and 4 KiB bodies (plus
the 128-byte header), on each backend; next to the raw limits measured in the same run in
the same temp dir: a plain write + fdatasync loop of one record, and one coalesced write +
fdatasync per 64-record batch. Like the journal's segments, the raw loops append to a
file that grows with every write (neither side preallocates: an fdatasync that must also
commit a new file size costs more than one into preallocated space). Medians of several
short trials (the machine is noisy); every line ends PASS or MISS against its target.
Entries are encoded before timing, so the figures are the journal's, not the codec's.

Targets: 1 appender ≥ 0.8 × raw write+fdatasync; 64 appenders of 128 B ≥ 50,000/s and
≥ 0.6 × the coalesced raw limit.

  --backend B       portable, uring, direct-sync (the shim's pwrite + fdatasync without a
                    ring) or all (default: every backend available here)
  --seconds S       length of one trial (default 1)
  --trials N        trials per figure (default 3)
  --recovery        also time the recovery scan of a journal of --recovery-mib MiB
                    (default 1024) of 4 KiB entries, written once to a temp dir (target < 3 s)
  --json            one JSON object on stdout`;

const cluster = clusterIdBytes(0xbe_4c_4n);
const client = new Uint8Array(16).fill(7);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Removes a trial's files and syncs their directory, so that the file system has finished
 * freeing the blocks before the next trial starts (freeing tens of megabytes during a trial
 * cost it a third of its flushes/s here).
 */
function removeSettled(directory: string, path: string): void {
  fs.rmSync(path, { recursive: true, force: true });
  const fd = fs.openSync(directory, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A plain write + fdatasync loop: `batch` records of `recordSize` per write. Records/s. */
function rawRate(directory: string, recordSize: number, batch: number, seconds: number): number {
  const path = join(directory, `raw-${recordSize}-${batch}`);
  const fd = fs.openSync(path, "w");
  const buffer = new Uint8Array(recordSize * batch).fill(0x5a);
  let position = 0;
  let records = 0;
  const end = performance.now() + seconds * 1000;
  try {
    while (performance.now() < end) {
      fs.writeSync(fd, buffer, 0, buffer.length, position);
      fs.fdatasyncSync(fd);
      position += buffer.length;
      records += batch;
    }
  } finally {
    fs.closeSync(fd);
    removeSettled(directory, path);
  }
  return records / seconds;
}

/**
 * Entries op 1, 2, … of the bench cluster, chained from its root, with one shared body per
 * size: encoded once before timing (encodeEntry hashes twice, about 6 µs here), so the
 * figures measure the journal rather than the codec. Past the pool, entries are encoded on
 * the fly.
 */
class EntryPool {
  readonly body: Uint8Array;
  readonly #headers: Uint8Array[] = [];

  constructor(bodySize: number, count: number) {
    this.body = new Uint8Array(bodySize).fill(0x33);
    for (let op = 1; op <= count; op++) this.#headers.push(this.#encode(op));
  }

  header(op: number): Uint8Array {
    while (this.#headers.length < op) this.#headers.push(this.#encode(this.#headers.length + 1));
    return this.#headers[op - 1]!;
  }

  #encode(op: number): Uint8Array {
    const parent = op === 1 ? rootEntry(cluster).subarray(0, 16) : this.#headers[op - 2]!.subarray(0, 16);
    return encodeEntry({ parent, cluster, client, op, commit: 0, timestamp: op, view: 0, request: 0, operation: 16 }, this.body);
  }
}

/** Durable appends/s of a fresh journal with `appenders` concurrent appenders. */
async function journalRate(disk: Disk, directory: string, pool: EntryPool, appenders: number, seconds: number): Promise<number> {
  const path = join(directory, `journal-${pool.body.length}-${appenders}-${Math.random().toString(36).slice(2)}`);
  await formatDataDir(disk, path, { cluster, replica: 0, replicaCount: 1 });
  const dir = await openDataDir(disk, path, {});
  const journal = dir.journal;
  let next = journal.opHead + 1;
  let done = 0;
  let stop = false;
  const appendLoop = async () => {
    while (!stop) {
      const op = next++;
      await journal.append(pool.header(op), pool.body);
      done++;
    }
  };
  const started = performance.now();
  const timer = setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(Array.from({ length: appenders }, appendLoop));
  const elapsed = (performance.now() - started) / 1000;
  clearTimeout(timer);
  await dir.close();
  removeSettled(directory, path);
  return done / elapsed;
}

/** Writes a journal of about `bytes` with 4 KiB bodies, closes it, times reopening it. */
async function recoveryTime(disk: Disk, directory: string, bytes: number): Promise<{ seconds: number; entries: number; bytes: number; segments: number; disk: string; checksum: string; cpuSeconds: number }> {
  const path = join(directory, "recovery");
  await formatDataDir(disk, path, { cluster, replica: 0, replicaCount: 1 });
  const dir = await openDataDir(disk, path, {});
  const body = new Uint8Array(4096).fill(0x44);
  const count = Math.ceil(bytes / (entryHeaderSize + body.length));
  let next = 1;
  let parent = dir.journal.headChecksum!;
  const appendLoop = async () => {
    while (next <= count) {
      const op = next++;
      const header = encodeEntry({ parent, cluster, client, op, commit: 0, timestamp: op, view: 0, request: 0, operation: 16 }, body);
      parent = header.subarray(0, 16);
      await dir.journal.append(header, body);
    }
  };
  await Promise.all(Array.from({ length: 256 }, appendLoop));
  await dir.close();
  // Recovery runs when a replica starts: time it in a fresh process, as it would run.
  const { command, args, cwd } = sameRuntimeCommand(["bench", "journal", "--recovery-child", path]);
  const child = spawnSync(command, args, { cwd, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  if (child.status !== 0) throw new Error(`recovery child failed (status ${child.status})`);
  const result = JSON.parse(child.stdout.trim().split("\n").pop()!) as { seconds: number; entries: number; bytes: number; segments: number; faults: number; disk: string; checksum: string; cpuSeconds: number };
  if (result.faults > 0 || result.entries !== count) throw new Error("recovery bench journal did not verify");
  fs.rmSync(path, { recursive: true, force: true });
  return result;
}

/** In the child: opens the data dir at `path`, timing recovery, and prints the result as JSON. */
async function recoveryChild(path: string): Promise<number> {
  const disk = await defaultDisk();
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const progress = ttyProgress("recovering");
  const dir = await openDataDir(disk, path, progress === undefined ? {} : { progress });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const segments = dir.journal.segments();
  console.log(JSON.stringify({
    seconds,
    entries: dir.journal.opHead,
    bytes: segments.reduce((sum, s) => sum + s.bytes, 0),
    segments: segments.length,
    faults: dir.journal.faults().length,
    disk: disk.name,
    checksum: checksumImplementation().long,
    // CPU time of the process (every thread): on an oversubscribed machine the wall time
    // says how much CPU the scan was given, this says how much it needed.
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  }));
  await dir.close();
  await disk.close();
  return 0;
}

interface Figure {
  readonly backend: string;
  readonly appenders: number;
  readonly bodyBytes: number;
  readonly perSecond: number;
  readonly trials: number[];
  readonly limit: "raw" | "coalesced";
  readonly limitPerSecond: number;
  readonly ratio: number;
  readonly target: string;
  readonly met: boolean;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** `chronon bench journal`. */
export const bench: BenchTarget = {
  summary: "durable journal appends/s (1 and 64 appenders, 128 B and 4 KiB) against raw write+fdatasync",
  async run(argv) {
    if (argv.includes("--help") || argv.includes("-h")) {
      console.log(usage);
      return 0;
    }
    const { values } = parseArgs({
      args: argv,
      options: {
        json: { type: "boolean", default: false },
        backend: { type: "string", default: "all" },
        seconds: { type: "string", default: "1" },
        trials: { type: "string", default: "3" },
        recovery: { type: "boolean", default: false },
        "recovery-mib": { type: "string", default: "1024" },
        "recovery-child": { type: "string" },
      },
    });
    if (values["recovery-child"] !== undefined) return await recoveryChild(values["recovery-child"]);
    if (!["portable", "uring", "direct-sync", "all"].includes(values.backend)) throw new UsageError("--backend must be portable, uring, direct-sync or all");
    const seconds = Number(values.seconds);
    const trials = Number(values.trials);
    const recoveryMib = Number(values["recovery-mib"]);
    if (!(seconds > 0) || !Number.isInteger(trials) || trials < 1 || !(recoveryMib > 0)) {
      throw new UsageError("--seconds, --trials and --recovery-mib must be positive numbers");
    }
    let backends: DiskBackend[];
    try {
      backends = await backendsFor(values.backend);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const say = (line: string) => {
      if (!values.json) console.log(line);
    };
    const directory = fs.mkdtempSync(join(os.tmpdir(), "chronon-bench-"));
    try {
      say(`bench journal: ${runtimeName()} ${runtimeVersion()}, backends ${backends.map((b) => b.name).join(", ")}, ${trials} trials × ${seconds} s, medians, in ${directory}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
      say("(records on disk are the 128-byte header + the body; limits use records of the same size)");
      // Raw limits are measured in the same trials as the journal, alternating with it
      // (raw, journal, raw, journal, …) so that drift in a noisy machine hits both alike;
      // the ratio is the median of the per-trial ratios.
      const pools = new Map<number, EntryPool>();
      for (const bodyBytes of [128, 4096]) pools.set(bodyBytes, new EntryPool(bodyBytes, Math.ceil(150_000 * seconds)));
      const raw: Record<string, number[]> = {};
      const figures: Figure[] = [];
      for (const backend of backends) {
        const disk = await backend.make();
        try {
          for (const appenders of [1, 64]) {
            for (const bodyBytes of [128, 4096]) {
              const limit = appenders === 1 ? "raw" : "coalesced";
              const rates: number[] = [];
              const limits: number[] = [];
              const ratios: number[] = [];
              for (let t = 0; t < trials; t++) {
                const limitRate = rawRate(directory, entryHeaderSize + bodyBytes, appenders === 1 ? 1 : 64, seconds);
                const rate = await journalRate(disk, directory, pools.get(bodyBytes)!, appenders, seconds);
                limits.push(limitRate);
                rates.push(rate);
                ratios.push(rate / limitRate);
              }
              (raw[`${limit}-${bodyBytes}`] ??= []).push(...limits);
              const perSecond = median(rates);
              const limitPerSecond = median(limits);
              const ratio = median(ratios);
              const floor = appenders === 1 ? 0.8 : 0.6;
              const absolute = appenders === 64 && bodyBytes === 128 ? 50_000 : 0;
              const target = `≥ ${floor} × ${limit}${absolute > 0 ? " and ≥ 50,000/s" : ""}`;
              const met = ratio >= floor && perSecond >= absolute;
              figures.push({ backend: backend.name, appenders, bodyBytes, perSecond, trials: rates, limit, limitPerSecond, ratio, target, met });
              const limitText = `${limit === "raw" ? "raw write+fdatasync" : "raw coalesced 64/write+fdatasync"} ${fmt(limitPerSecond)}/s`;
              say(`${backend.name.padEnd(9)} ${String(appenders).padStart(2)} appender${appenders === 1 ? " " : "s"} ${String(bodyBytes).padStart(4)} B body  ${fmt(perSecond).padStart(9)}/s   ${limitText.padEnd(42)} ratio ${(Math.floor(ratio * 100) / 100).toFixed(2)}  target ${target}: ${met ? "PASS" : "MISS"}`);
              say(`${"".padEnd(35)}trials ${rates.map(fmt).join(", ")}; limit trials ${limits.map(fmt).join(", ")}`);
            }
          }
        } finally {
          await disk.close();
        }
      }
      let recovery: Awaited<ReturnType<typeof recoveryTime>> & { backend: string; met: boolean } | null = null;
      if (values.recovery) {
        const backend = backends[0]!;
        const disk = await backend.make();
        try {
          const result = await recoveryTime(disk, directory, recoveryMib * 1024 * 1024);
          const met = result.seconds < 3 * (result.bytes / (1024 * 1024 * 1024));
          recovery = { ...result, backend: backend.name, met };
          const limitSeconds = 3 * (result.bytes / (1024 * 1024 * 1024));
          say(`recovery   ${(result.bytes / 1048576).toFixed(0)} MiB, ${fmt(result.entries)} entries of 4 KiB, ${result.segments} segments: ${result.seconds.toFixed(2)} s   limit ${limitSeconds.toFixed(2)} s (3 s per GiB)  ${met ? "PASS" : "MISS"}`);
          say(`${"".padEnd(11)}${(result.bytes / 1048576 / result.seconds).toFixed(0)} MiB/s in a fresh process, page cache warm; CPU time ${result.cpuSeconds.toFixed(2)} s (load average ${os.loadavg()[0]!.toFixed(1)}); disk ${result.disk}, SHA-256 ${result.checksum}`);
        } finally {
          await disk.close();
        }
      }
      if (values.json) {
        const rawMedians = Object.fromEntries(Object.entries(raw).map(([key, values]) => [key, median(values)]));
        console.log(JSON.stringify({ runtime: runtimeName(), version: runtimeVersion(), seconds, trials, raw: rawMedians, figures, recovery }, null, 2));
      }
      return 0;
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
      void process;
    }
  },
};
