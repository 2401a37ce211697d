/**
 * A trivial single-node replica for the simulator's own tests (not a product): it appends
 * each request as an entry, commits it once the write completes, and answers. It lets the
 * simulator's plumbing be tested apart from src/vsr.
 */
import { encodeEntry, rootEntry } from "../src/codec/entry_header.ts";
import type {
  ClientQuery, ClientReply, ClientRequest, Ready, RecoveredState, ReplicaConfig, ReplicaCore, ReplicaStatus,
  StorageAction, StorageResult,
} from "../src/vsr/replica_api.ts";
import type { StateMachine } from "../src/vsr/state_machine.ts";

export class FakeReplica implements ReplicaCore {
  private storage: StorageAction[] = [];
  private replies: ClientReply[] = [];
  private parent: Uint8Array;
  private op = 0;
  private commit = 0;
  private nextId = 1;
  private readonly waiting = new Map<number, { request: ClientRequest; header: Uint8Array; op: number; timestamp: number }>();
  private nowMs = 0;
  /** When set, commits this op twice with different bodies (to prove the checkers fire). */
  corruptOp = -1;

  constructor(readonly config: ReplicaConfig, readonly stateMachine: StateMachine, _recovered: RecoveredState) {
    this.parent = rootEntry(config.cluster).subarray(0, 16);
  }
  tick(nowMs: number): void {
    this.nowMs = Math.max(this.nowMs, nowMs);
  }
  receive(_bytes: Uint8Array): void {}
  request(request: ClientRequest): void {
    if (request.request === 0) {
      this.replies.push({ token: request.token, body: new Uint8Array(0), view: 0, primary: 0 });
      return;
    }
    const op = ++this.op;
    const header = encodeEntry({
      parent: this.parent, cluster: this.config.cluster, client: request.client, op, commit: this.commit,
      timestamp: this.nowMs, view: 0, request: request.request, operation: request.operation,
    }, request.body);
    this.parent = header.subarray(0, 16);
    const id = this.nextId++;
    this.waiting.set(id, { request, header, op, timestamp: this.nowMs });
    this.storage.push({ kind: "write_entry", id, op, header, body: request.body });
  }
  query(query: ClientQuery): void {
    this.replies.push({ token: query.token, body: this.stateMachine.query(query.body), view: 0, primary: 0 });
  }
  storageDone(id: number, _result: StorageResult): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    this.commit = w.op;
    const entry = {
      op: w.op, view: 0, timestamp: w.timestamp, client: w.request.client, request: w.request.request,
      operation: w.request.operation, body: w.request.body, checksum: w.header.subarray(0, 16),
    };
    const body = this.stateMachine.commit(entry);
    if (w.op === this.corruptOp) {
      const other = w.header.slice(0, 16);
      other[0] = other[0]! ^ 1;
      this.stateMachine.commit({ ...entry, checksum: other });
    }
    this.replies.push({ token: w.request.token, body, view: 0, primary: 0, op: w.op });
  }
  ready(): Ready {
    const ready = { storage: this.storage, messages: [], replies: this.replies };
    this.storage = [];
    this.replies = [];
    return ready;
  }
  status(): ReplicaStatus {
    return {
      replica: 0, status: "normal", view: 0, logView: 0, op: this.op, commit: this.commit, primary: 0,
      checkpointOp: 0, droppedForeignCluster: 0, voting: true, commitMax: this.commit,
    };
  }
}
