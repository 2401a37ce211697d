/**
 * The cluster configuration file (`cluster.json`) that `chronon start` reads: one file,
 * identical on every replica, naming the cluster, every replica's addresses and data dir,
 * where the secret and the API token come from, and the tunables.
 *
 * Every problem is a {@link ConfigError} naming the field and what is wrong; nothing is
 * started from a configuration that does not validate.
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { parseClusterId } from "../storage/cluster_id.ts";
import { pollMicrosMax } from "../storage/ring_scheduler.ts";

/** A replica count the protocol accepts: 2f+1 with 0 ≤ f ≤ 2 (1, 3 or 5 replicas). */
export const replicaCountsAllowed = [1, 3, 5] as const;

/**
 * Default of `heapGrowthPercent`: measured on the kv benchmark at 64 clients (docs/
 * operations.md, "Session 8 figures"), it keeps a replica under 300 MB for about 6 % of
 * throughput.
 */
export const heapGrowthPercentDefault = 50;

/**
 * Default of `checkpointIntervalOps`. Each replica checkpoints once per interval (at its
 * own phase of it, docs/protocol.md); a checkpoint encodes and writes the whole state, so
 * a longer interval is less of that work per op, paid for in the log window's memory (up to
 * two intervals of entries). 32,768 against 16,384 on the kv benchmark at 64 clients, with
 * the replicas' small young generation (heap_growth.ts): 14,379 against 13,547 requests/s,
 * p99 19.1 against 21.1 ms, peaks 235–260 against 253–277 MB (medians of 3 interleaved
 * runs; docs/operations.md, "Session 10 figures").
 */
export const checkpointIntervalOpsDefault = 32768;

/** Where a secret comes from: a file (first line, trimmed) or an environment variable. */
export type SecretSource = { readonly file: string } | { readonly env: string } | { readonly value: string };

/** One replica's place in the cluster. */
export interface ReplicaAddress {
  /** host:port of the replica bus (TCP between replicas). */
  readonly bus: { readonly host: string; readonly port: number };
  /** host:port the HTTP API listens on. */
  readonly api: { readonly host: string; readonly port: number };
  /** Base URL clients use to reach this API (defaults to http://api); sent in not_primary hints. */
  readonly apiUrl: string;
  /** host:port of the binary client protocol (docs/api.md), or null when not served. */
  readonly clientPort: { readonly host: string; readonly port: number } | null;
  /** Address clients use for it (defaults to chronon://clientPort); sent in not_primary hints. */
  readonly clientUrl: string | null;
  /** Data directory of this replica. */
  readonly dataDir: string;
}

/** A validated cluster configuration. */
export interface ClusterConfig {
  /** The cluster id as written in the file, and its 16 bytes. */
  readonly clusterName: string;
  readonly cluster: Uint8Array;
  readonly replicas: readonly ReplicaAddress[];
  readonly secret: SecretSource;
  /**
   * The API bearer token. `null` (no `token` in the file): the API refuses every write,
   * the safe default. `"none"` (`"token": "none"`): writes are open to anyone who can
   * reach the API, for development only (the node logs a warning at start).
   */
  readonly token: SecretSource | "none" | null;
  /** Who may read (queries, status, listings) without the token. */
  readonly readAccess: "public" | "token";
  /** Milliseconds per replica tick. */
  readonly tickMs: number;
  readonly checkpointIntervalOps: number;
  readonly clientSessionsMax: number;
  /** Largest request body accepted by the API, in bytes. */
  readonly requestBodySizeMax: number;
  /** Attempts of one effect before it is dead-lettered. */
  readonly effectAttemptsMax: number;
  /** Timeout of one HTTP effect attempt. */
  readonly effectTimeoutMs: number;
  /**
   * io_uring backend: microseconds the event loop waits for a completion itself (blocking
   * in the kernel, at most once per event-loop turn) before it waits on the ring's eventfd
   * (0: never). It saves the eventfd's thread-pool wake-up but holds the loop meanwhile.
   */
  readonly ioPollMicros: number;
  /**
   * V8's heap growing factor for the replica process, in percent over the live set (0:
   * the engine's own policy). Lower holds less memory and spends more CPU collecting.
   * Applied at run time on Node only; Deno takes it as a start flag (see
   * src/node/heap_growth.ts).
   */
  readonly heapGrowthPercent: number;
}

