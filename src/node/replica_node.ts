/**
 * One real replica: wires the disk, the journal, the replica bus, the clock and timers,
 * the pure replica, the kernel's executor and effect runner, and the HTTP API.
 *
 * The driver loop follows the contract in src/vsr/replica_api.ts: every input (a tick, a
 * message, a request, a storage completion) is handed to the replica, then its `ready()`
 * outputs are carried out in order: storage actions, messages, client replies. Outputs are
 * pumped once per event-loop turn (setImmediate, after the turn's I/O callbacks): every
 * message, request and journal completion of a turn goes into one Ready, whose messages the
 * bus writes with one system call per peer.
 * @module
 */
import process from "node:process";
import { setImmediate } from "node:timers";
import { join } from "node:path";
import { assert } from "../assert.ts";
import { createApi } from "../api/app.ts";
import { fsyncSecondsBuckets, latencySecondsBuckets, MetricsRegistry } from "../api/metrics.ts";
import type { NodeStatus } from "../api/node_handle.ts";
import { serve } from "../api/serve.ts";
import { serveClientPort } from "../api/client_port.ts";
import type { ClientPortHandle } from "../api/client_port.ts";
import type { ServerHandle } from "../api/serve.ts";
import type { App } from "../app/app.ts";
import { formatClusterId } from "../storage/cluster_id.ts";
import { CheckpointStore } from "../storage/checkpoint_store.ts";
import { formatDataDir, openDataDir } from "../storage/data_dir.ts";
import type { DataDir } from "../storage/data_dir.ts";
import { selectDisk } from "../storage/disk_select.ts";
import type { DiskMode } from "../storage/disk_select.ts";
import type { Disk } from "../storage/disk.ts";
import { EffectRunner } from "../kernel/effect_runner.ts";
import type { EffectHandler } from "../kernel/effect_runner.ts";
import { Executor } from "../kernel/executor.ts";
import { Bus } from "../net/bus.ts";
import type { ReplicaConfig, ReplicaCore, RecoveredState, ReplicaStatus } from "../vsr/replica_api.ts";
import type { StateMachine } from "../vsr/state_machine.ts";
import type { ClusterConfig } from "./config.ts";
import { apiAccess, readSecret } from "./config.ts";
import { pendingRepliesMax, ReplicaHandle } from "./handle.ts";
import { clearReplaced, dataDirIntact, markReplaced, recoverReplicaState } from "./recover.ts";
import { applyHeapGrowth } from "./heap_growth.ts";
import { StorageDriver } from "./storage_driver.ts";
import { testFaultsFromEnv } from "./test_faults.ts";

/** Builds the pure replica (src/vsr) from its configuration, state machine and recovered state. */
export type ReplicaFactory = (config: ReplicaConfig, stateMachine: StateMachine, recovered: RecoveredState) => ReplicaCore;

/** Options of {@link startReplica}. */
export interface StartOptions {
  readonly config: ClusterConfig;
  /** This replica's index in `config.replicas`. */
  readonly replica: number;
  /** The application. */
  readonly app: App;
  /** The replica implementation (src/vsr). */
  readonly createReplica: ReplicaFactory;
  /** Format the data dir when it does not exist yet. */
  readonly format?: boolean;
  /** Handlers of custom effect kinds. */
  readonly effectHandlers?: Readonly<Record<string, EffectHandler>>;
  /** Where operator-facing lines go (default: stderr). */
  readonly log?: (line: string) => void;
  /** `CHRONON_IO` override. */
  readonly io?: DiskMode;
  /**
   * The replica's disk was replaced: format the missing data dir like `format`, and mark it
   * so the replica recovers not intact (no vote until caught up); see src/node/recover.ts.
   */
  readonly replace?: boolean;
}

/** A running replica. */
export interface RunningReplica {
  readonly replica: number;
  /** The bound API and bus ports (real ones when the config asked for port 0). */
  readonly apiPort: number;
  readonly busPort: number;
  /** The bound port of the binary client protocol, or null when the config names none. */
  readonly clientPort: number | null;
  status(): ReplicaStatus;
  /** Stops timers, the API, the bus and the effect runner, then closes the data dir. */
  stop(): Promise<void>;
}

