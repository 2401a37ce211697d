/**
 * A chaos cluster: N real replica processes (`chronon start`) on loopback, each with its
 * own data dir, log file and test-fault control file, and a {@link LinkProxy} on every
 * replica pair so links can be cut.
 *
 * The bus has the lower index dial the higher one. Replica i is given a cluster file of
 * its own in which every higher replica's bus address is the proxy of the pair, so all
 * replica traffic goes through the proxies; its own address (where it listens) and every
 * API address are the real ones. Nothing else differs between the files.
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { assert } from "../assert.ts";
import { sameRuntimeCommand } from "../cli/commands/storage_common.ts";
import { testFaultsEnv } from "../node/test_faults.ts";
import { parseClusterId } from "../storage/cluster_id.ts";
import { formatDataDir } from "../storage/data_dir.ts";
import { PortableDisk } from "../storage/disk_portable.ts";
import { LinkProxy } from "./proxy.ts";
import type { LinkState } from "./proxy.ts";
import { freePort } from "../net/free_port.ts";

/** A replica's status as /v1/status reports it (the fields chaos reads). */
export interface ReplicaStatusJson {
  readonly replica: number;
  readonly status: string;
  readonly view: number;
  readonly op: number;
  readonly commit: number;
  readonly primary: number;
}

/** What a replica last wrote to its state file (src/node/test_faults.ts). */
export interface ReplicaStateReport {
  readonly commit: number;
  readonly op: number;
  readonly view: number;
  readonly status: string;
  readonly stateHash: string;
  readonly atMs: number;
}

/** The faults a replica's control file arms (src/node/test_faults.ts). */
export interface ReplicaControl {
  readonly clockSkewMs: number;
  readonly syncEioProbability: number;
  readonly tornWriteDelayMs: number;
}

/** No armed fault. */
export const controlOff: ReplicaControl = { clockSkewMs: 0, syncEioProbability: 0, tornWriteDelayMs: 0 };

/** Options of {@link ChaosCluster.create}. */
export interface ChaosClusterOptions {
  readonly replicaCount: 3 | 5;
  /** Absolute path of the application module. */
  readonly appPath: string;
  /** Directory for data dirs, cluster files, logs and control files. */
  readonly dir: string;
  readonly checkpointIntervalOps: number;
}

interface Slot {
  child: ChildProcess | null;
  exited: Promise<number | null> | null;
  paused: boolean;
  /** Exits nobody asked for (SIGKILL by the nemesis is asked for): their codes (null: a signal). */
  readonly unexpectedExitCodes: (number | null)[];
  lastExitCode: number | null;
}

/** A running chaos cluster. */
export class ChaosCluster {
  readonly replicaCount: number;
  readonly dir: string;
  readonly token: string;
  /** Base URLs of the replicas' APIs, by index. */
  readonly apiUrls: readonly string[];
  readonly #appPath: string;
  readonly #proxies: Map<string, LinkProxy>;
  readonly #slots: Slot[];
  readonly #expectedExit = new Set<number>();

  private constructor(options: ChaosClusterOptions, token: string, apiUrls: string[], proxies: Map<string, LinkProxy>) {
    this.replicaCount = options.replicaCount;
    this.dir = options.dir;
    this.token = token;
    this.apiUrls = apiUrls;
    this.#appPath = options.appPath;
    this.#proxies = proxies;
    this.#slots = apiUrls.map(() => ({ child: null, exited: null, paused: false, unexpectedExitCodes: [], lastExitCode: null }));
    // Never leave replica processes behind: 'exit' handlers run on process.exit (the chaos
    // command turns SIGINT and SIGTERM into one), and child.kill is synchronous.
    process.once("exit", this.#killAllNow);
  }

  readonly #killAllNow = (): void => {
    for (const slot of this.#slots) {
      slot.child?.kill("SIGKILL");
      if (slot.paused) slot.child?.kill("SIGCONT");
    }
  };