/** The configuration is missing, unreadable or invalid; `field` names what is wrong. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The offending field path (e.g. `replicas[1].bus`), or "" for the whole file. */
  readonly field: string;
  /** Creates an error about `field`. */
  constructor(field: string, message: string) {
    super(field === "" ? message : `${field}: ${message}`);
    this.field = field;
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hostPort(value: unknown, field: string): { host: string; port: number } {
  if (typeof value !== "string") throw new ConfigError(field, "must be a string host:port");
  const at = value.lastIndexOf(":");
  const host = value.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  const port = Number(value.slice(at + 1));
  if (at <= 0 || host === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(field, `'${value}' is not host:port`);
  }
  return { host, port };
}

function integer(source: Json, key: string, fallback: number, min: number, max: number): number {
  const value = source[key];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function secretSource(value: unknown, field: string): SecretSource {
  const forms = field === "token" ? '{"file": PATH}, {"env": NAME}, {"value": TEXT} or "none"' : '{"file": PATH}, {"env": NAME} or {"value": TEXT}';
  if (!isObject(value)) throw new ConfigError(field, `must be ${forms}`);
  if (typeof value.file === "string" && value.file !== "") return { file: value.file };
  if (typeof value.env === "string" && value.env !== "") return { env: value.env };
  if (typeof value.value === "string" && value.value !== "") return { value: value.value };
  throw new ConfigError(field, `must be ${forms}`);
}

/** Reads a secret from its source; a missing or empty one is a ConfigError. */
export function readSecret(source: SecretSource, field: string): string {
  let text: string | undefined;
  if ("file" in source) {
    try {
      text = readFileSync(source.file, "utf8").split("\n")[0]?.trim();
    } catch (error) {
      throw new ConfigError(field, `cannot read ${source.file}: ${(error as Error).message}`);
    }
  } else if ("env" in source) {
    text = process.env[source.env];
  } else {
    text = source.value;
  }
  if (text === undefined || text.length < 16) {
    const where = "file" in source ? source.file : "env" in source ? `$${source.env}` : "the value";
    throw new ConfigError(field, `${where} must hold at least 16 characters`);
  }
  return text;
}

/** Validates a parsed configuration object. */
export function parseConfig(raw: unknown): ClusterConfig {
  if (!isObject(raw)) throw new ConfigError("", "the configuration must be a JSON object");
  if (typeof raw.cluster !== "string" && typeof raw.cluster !== "number") {
    throw new ConfigError("cluster", "is required (a name, a decimal or a 0x-hex 128-bit id)");
  }
  const clusterName = String(raw.cluster);
  let cluster: Uint8Array;
  try {
    cluster = parseClusterId(clusterName);
  } catch (error) {
    throw new ConfigError("cluster", (error as Error).message);
  }
  if (!Array.isArray(raw.replicas)) throw new ConfigError("replicas", "must be a list");
  if (!(replicaCountsAllowed as readonly number[]).includes(raw.replicas.length)) {
    throw new ConfigError("replicas", `must list 1, 3 or 5 replicas, got ${raw.replicas.length}`);
  }
  const replicas = raw.replicas.map((entry: unknown, index: number): ReplicaAddress => {
    const field = `replicas[${index}]`;
    if (!isObject(entry)) throw new ConfigError(field, "must be an object");
    const bus = hostPort(entry.bus, `${field}.bus`);
    const api = hostPort(entry.api, `${field}.api`);
    if (typeof entry.dataDir !== "string" || entry.dataDir === "") throw new ConfigError(`${field}.dataDir`, "is required");
    const apiUrl = typeof entry.apiUrl === "string" ? entry.apiUrl : `http://${entry.api as string}`;
    const clientPort = entry.clientPort === undefined ? null : hostPort(entry.clientPort, `${field}.clientPort`);
    const clientUrl = clientPort === null ? null : typeof entry.clientUrl === "string" ? entry.clientUrl : `chronon://${entry.clientPort as string}`;
    return { bus, api, apiUrl, clientPort, clientUrl, dataDir: entry.dataDir };
  });
  const seen = new Set<string>();
  replicas.forEach((replica, index) => {
    const addresses = [["bus", replica.bus], ["api", replica.api]] as [string, { host: string; port: number }][];
    if (replica.clientPort !== null) addresses.push(["clientPort", replica.clientPort]);
    for (const [kind, address] of addresses) {
      const key = `${address.host}:${address.port}`;
      if (address.port !== 0 && seen.has(key)) throw new ConfigError(`replicas[${index}].${kind}`, `${key} is used twice`);
      seen.add(key);
    }
  });
  const readAccess = raw.readAccess ?? "public";
  if (readAccess !== "public" && readAccess !== "token") throw new ConfigError("readAccess", 'must be "public" or "token"');
  if (readAccess === "token" && (raw.token === undefined || raw.token === "none")) {
    throw new ConfigError("readAccess", '"token" needs a token ({"file": PATH}, {"env": NAME} or {"value": TEXT})');
  }
  return {
    clusterName,
    cluster,
    replicas,
    secret: secretSource(raw.secret, "secret"),
    token: raw.token === undefined ? null : raw.token === "none" ? "none" : secretSource(raw.token, "token"),
    readAccess,
    tickMs: integer(raw, "tickMs", 10, 1, 1000),
    checkpointIntervalOps: integer(raw, "checkpointIntervalOps", checkpointIntervalOpsDefault, 16, 1 << 24),
    clientSessionsMax: integer(raw, "clientSessionsMax", 4096, 1, 1 << 20),
    requestBodySizeMax: integer(raw, "requestBodySizeMax", 64 * 1024, 1, 1024 * 1024),
    effectAttemptsMax: integer(raw, "effectAttemptsMax", 8, 1, 1000),
    effectTimeoutMs: integer(raw, "effectTimeoutMs", 5000, 1, 600_000),
    ioPollMicros: integer(raw, "ioPollMicros", 0, 0, pollMicrosMax),
    heapGrowthPercent: integer(raw, "heapGrowthPercent", heapGrowthPercentDefault, 0, 1000),
  };
}

/** How the API treats writes under `config.token`, with the line the node logs at start. */
export interface ApiAccess {
  /** The bearer token, when one is configured. */
  readonly token?: string;
  /** Writes without a configured token: refused (default) or open (`"token": "none"`). */
  readonly tokenlessWrites: "refuse" | "open";
  /** A warning for the operator, or null when a token is set. */
  readonly warning: string | null;
}

/** Resolves the API access policy of a configuration (reads the token from its source). */
export function apiAccess(config: ClusterConfig): ApiAccess {
  if (config.token === "none") {
    return {
      tokenlessWrites: "open",
      warning: 'WARNING: "token": "none": the API takes writes from anyone who can reach it (development only)',
    };
  }
  if (config.token === null) {
    return {
      tokenlessWrites: "refuse",
      warning: 'no API token configured: the API refuses every write (set "token" in the cluster file)',
    };
  }
  return { token: readSecret(config.token, "token"), tokenlessWrites: "refuse", warning: null };
}

/** Reads and validates a configuration file. */
export function loadConfig(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError("", `cannot read ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError("", `${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseConfig(raw);
}