/** Exit code of a replica that stops on a storage failure (EX_SOFTWARE): restart it to recover. */
export const storageFailureExitCode = 70;

/** A port of this replica could not be listened on (in use, not permitted, not local). */
export class ListenError extends Error {
  override readonly name = "ListenError";
}

/**
 * Runs `listen` and turns a failure to listen into a ListenError naming the role and the
 * address, so that the start command can say which port is taken instead of crashing.
 */
async function listenAs<T>(role: string, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && ["EADDRINUSE", "EACCES", "EADDRNOTAVAIL", "EPERM"].includes(code)) {
      const why = code === "EADDRINUSE" ? "the address is already in use" : code === "EADDRNOTAVAIL" ? "the address is not on this machine" : "permission denied";
      throw new ListenError(`cannot listen on ${host}:${port} for the ${role}: ${why} (${code})`);
    }
    throw error;
  }
}

/** Starts one replica of `options.config` and resolves once it listens. */
export async function startReplica(options: StartOptions): Promise<RunningReplica> {
  const { config, replica: index } = options;
  assert(index >= 0 && index < config.replicas.length, "replica index within the configuration");
  const log = options.log ?? ((line: string) => console.error(line));
  const prefix = `chronon[${index}]`;
  const testFaults = testFaultsFromEnv((line) => log(`${prefix} ${line}`)); // test-only, inert unless CHRONON_TEST_FAULTS is set
  // Before the state and the window are allocated: V8 sizes the next collection from it.
  applyHeapGrowth(config.heapGrowthPercent);

  const disk: Disk = await testFaults.wrapDisk(await selectDisk(options.io ?? "auto", (line) => log(`${prefix} ${line}`), { pollMicros: config.ioPollMicros }));
  try {
    return await startOnDisk({ options, disk, log, prefix, testFaults });
  } catch (error) {
    // Whatever failed before the replica ran (a disk error in recovery, a taken port), the
    // disk is released so the process can exit with the error.
    await disk.close().catch(() => {});
    throw error;
  }
}

/** What each stage of startReplica works with. */
interface StartContext {
  readonly options: StartOptions;
  readonly disk: Disk;
  readonly log: (line: string) => void;
  readonly prefix: string;
  readonly testFaults: ReturnType<typeof testFaultsFromEnv>;
}

/** startReplica once the disk is open: formats or opens the data dir. */
async function startOnDisk(context: StartContext): Promise<RunningReplica> {
  const { options, disk, log, prefix } = context;
  const { config, replica: index } = options;
  const me = config.replicas[index]!;
  if (!(await disk.exists(join(me.dataDir, "identity")))) {
    if (options.format !== true && options.replace !== true) {
      const { NotFormattedError } = await import("../storage/errors.ts");
      throw new NotFormattedError(me.dataDir, "no data dir here; start with --format to create it, or run `chronon format`");
    }
    await formatDataDir(disk, me.dataDir, { cluster: config.cluster, replica: index, replicaCount: config.replicas.length });
    log(`${prefix} formatted ${me.dataDir} for cluster ${config.clusterName} (${formatClusterId(config.cluster)})`);
    if (options.replace === true) {
      await markReplaced(disk, me.dataDir);
      log(`${prefix} this data dir replaces a lost disk: the replica will not vote until it has caught up from its peers`);
    }
  }
  const dataDir: DataDir = await openDataDir(disk, me.dataDir, { cluster: config.cluster });
  try {
    return await startOnDataDir(context, dataDir);
  } catch (error) {
    await dataDir.close().catch(() => {});
    throw error;
  }
}

