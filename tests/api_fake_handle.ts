// A fake NodeHandle for API and client tests (test-only): a "cluster" of fake replicas
// sharing one replicated state (a counter, a client table, an outbox, a channel), with
// switches for failover, hangs and outages. It applies each (session, request) once and
// answers retries from the stored reply, as the real replica does.
import type { ApiError } from "../src/api/errors.ts";
import { MetricsRegistry } from "../src/api/metrics.ts";
import type { HandleResult, NodeHandle, NodeStatus, SubmitReply, SubmitRequest } from "../src/api/node_handle.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

export class FakeCluster {
  primary = 0;
  view = 0;
  counter = 0;
  /** Applications in order: what the state machine executed (retries must not add). */
  readonly applied: { session: string; request: number; event: unknown }[] = [];
  readonly sessions = new Map<string, { request: number; reply: SubmitReply | null; error: ApiError | null }>();
  readonly channel: unknown[] = ["a", "b", "c", "d", "e"];
  readonly effects = [
    { id: "11".repeat(16), status: "pending", kind: "http", attempts: 1 },
    { id: "22".repeat(16), status: "dead", kind: "http", attempts: 5, lastError: "HTTP 500" },
  ];
  /** API base URLs by replica, for not_primary hints. */
  apiUrls: string[] = [];
  /** Called after a request is applied and before it is answered; return "hang" to never answer. */
  afterApply: ((replica: number) => "answer" | "hang") | null = null;
  readonly handles: FakeHandle[] = [];

  constructor(replicaCount: number) {
    for (let i = 0; i < replicaCount; i++) this.handles.push(new FakeHandle(this, i));
  }
}

export class FakeHandle implements NodeHandle {
  /** Calls that reached this handle, by method (validation must stop bad input before). */
  readonly calls: string[] = [];
  /** When set, every call answers this error. */
  outage: ApiError | null = null;
  recovering = false;
  /** When set, submits are applied (as usual) but never answered. */
  hang = false;
  readonly metrics = new MetricsRegistry();

  constructor(readonly cluster: FakeCluster, readonly replica: number) {
    this.metrics.counter("chronon_commits_total", "Ops committed.").inc({}, 3);
    this.metrics.collect("chronon_bus_connections_dropped_total", "Bus connections dropped.", "counter", () => [[{ reason: "bad_mac" }, 2], [{ reason: "garbage" }, 0]]);
  }

  private gate(): ApiError | null {
    if (this.outage !== null) return this.outage;
    if (this.cluster.primary !== this.replica) {
      const primary = this.cluster.apiUrls[this.cluster.primary];
      return { code: "not_primary", message: `replica ${this.replica} is not the primary`, ...(primary === undefined ? {} : { primary }) };
    }
    return null;
  }

  registerSession(session: Uint8Array): Promise<HandleResult<{ session: Uint8Array }>> {
    this.calls.push("registerSession");
    const refused = this.gate();
    if (refused !== null) return Promise.resolve({ ok: false, error: refused });
    const key = hex(session);
    if (!this.cluster.sessions.has(key)) this.cluster.sessions.set(key, { request: 0, reply: null, error: null });
    return Promise.resolve({ ok: true, value: { session } });
  }

  submit(request: SubmitRequest): Promise<HandleResult<SubmitReply>> {
    this.calls.push("submit");
    const refused = this.gate();
    if (refused !== null) return Promise.resolve({ ok: false, error: refused });
    const key = hex(request.session);
    const entry = this.cluster.sessions.get(key);
    if (entry === undefined) return Promise.resolve({ ok: false, error: { code: "session_evicted", message: "session evicted" } });
    if (request.request < entry.request) return Promise.resolve({ ok: false, error: { code: "bad_request", message: "stale request" } });
    if (request.request === entry.request) {
      if (this.hang) return new Promise(() => {});
      return Promise.resolve(entry.error !== null ? { ok: false, error: entry.error } : { ok: true, value: entry.reply! });
    }
    const event = request.event as { add?: number; fail?: string };
    entry.request = request.request;
    this.cluster.applied.push({ session: key, request: request.request, event: request.event });
    if (typeof event.fail === "string") {
      entry.error = { code: "rejected", message: event.fail };
      entry.reply = null;
    } else {
      this.cluster.counter += typeof event.add === "number" ? event.add : 0;
      entry.reply = { reply: { counter: this.cluster.counter, echo: request.event }, op: this.cluster.applied.length };
      entry.error = null;
    }
    if (this.cluster.afterApply?.(this.replica) === "hang" || this.hang) return new Promise(() => {});
    return Promise.resolve(entry.error !== null ? { ok: false, error: entry.error } : { ok: true, value: entry.reply! });
  }

  query(query: { query: unknown; consistency: "linearizable" | "stale" }): Promise<HandleResult<{ result: unknown }>> {
    this.calls.push("query");
    if (query.consistency === "linearizable") {
      const refused = this.gate();
      if (refused !== null) return Promise.resolve({ ok: false, error: refused });
    } else if (this.outage !== null) {
      return Promise.resolve({ ok: false, error: this.outage });
    }
    if (query.query === "throw") return Promise.resolve({ ok: false, error: { code: "rejected", message: "query threw" } });
    return Promise.resolve({ ok: true, value: { result: { counter: this.cluster.counter, consistency: query.consistency, query: query.query } } });
  }

  listEffects(filter: { status: "pending" | "dead"; after: string | null; limit: number }) {
    this.calls.push("listEffects");
    const effects = this.cluster.effects.filter((e) => e.status === filter.status && (filter.after === null || e.id > filter.after)).slice(0, filter.limit);
    return Promise.resolve({ ok: true as const, value: { effects, next: null } });
  }

  retryEffect(id: string): Promise<HandleResult<{ id: string }>> {
    this.calls.push("retryEffect");
    const effect = this.cluster.effects.find((e) => e.id === id && e.status === "dead");
    if (effect === undefined) return Promise.resolve({ ok: false, error: { code: "not_found", message: `no dead-lettered effect ${id}` } });
    effect.status = "pending";
    return Promise.resolve({ ok: true, value: { id } });
  }

  readChannel(read: { channel: string; cursor: number; limit: number }) {
    this.calls.push("readChannel");
    const entries = this.cluster.channel.slice(read.cursor, read.cursor + read.limit).map((payload, i) => ({ cursor: read.cursor + i, payload }));
    return Promise.resolve({ ok: true as const, value: { entries, next: read.cursor + entries.length } });
  }

  status(): NodeStatus {
    return {
      cluster: "test", replica: this.replica, replicaCount: this.cluster.handles.length,
      status: this.recovering ? "recovering" : "normal", view: this.cluster.view,
      op: this.cluster.applied.length, commit: this.cluster.applied.length, primary: this.cluster.primary,
      peers: this.cluster.handles.filter((h) => h !== this).map((h) => ({ replica: h.replica, connected: true, lagOps: 0 })),
    };
  }

  metricsText(): string {
    return this.metrics.render();
  }
}
