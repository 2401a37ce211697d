import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWebhookSink } from "../src/cli/demo/webhook_sink.ts";
import { decodeHeader, encodeEntry, rootEntry } from "../src/codec/entry_header.ts";
import { Client } from "../src/client/client.ts";
import { RejectedError } from "../src/client/errors.ts";
import { parseConfig } from "../src/node/config.ts";
import { startReplica } from "../src/node/replica_node.ts";
import type {
  ClientQuery, ClientReply, ClientRequest, Ready, RecoveredState, ReplicaConfig, ReplicaCore, ReplicaStatus, StorageAction, StorageResult,
} from "../src/vsr/replica_api.ts";
import type { StateMachine } from "../src/vsr/state_machine.ts";
import bank from "../examples/bank.ts";

/**
 * A test double of the replica for a one-replica cluster: every request becomes the next
 * entry, is committed once the driver reports it durable, and is answered. It exercises
 * the node's driver (storage actions on the real journal, the pump, reply routing, the
 * API, the effect runner's supervision) without the protocol, which has its own tests.
 */
class SoloCore implements ReplicaCore {
  readonly stateMachine: StateMachine;
  readonly #config: ReplicaConfig;
  #op = 0;
  #commit = 0;
  #parent: Uint8Array;
  #nextId = 1;
  #pending = new Map<number, { request: ClientRequest; header: Uint8Array; body: Uint8Array; op: number }>();
  #ready: { storage: StorageAction[]; messages: []; replies: ClientReply[] } = { storage: [], messages: [], replies: [] };
  storageWrites = 0;

  constructor(config: ReplicaConfig, stateMachine: StateMachine, recovered: RecoveredState) {
    assert.equal(recovered.headers.length, 0, "the double starts from an empty journal");
    this.#config = config;
    this.stateMachine = stateMachine;
    this.#parent = decodeHeader(rootEntry(config.cluster)).checksum;
  }

  tick(): void {}
  receive(): void {}

  request(request: ClientRequest): void {
    if (request.operation === 1) {
      this.#ready.replies.push({ token: request.token, body: new Uint8Array(0), view: 1, primary: 0 });
      return;
    }
    this.#op += 1;
    const header = encodeEntry({
      parent: this.#parent, cluster: this.#config.cluster, client: request.client, op: this.#op, commit: this.#commit,
      timestamp: 1_700_000_000_000 + this.#op, view: 1, request: request.request, operation: request.operation,
    }, request.body);
    this.#parent = header.slice(0, 16);
    const id = this.#nextId++;
    this.#pending.set(id, { request, header, body: request.body, op: this.#op });
    this.#ready.storage.push({ kind: "write_entry", id, op: this.#op, header, body: request.body });
  }

  query(query: ClientQuery): void {
    this.#ready.replies.push({ token: query.token, body: this.stateMachine.query(query.body), view: 1, primary: 0 });
  }

  storageDone(id: number, result: StorageResult): void {
    assert.ok(result.ok);
    this.storageWrites++;
    const entry = this.#pending.get(id);
    assert.ok(entry !== undefined);
    this.#pending.delete(id);
    assert.equal(entry.op, this.#commit + 1, "entries become durable in op order");
    this.#commit = entry.op;
    const body = this.stateMachine.commit({
      op: entry.op, view: 1, timestamp: 1_700_000_000_000 + entry.op, client: entry.request.client, request: entry.request.request,
      operation: entry.request.operation, body: entry.body, checksum: entry.header.slice(0, 16),
    });
    this.#ready.replies.push({ token: entry.request.token, body, view: 1, primary: 0, op: entry.op });
  }

  ready(): Ready {
    const ready = this.#ready;
    this.#ready = { storage: [], messages: [], replies: [] };
    return ready;
  }

  status(): ReplicaStatus {
    return { replica: 0, status: "normal", view: 1, logView: 1, op: this.#op, commit: this.#commit, primary: 0, checkpointOp: 0, droppedForeignCluster: 0 };
  }
}

test("a node drives its replica: requests are journaled, committed, answered over HTTP, and the primary's effects reach the sink once", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-node-"));
  const config = parseConfig({
    cluster: "node-driver-test",
    replicas: [{ bus: "127.0.0.1:0", api: "127.0.0.1:0", dataDir: join(dir, "data") }],
    secret: { value: "a-secret-of-enough-length" },
    token: "none",
  });
  const sink = await startWebhookSink();
  let core: SoloCore | null = null;
  const running = await startReplica({
    config,
    replica: 0,
    app: bank,
    format: true,
    io: "sync",
    log: () => {},
    createReplica: (replicaConfig, stateMachine, recovered) => (core = new SoloCore(replicaConfig, stateMachine, recovered)),
  });
  try {
    const url = `http://127.0.0.1:${running.apiPort}`;
    const client = new Client<typeof bank>({ addresses: [url], deadlineMs: 10_000 });
    await client.submit({ type: "configure", webhookUrl: sink.url });
    await client.submit({ type: "open", account: "a" });
    await client.submit({ type: "open", account: "b" });
    await client.submit({ type: "deposit", account: "a", amount: 100 });
    await client.submit({ type: "transfer", from: "a", to: "b", amount: 30 });
    await assert.rejects(client.submit({ type: "transfer", from: "a", to: "b", amount: 1000 }), RejectedError);
    assert.equal(await client.query({ type: "balance", account: "b" }), 30);
    assert.equal(await client.query({ type: "total" }), 100);

    assert.ok(core !== null);
    const solo = core as SoloCore;
    assert.ok(solo.storageWrites >= 6, "every event went through the journal");
    // The transfer's webhook is executed by the effect runner and its acknowledgement
    // committed through the log (one more entry).
    for (let i = 0; i < 200 && sink.counts().applied === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.equal(sink.counts().applied, 1);
    for (let i = 0; i < 200 && solo.status().commit < 7; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    const status = await (await fetch(`${url}/v1/status`)).json() as { commit: number; status: string };
    assert.equal(status.status, "normal");
    assert.equal(status.commit, 7, "six events and one effect acknowledgement");
    const pending = await (await fetch(`${url}/v1/effects?status=pending`)).json() as { effects: unknown[] };
    assert.equal(pending.effects.length, 0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /chronon_fsync_seconds_count\{kind="write_entry"\} [1-9]/);
    assert.match(metrics, /chronon_commit_op 7/);
    // The transfer's channel entry was committed (the bank emits one per transfer).
    const channel = await (await fetch(`${url}/v1/channels/transfers?cursor=0`)).json() as { entries: unknown[] };
    assert.equal(channel.entries.length, 1);
  } finally {
    await running.stop();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