/** startReplica once the data dir is open: recovery, the replica, its bus and API. */
async function startOnDataDir(context: StartContext, dataDir: DataDir): Promise<RunningReplica> {
  const { options, disk, log, prefix, testFaults } = context;
  const { config, replica: index } = options;
  const me = config.replicas[index]!;
  if (dataDir.identity.replica !== index || dataDir.identity.replicaCount !== config.replicas.length) {
    const { DataDirError } = await import("../storage/errors.ts");
    throw new DataDirError(me.dataDir, `belongs to replica ${dataDir.identity.replica} of ${dataDir.identity.replicaCount}, not ${index} of ${config.replicas.length}`);
  }
  for (const fault of dataDir.journal.faults()) {
    log(`${prefix} journal fault at op ${fault.op} (${fault.path} offset ${fault.offset}): ${fault.kind} ${fault.detail}; it will be repaired from peers`);
  }
  const checkpoints = new CheckpointStore(disk, join(me.dataDir, "checkpoints"), config.cluster);
  const executor = new Executor(options.app);
  let catchingUp = !(await dataDirIntact(disk, me.dataDir));
  const { state: recovered, checkpointFaults } = await recoverReplicaState(dataDir, checkpoints, !catchingUp);
  for (const fault of checkpointFaults) log(`${prefix} checkpoint ${fault.path} not used: ${fault.reason}`);

  const replicaConfig: ReplicaConfig = {
    cluster: config.cluster,
    replica: index,
    replicaCount: config.replicas.length,
    checkpointIntervalOps: config.checkpointIntervalOps,
    clientSessionsMax: config.clientSessionsMax,
    // Shallow on purpose: the replica prepares a request as soon as the pipeline has room,
    // one entry per prepare; with room for 64 every request of a burst became its own
    // prepare (2 frames out of the primary per request). At 8 the rest of a burst queues and
    // leaves as one prepare of many entries (0.4-0.5 frames per request), and 64 closed-loop
    // clients committed about 2x more requests/s here (docs/operations.md, Performance).
    pipelineMax: 8,
    batchRequestsMax: 256,
    timeoutPrimaryTicks: Math.max(10, Math.round(500 / config.tickMs)),
    heartbeatTicks: Math.max(1, Math.round(50 / config.tickMs)),
  };
  const core = options.createReplica(replicaConfig, executor, recovered);

  // Metrics.
  const metrics = new MetricsRegistry();
  const fsyncSeconds = metrics.histogram("chronon_fsync_seconds", "Durable writes (journal batches, superblock, checkpoints), seconds.", fsyncSecondsBuckets, ["kind"]);
  const requestSeconds = metrics.histogram("chronon_request_seconds", "Time from a request reaching this replica to its reply, seconds.", latencySecondsBuckets);
  const viewChanges = metrics.counter("chronon_view_changes_total", "Views this replica has entered.");
  let effectAttempts = 0;
  metrics.collect("chronon_commit_op", "Highest committed op.", "gauge", () => core.status().commit);
  metrics.collect("chronon_op", "Highest prepared op.", "gauge", () => core.status().op);
  metrics.collect("chronon_view", "Current view.", "gauge", () => core.status().view);
  metrics.collect("chronon_effect_attempts_total", "Effect attempts started by this replica.", "counter", () => effectAttempts + (runner?.attemptsStarted ?? 0));
  const replicaCounters = (core as { counters?: Readonly<Record<string, number>> }).counters;
  if (replicaCounters !== undefined) {
    metrics.collect("chronon_replica_events_total", "Replica counters: messages dropped by reason, repairs, state transfers.", "counter", () =>
      Object.entries(replicaCounters).map(([event, n]) => [{ event }, n] as const));
  }
  metrics.collect("chronon_replies_waiting", "Client replies waited for.", "gauge", () => handle.pending);
  // The same reading on the three runtimes: resident set, the JS heap, and memory held
  // outside it (ArrayBuffers: journal batches, socket buffers, checkpoint images).
  metrics.collect("process_resident_memory_bytes", "Resident memory of this process, bytes.", "gauge", () => process.memoryUsage().rss);
  metrics.collect("chronon_heap_used_bytes", "JS heap in use, bytes.", "gauge", () => process.memoryUsage().heapUsed);
  metrics.collect("chronon_heap_total_bytes", "JS heap reserved, bytes.", "gauge", () => process.memoryUsage().heapTotal);
  metrics.collect("chronon_external_memory_bytes", "Memory outside the JS heap held by JS objects (ArrayBuffers), bytes.", "gauge", () => process.memoryUsage().external);

  // Storage.
  const fatal = (error: unknown) => {
    log(`${prefix} FATAL storage failure, stopping so recovery can run on restart: ${(error as Error).message ?? error}`);
    process.exit(storageFailureExitCode);
  };
  const storage = new StorageDriver({
    dataDir,
    checkpoints,
    fatal,
    timer: (kind, ms) => fsyncSeconds.observe(ms / 1000, { kind }),
    done: (id, result) => {
      core.storageDone(id, result);
      schedulePump();
    },
  });

  // Bus.
  const secret = readSecret(config.secret, "secret");
  const bus = new Bus({
    cluster: config.cluster,
    replica: index,
    addresses: config.replicas.map((r) => ({ host: r.bus.host, port: r.bus.port })),
    secret,
    log: (line) => log(`${prefix} ${line}`),
  });
  bus.onMessage((_from, bytes) => {
    // The bus hands over a copy the receiver owns (BusMessageHandler): the replica may keep
    // views of it (entries in its log window) without copying again.
    core.receive(bytes);
    schedulePump();
  });
  metrics.collect("chronon_bus_frames_in_total", "Replica messages received.", "counter", () => bus.counters.framesIn);
  metrics.collect("chronon_bus_frames_out_total", "Replica messages sent.", "counter", () => bus.counters.framesOut);
  metrics.collect("chronon_bus_connections_dropped_total", "Peer connections dropped, by reason.", "counter", () =>
    Object.entries(bus.counters.connectionsDropped).map(([reason, n]) => [{ reason }, n] as const));
  metrics.collect("chronon_bus_messages_dropped_total", "Messages dropped because a peer's queue was full.", "counter", () => bus.counters.messagesDroppedQueueFull);

  // Requests and replies.
  const requestStarted = new Map<number, number>();
  const handle = new ReplicaHandle({
    request: (request) => {
      // Bounded like the waiters themselves: latency is sampled, never an unbounded table.
      if (requestStarted.size < pendingRepliesMax) requestStarted.set(request.token, performance.now());
      core.request(request);
      schedulePump();
    },
    query: (query) => {
      core.query(query);
      schedulePump();
    },
    status: () => nodeStatus(),
    apiUrl: (i) => config.replicas[i]?.apiUrl ?? "",
    metricsText: () => metrics.render(),
    nowMs: () => Date.now(),
  }, 10_000);

  // The effect runner runs on the normal primary only, once it has committed the log it
  // took over at the start of its view; it is fenced the moment that stops being true.
  let runner: EffectRunner | null = null;
  let viewSeen = recovered.superblock.view;
  let viewStartOp = -1;
  let lastCommit = -1;
  const isPrimary = (view: number): boolean => {
    const status = core.status();
    return status.status === "normal" && status.view === view && status.primary === index;
  };
  const superviseRunner = (status: ReplicaStatus): void => {
    if (status.view !== viewSeen) {
      viewSeen = status.view;
      viewChanges.inc();
      viewStartOp = -1;
    }
    const primaryNow = status.status === "normal" && status.primary === index;
    if (runner !== null && (!primaryNow || runner.view !== status.view)) {
      effectAttempts += runner.attemptsStarted;
      runner.stop();
      runner = null;
    }
    if (!primaryNow) return;
    if (viewStartOp < 0) viewStartOp = status.op;
    if (runner === null && status.commit >= viewStartOp) {
      runner = new EffectRunner({
        executor,
        view: status.view,
        isPrimary,
        submit: (operation, body) => handle.submitInternal(operation, body),
        ...(options.effectHandlers === undefined ? {} : { handlers: options.effectHandlers }),
        maxAttempts: config.effectAttemptsMax,
        timeoutSignal: (ms) => AbortSignal.timeout(Math.min(ms, config.effectTimeoutMs)),
      });
      runner.start();
      log(`${prefix} primary of view ${status.view}: effect runner started`);
    } else if (runner !== null && status.commit !== lastCommit) {
      runner.wake();
    }
    lastCommit = status.commit;
  };

  // The pump.
  let pumpScheduled = false;
  let stopped = false;
  function schedulePump(): void {
    if (pumpScheduled || stopped) return;
    pumpScheduled = true;
    // Not a microtask: those run between I/O callbacks, so a turn that read many messages
    // and requests would be pumped once per callback instead of once.
    setImmediate(pump);
  }
  function pump(): void {
    pumpScheduled = false;
    if (stopped) return;
    const ready = core.ready();
    if (ready.storage.length > 0) storage.run(ready.storage);
    for (const message of ready.messages) bus.send(message.to, message.bytes);
    for (const reply of ready.replies) {
      const started = requestStarted.get(reply.token);
      if (started !== undefined) {
        requestStarted.delete(reply.token);
        requestSeconds.observe((performance.now() - started) / 1000);
      }
      handle.deliver(reply);
    }
    const status = core.status();
    superviseRunner(status);
    if (catchingUp && status.voting !== false) {
      // Caught up: from now on this disk is intact, also after a restart.
      catchingUp = false;
      clearReplaced(disk, me.dataDir).then(() => log(`${prefix} caught up: voting again (replaced-disk marker removed)`), fatal);
    }
  }

  function nodeStatus(): NodeStatus {
    const status = core.status();
    const peers = bus.peerStatus().map((peer) => ({ replica: peer.replica, connected: peer.connected }));
    const primaryApi = status.primary >= 0 ? config.replicas[status.primary]?.apiUrl : undefined;
    return {
      cluster: formatClusterId(config.cluster),
      replica: index,
      replicaCount: config.replicas.length,
      status: status.status,
      view: status.view,
      op: status.op,
      commit: status.commit,
      primary: status.primary,
      ...(primaryApi === undefined ? {} : { primaryApi }),
      peers,
    };
  }

  let server: ServerHandle | null = null;
  let clientPort: ClientPortHandle | null = null;
  try {
    await listenAs("replica bus", me.bus.host, me.bus.port, () => bus.start());
    const access = apiAccess(config);
    if (access.warning !== null) log(`${prefix} ${access.warning}`);
    const api = createApi(handle, {
      ...(access.token === undefined ? {} : { token: access.token }),
      tokenlessWrites: access.tokenlessWrites,
      readAccess: config.readAccess,
      bodySizeMax: config.requestBodySizeMax,
      metrics,
    });
    server = await listenAs("HTTP API", me.api.host, me.api.port, () => serve(api, { hostname: me.api.host, port: me.api.port }));
    if (me.clientPort !== null) {
      const clientUrls = new Map(config.replicas.map((r) => [r.apiUrl, r.clientUrl ?? undefined] as const));
      const at = me.clientPort;
      clientPort = await listenAs("client port", at.host, at.port, () => serveClientPort(handle, {
        hostname: at.host,
        port: at.port,
        ...(access.token === undefined ? {} : { token: access.token }),
        tokenlessWrites: access.tokenlessWrites,
        readAccess: config.readAccess,
        bodySizeMax: config.requestBodySizeMax,
        primaryHint: (apiUrl) => clientUrls.get(apiUrl),
      }));
    }
  } catch (error) {
    // Nothing runs yet: release what is open so the process can exit with the error.
    await clientPort?.close();
    await server?.close();
    await bus.close();
    await storage.drain();
    throw error;
  }
  assert(server !== null, "the API listens once start got here");

  const tickTimer = setInterval(() => {
    core.tick(testFaults.nowMs());
    testFaults.tick(core.status(), () => executor.stateHash());
    handle.expire();
    for (const [token, started] of requestStarted) {
      if (performance.now() - started > 60_000) requestStarted.delete(token);
    }
    schedulePump();
  }, config.tickMs);
  log(`${prefix} started: bus ${me.bus.host}:${bus.port}, api http://${me.api.host}:${server.port}${clientPort === null ? "" : `, client port ${me.clientPort!.host}:${clientPort.port}`}, data ${me.dataDir} (${disk.name} disk), op ${dataDir.journal.opHead}, commit ${recovered.superblock.commit}`);

  return {
    replica: index,
    apiPort: server.port,
    busPort: bus.port,
    clientPort: clientPort?.port ?? null,
    status: () => core.status(),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(tickTimer);
      runner?.stop();
      handle.abandonAll();
      await server.close();
      await clientPort?.close();
      await bus.close();
      await storage.drain();
      await dataDir.close();
      await disk.close();
    },
  };
}