  /** Allocates ports, starts the proxies and writes one cluster file per replica. */
  static async create(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const n = options.replicaCount;
    const busPorts: number[] = [];
    const apiPorts: number[] = [];
    for (let i = 0; i < n; i++) {
      busPorts.push(await freePort());
      apiPorts.push(await freePort());
    }
    const proxies = new Map<string, LinkProxy>();
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) {
        const proxy = new LinkProxy("127.0.0.1", busPorts[b]!);
        await proxy.start("127.0.0.1");
        proxies.set(`${a}-${b}`, proxy);
      }
    }
    const token = randomBytes(16).toString("hex");
    const secret = randomBytes(24).toString("hex");
    const cluster = `chaos-${Date.now()}`;
    for (let i = 0; i < n; i++) {
      const replicas = Array.from({ length: n }, (_, k) => ({
        bus: `127.0.0.1:${k > i ? proxies.get(`${i}-${k}`)!.port : busPorts[k]!}`,
        api: `127.0.0.1:${apiPorts[k]!}`,
        dataDir: join(options.dir, `replica-${k}`),
      }));
      writeFileSync(join(options.dir, `cluster-${i}.json`), JSON.stringify({
        cluster,
        replicas,
        secret: { value: secret },
        token: { value: token },
        checkpointIntervalOps: options.checkpointIntervalOps,
      }, null, 2));
      writeFileSync(join(options.dir, `faults-${i}.json`), JSON.stringify(controlOff));
    }
    // Every data dir is formatted before any replica starts, as an operator would: a
    // replica started with --format after a quorum has committed is (rightly) refused by
    // `chronon start` as a replaced disk.
    const disk = new PortableDisk();
    try {
      for (let i = 0; i < n; i++) {
        await formatDataDir(disk, join(options.dir, `replica-${i}`), { cluster: parseClusterId(cluster), replica: i, replicaCount: n });
      }
    } finally {
      await disk.close();
    }
    return new ChaosCluster(options, token, apiPorts.map((p) => `http://127.0.0.1:${p}`), proxies);
  }

  /** Starts replica `index` (formatting its data dir on the first start). */
  launch(index: number): void {
    const slot = this.#slot(index);
    assert(slot.child === null, `replica ${index} is already running`);
    const args = ["start", "--config", join(this.dir, `cluster-${index}.json`), "--replica", String(index), "--app", this.#appPath];
    // Formatted in create(); a data dir without its identity would be a lost disk.
    if (!existsSync(join(this.dir, `replica-${index}`, "identity"))) args.push("--replace");
    const { command, args: full, cwd } = sameRuntimeCommand(args);
    const child = spawn(command, full, {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, [testFaultsEnv]: join(this.dir, `faults-${index}.json`) },
    });
    const logFile = createWriteStream(join(this.dir, `replica-${index}.log`), { flags: "a" });
    logFile.write(`--- chaos: launch at ${new Date().toISOString()}\n`);
    child.stdout?.pipe(logFile);
    child.stderr?.pipe(logFile);
    slot.child = child;
    slot.paused = false;
    slot.exited = new Promise((resolve) => {
      child.once("exit", (code) => {
        slot.child = null;
        slot.lastExitCode = code;
        if (!this.#expectedExit.delete(index) && slot.unexpectedExitCodes.length < 10_000) slot.unexpectedExitCodes.push(code);
        resolve(code);
      });
    });
  }

  /** True while replica `index` has a process. */
  running(index: number): boolean {
    return this.#slot(index).child !== null;
  }

  /** True while replica `index` is stopped by SIGSTOP. */
  paused(index: number): boolean {
    return this.#slot(index).paused;
  }

  /** Exit codes of replica `index`'s exits nobody asked for (a fatal disk error, a crash). */
  unexpectedExitCodes(index: number): readonly (number | null)[] {
    return this.#slot(index).unexpectedExitCodes;
  }

  /** Lines of replica `index`'s log (every process it ran). */
  logText(index: number): string {
    try {
      return readFileSync(join(this.dir, `replica-${index}.log`), "utf8");
    } catch {
      return "";
    }
  }

  /** The exit code of replica `index`'s last process (null: killed by a signal). */
  lastExitCode(index: number): number | null {
    return this.#slot(index).lastExitCode;
  }

  /** SIGKILLs replica `index` (resuming it first if paused) and waits for it to exit. */
  async kill(index: number): Promise<void> {
    const slot = this.#slot(index);
    if (slot.child === null) return;
    this.#expectedExit.add(index);
    slot.child.kill("SIGKILL");
    if (slot.paused) slot.child.kill("SIGCONT");
    slot.paused = false;
    await slot.exited;
  }

  /** SIGSTOPs replica `index`. */
  pause(index: number): void {
    const slot = this.#slot(index);
    if (slot.child === null || slot.paused) return;
    slot.child.kill("SIGSTOP");
    slot.paused = true;
  }

  /** SIGCONTs replica `index`. */
  resume(index: number): void {
    const slot = this.#slot(index);
    if (slot.child === null || !slot.paused) return;
    slot.child.kill("SIGCONT");
    slot.paused = false;
  }

  /**
   * Sets the directions of the link between replicas `a` and `b` (from `a`'s side to
   * `b`'s and back), and its added latency.
   */
  setLink(a: number, b: number, aToB: boolean, bToA: boolean, delayMs = 0): void {
    assert(a !== b, "a link joins two replicas");
    const low = Math.min(a, b);
    const high = Math.max(a, b);
    const proxy = this.#proxies.get(`${low}-${high}`);
    assert(proxy !== undefined, `link ${low}-${high}`);
    const state: LinkState = low === a ? { forward: aToB, backward: bToA, delayMs } : { forward: bToA, backward: aToB, delayMs };
    proxy.set(state);
  }

  /** Reconnects every link both ways. */
  healLinks(): void {
    for (const proxy of this.#proxies.values()) proxy.set({ forward: true, backward: true });
  }

  /** Arms faults in replica `index`'s control file (read by the node within 200 ms). */
  control(index: number, control: ReplicaControl): void {
    const path = join(this.dir, `faults-${index}.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify(control));
    // Renamed into place so the node never reads half a file.
    renameSync(`${path}.tmp`, path);
  }

  /** The last state report replica `index` wrote, or null. */
  stateReport(index: number): ReplicaStateReport | null {
    try {
      return JSON.parse(readFileSync(join(this.dir, `faults-${index}.json.state.json`), "utf8")) as ReplicaStateReport;
    } catch {
      return null;
    }
  }

  /** /v1/status of replica `index`, or null when it does not answer within `timeoutMs`. */
  async status(index: number, timeoutMs = 500): Promise<ReplicaStatusJson | null> {
    if (this.#slot(index).paused || this.#slot(index).child === null) return null;
    try {
      const response = await fetch(`${this.apiUrls[index]}/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
      return await response.json() as ReplicaStatusJson;
    } catch {
      return null;
    }
  }

  /** Statuses of every replica (null where none answered). */
  statuses(timeoutMs = 500): Promise<(ReplicaStatusJson | null)[]> {
    return Promise.all(this.#slots.map((_, i) => this.status(i, timeoutMs)));
  }

  /** Kills every replica and closes the proxies. */
  async close(): Promise<void> {
    process.removeListener("exit", this.#killAllNow);
    for (let i = 0; i < this.replicaCount; i++) await this.kill(i);
    await Promise.all([...this.#proxies.values()].map((p) => p.close()));
  }

  #slot(index: number): Slot {
    const slot = this.#slots[index];
    assert(slot !== undefined, `replica ${index} of ${this.replicaCount}`);
    return slot;
  }
}
