import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeHeader, verifyBody } from "../src/codec/entry_header.ts";
import { decodeMessage } from "../src/vsr/message.ts";
import { decode as cborDecode } from "cborg";
import { decodeCheckpoint } from "../src/vsr/checkpoint.ts";
import { clientId, Cluster, type Flight, SteppedListMachine, untext } from "./vsr_harness.ts";

function started(n: number, config = {}): { c: Cluster; p: number } {
  const c = new Cluster({ replicaCount: n, config });
  c.tick(30);
  const p = c.primary();
  assert.ok(p >= 0, "a primary emerges");
  return { c, p };
}

function kindOf(f: Flight): string {
  return decodeMessage(f.bytes, new Uint8Array(16).fill(7)).kind;
}

/** Ticks until a live primary other than `not` is normal. */
function newPrimary(c: Cluster, not: number, ticksMax = 400): number {
  for (let i = 0; i < ticksMax; i++) {
    c.tick(1);
    for (let r = 0; r < c.n; r++) {
      const s = c.replicas[r]?.status();
      if (r !== not && s !== undefined && s.status === "normal" && s.primary === r) return r;
    }
  }
  throw new Error(`no new primary: ${JSON.stringify(c.replicas.map((r) => r?.status()))}`);
}

describe("vsr scenarios", () => {
  test("lost prepare: the backup that missed it catches up by retransmission", () => {
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    const lagging = (p + 1) % 3;
    let dropped = 0;
    const t = c.request(p, client, 1, "a");
    c.settle((f) => {
      if (f.to === lagging && kindOf(f) === "prepare" && dropped === 0) {
        dropped++;
        return true;
      }
      return false;
    });
    assert.equal(dropped, 1);
    assert.equal(untext(c.reply(t)?.body), "ok:1", "committed with the other backup");
    c.tick(20);
    for (let r = 0; r < 3; r++) assert.deepEqual(c.machines[r]!.items, ["a"], `replica ${r}`);
  });

  test("primary crash after commit: the committed op survives and a retry gets the stored reply", () => {
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    const t = c.request(p, client, 1, "a");
    c.settle();
    assert.equal(untext(c.reply(t)?.body), "ok:1");
    c.crash(p);
    const q = newPrimary(c, p);
    const retry = c.request(q, client, 1, "a");
    c.settle();
    const reply = c.reply(retry);
    assert.equal(untext(reply?.body), "ok:1", JSON.stringify(reply));
    const next = c.request(q, client, 2, "b");
    c.settle();
    assert.equal(untext(c.reply(next)?.body), "ok:2");
    c.tick(10);
    for (let r = 0; r < 3; r++) if (r !== p) assert.deepEqual(c.machines[r]!.items, ["a", "b"]);
  });

  test("primary crash before commit: the op is applied at most once after the client retries", () => {
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    const b1 = (p + 1) % 3;
    c.request(p, client, 1, "a");
    // The prepare reaches one backup; its prepare_ok never reaches the primary.
    c.settle((f) => (f.from === p && f.to !== b1) || (f.to === p && kindOf(f) === "prepare_ok"));
    c.crash(p);
    const q = newPrimary(c, p);
    c.tick(5);
    const retry = c.request(q, client, 1, "a");
    c.settle();
    c.tick(5);
    const reply = c.reply(retry);
    assert.equal(reply?.error, undefined, JSON.stringify(reply));
    c.restart(p);
    c.tick(60);
    for (let r = 0; r < 3; r++) assert.deepEqual(c.machines[r]!.items, ["a"], `replica ${r}`);
  });

  test("two view changes in a row (5 replicas, two primaries crash)", () => {
    const { c, p } = started(5);
    const client = clientId(1);
    c.register(p, client);
    c.request(p, client, 1, "a");
    c.settle();
    c.crash(p);
    const q = newPrimary(c, p);
    const t2 = c.request(q, client, 2, "b");
    c.settle();
    assert.equal(untext(c.reply(t2)?.body), "ok:2");
    c.crash(q);
    const s = newPrimary(c, q);
    assert.notEqual(s, p);
    const t3 = c.request(s, client, 3, "c");
    c.settle();
    assert.equal(untext(c.reply(t3)?.body), "ok:3");
    c.tick(10);
    for (let r = 0; r < 5; r++) if (r !== p && r !== q) assert.deepEqual(c.machines[r]!.items, ["a", "b", "c"]);
    c.restart(p);
    c.restart(q);
    c.tick(80);
    c.agree();
    for (let r = 0; r < 5; r++) assert.deepEqual(c.machines[r]!.items, ["a", "b", "c"], `replica ${r} after restarts`);
  });

  test("a partitioned old primary comes back, steps down and discards its uncommitted suffix", () => {
    const { c, p } = started(3);
    const a = clientId(1);
    const b = clientId(2);
    c.register(p, a);
    c.register(p, b);
    c.request(p, a, 1, "committed");
    c.settle();
    for (let r = 0; r < 3; r++) if (r !== p) { c.cut.add(`${p}>${r}`); c.cut.add(`${r}>${p}`); }
    const lost = c.request(p, a, 2, "uncommitted");
    c.settle();
    assert.equal(c.reply(lost), undefined, "no quorum, no reply");
    const q = newPrimary(c, p);
    const t = c.request(q, b, 1, "new-view");
    c.settle();
    assert.equal(untext(c.reply(t)?.body), "ok:2");
    c.cut.clear();
    c.tick(60);
    assert.notEqual(c.replica(p).status().primary, p, "old primary stepped down");
    assert.equal(c.replica(p).status().status, "normal");
    for (let r = 0; r < 3; r++) assert.deepEqual(c.machines[r]!.items, ["committed", "new-view"], `replica ${r}`);
    // The client retries its uncommitted request at the new primary: applied exactly once.
    const retry = c.request(q, a, 2, "uncommitted");
    c.settle();
    assert.equal(untext(c.reply(retry)?.body), "ok:3");
    c.tick(10);
    for (let r = 0; r < 3; r++) assert.deepEqual(c.machines[r]!.items, ["committed", "new-view", "uncommitted"]);
  });

  test("a corrupted entry on one backup is repaired from a peer, in place", () => {
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    for (let i = 1; i <= 4; i++) { c.request(p, client, i, `v${i}`); c.settle(); }
    c.tick(10);
    const b = (p + 1) % 3;
    c.crash(b);
    c.disks[b]!.corrupt(3);
    c.restart(b);
    c.tick(40);
    const e = c.disks[b]!.entries.get(3)!;
    assert.ok(verifyBody(decodeHeader(e.header), e.body), "entry 3 repaired on disk");
    assert.deepEqual(c.machines[b]!.items, ["v1", "v2", "v3", "v4"].slice(0, c.machines[b]!.items.length));
    assert.equal(c.replica(b).status().commit, 5);
  });

  test("a replica restarted with an empty disk does not vote until it has caught up", () => {
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    for (let i = 1; i <= 3; i++) { c.request(p, client, i, `v${i}`); c.settle(); }
    const b = (p + 1) % 3;
    c.crash(b);
    c.restart(b, { wipe: true });
    assert.equal(c.replica(b).status().voting, false);
    // Cut it off from the primary: it cannot catch up, so it must never acknowledge or vote.
    c.cut.add(`${p}>${b}`);
    const sent: string[] = [];
    c.tick(30, (f) => {
      if (f.from === b) sent.push(kindOf(f));
      return false;
    });
    assert.ok(!sent.includes("prepare_ok") && !sent.includes("do_view_change") && !sent.includes("start_view_change"), sent.join(","));
    c.cut.clear();
    c.tick(40);
    assert.equal(c.replica(b).status().voting, true);
    assert.deepEqual(c.machines[b]!.items, ["v1", "v2", "v3"]);
  });

  test("a lost-disk replica stays non-voting while only the primary answers its recovery round", () => {
    // The simulator found this (seed 149893223946938): the wiped replica may have
    // acknowledged ops before it lost its disk; with the third replica down, its vote
    // would form a quorum with the primary that does not hold them.
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    for (let i = 1; i <= 3; i++) { c.request(p, client, i, `v${i}`); c.settle(); }
    const b = (p + 1) % 3;
    const down = (p + 2) % 3;
    c.crash(down);
    c.crash(b);
    c.restart(b, { wipe: true });
    c.tick(60);
    // It caught up with the primary's log and state, but one answer is not a quorum.
    assert.deepEqual(c.machines[b]!.items, ["v1", "v2", "v3"]);
    assert.equal(c.replica(b).status().voting, false);
    c.restart(down);
    c.tick(60);
    assert.equal(c.replica(b).status().voting, true);
  });

  test("a retried request is answered from the stored reply and applied once", () => {
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    const t1 = c.request(p, client, 1, "a");
    c.settle();
    const t2 = c.request(p, client, 1, "a");
    c.settle();
    assert.equal(untext(c.reply(t1)?.body), "ok:1");
    assert.equal(untext(c.reply(t2)?.body), "ok:1");
    assert.equal(c.reply(t2)?.op, c.reply(t1)?.op);
    assert.deepEqual(c.machines[p]!.items, ["a"]);
    const stale = c.request(p, client, 0, "");
    c.settle();
    assert.equal(c.reply(stale)?.error, "stale_request");
    const unknown = c.request(p, clientId(9), 1, "x");
    assert.equal(c.reply(unknown)?.error, "session_unknown");
  });

  test("session eviction is deterministic and definite", () => {
    const { c, p } = started(3, { clientSessionsMax: 2 });
    c.register(p, clientId(1));
    c.register(p, clientId(2));
    c.register(p, clientId(3));
    const t = c.request(p, clientId(1), 1, "x");
    assert.equal(c.reply(t)?.error, "session_evicted");
    const ok = c.request(p, clientId(2), 1, "y");
    c.settle();
    assert.equal(untext(c.reply(ok)?.body), "ok:1");
  });

  test("state transfer brings a replica behind the checkpoint up to date", () => {
    const { c, p } = started(3, { checkpointIntervalOps: 4 });
    const client = clientId(1);
    c.register(p, client);
    const b = (p + 1) % 3;
    c.crash(b);
    for (let i = 1; i <= 12; i++) { c.request(p, client, i, `v${i}`); c.settle(); }
    c.tick(5);
    assert.ok(c.replica(p).status().checkpointOp >= 8, "the primary checkpointed");
    c.restart(b, { wipe: true });
    c.tick(60);
    assert.ok(c.replica(b).counters.stateTransfers >= 1, "state transfer happened");
    assert.equal(c.replica(b).status().commit, 13);
    assert.deepEqual(c.machines[b]!.items, c.machines[p]!.items);
    assert.deepEqual(c.machines[b]!.stateHash(), c.machines[p]!.stateHash());
  });

  test("a stepped snapshot: commits go on while it is encoded, the checkpoint holds the state at its op, the next one waits", () => {
    const steps = 6;
    const c = new Cluster({ replicaCount: 3, config: { checkpointIntervalOps: 4 }, machine: () => new SteppedListMachine(steps) });
    c.tick(30);
    const p = c.primary();
    assert.ok(p >= 0, "a primary emerges");
    const client = clientId(1);
    c.register(p, client); // op 1 (after the view's ops)
    const base = c.replica(p).status().commit;
    const target = Math.ceil((base + 1) / 4) * 4; // the first checkpoint op above
    let i = 0;
    // Replica r checkpoints at the ops ≡ ⌊r·4/3⌋ (mod 4): at target, target + 1 and
    // target + 2. Up to target + 3 (no replica's checkpoint op) commits go past all three.
    while (c.replica(p).status().commit < target + 3) {
      c.request(p, client, ++i, `v${i}`);
      c.settle();
    }
    // Committed past the checkpoint op; fewer ready() calls than steps may have run.
    const machine = c.machines[p] as SteppedListMachine;
    assert.ok(machine.jobs.begun >= 1, "the checkpoint began a stepped snapshot");
    c.tick(20);
    for (let r = 0; r < 3; r++) {
      const disk = c.disks[r]!;
      const m = c.machines[r] as SteppedListMachine;
      assert.ok(disk.checkpoint !== null && disk.checkpoint.op >= target, `replica ${r} wrote a checkpoint`);
      assert.ok(m.jobs.steps >= steps, `replica ${r} stepped its job to the end`);
      assert.equal(c.replica(r).status().checkpointOp, disk.checkpoint.op);
      // The blob holds the state at its op: as many items as ops committed by then
      // minus the replica's own (register) ops, whatever was committed while it was encoded.
      const parts = decodeCheckpoint(disk.checkpoint.bytes);
      const items = cborDecode(parts.state) as string[];
      const appliedByOp = m.applied.filter((op) => op <= disk.checkpoint!.op).length;
      assert.deepEqual(items, m.items.slice(0, appliedByOp), `replica ${r}: the checkpoint holds the state at op ${disk.checkpoint.op}`);
      assert.ok(m.applied.some((op) => op > disk.checkpoint!.op), `replica ${r}: commits went on past the checkpoint`);
    }
    // A restart recovers from the stepped checkpoint and agrees.
    c.crash((p + 1) % 3);
    c.restart((p + 1) % 3);
    c.tick(30);
    c.request(p, client, ++i, "after");
    c.settle();
    c.tick(5);
    c.agree();
  });

  test("replicas checkpoint at staggered ops: replica r at r/n of the interval, never two at one op", () => {
    const interval = 6;
    const { c, p } = started(3, { checkpointIntervalOps: interval });
    const client = clientId(1);
    c.register(p, client);
    const seen: Set<number>[] = [new Set(), new Set(), new Set()];
    for (let i = 1; i <= 4 * interval; i++) {
      c.request(p, client, i, `v${i}`);
      c.settle();
      for (let r = 0; r < 3; r++) {
        const op = c.disks[r]!.checkpoint?.op;
        if (op !== undefined && op > 0) seen[r]!.add(op);
      }
    }
    for (let r = 0; r < 3; r++) {
      const ops = [...seen[r]!];
      assert.ok(ops.length >= 3, `replica ${r} checkpointed repeatedly: ${ops}`);
      for (const op of ops) assert.equal(op % interval, Math.floor((r * interval) / 3), `replica ${r}'s checkpoint op ${op}`);
    }
    c.agree();
  });

  test("a stepped snapshot is handed the state bytes of the checkpoint the latest one replaced, never those still kept", () => {
    const c = new Cluster({ replicaCount: 3, config: { checkpointIntervalOps: 4 }, machine: () => new SteppedListMachine(2) });
    c.tick(30);
    const p = c.primary();
    assert.ok(p >= 0, "a primary emerges");
    const client = clientId(1);
    c.register(p, client);
    const m = c.machines[p] as SteppedListMachine;
    let i = 0;
    while (m.jobs.begun < 5) {
      c.request(p, client, ++i, `v${i}`);
      c.settle();
      c.tick(1);
    }
    // Job 1's checkpoint replaced the genesis image (not a job's): nothing to reuse. From
    // job 3 on, each gets the result of the job two before it, whose checkpoint the
    // previous one replaced; never the bytes of the checkpoint still kept for transfer.
    assert.equal(m.reused[0], undefined);
    assert.equal(m.reused[1], undefined);
    for (let job = 2; job < m.jobs.begun; job++) {
      assert.equal(m.reused[job], m.results[job - 2], `job ${job + 1} reuses job ${job - 1}'s bytes`);
      assert.notEqual(m.reused[job], m.results[job - 1], `job ${job + 1} does not get the kept checkpoint's bytes`);
    }
    c.tick(20);
    c.agree();
  });

  test("linearizable reads: answered by a confirmed primary, refused by a deposed one; stale reads at once", () => {
    const { c, p } = started(3);
    const client = clientId(1);
    c.register(p, client);
    c.request(p, client, 1, "a");
    c.settle();
    const ok = c.query(p, "all", "linearizable");
    c.settle();
    assert.equal(untext(c.reply(ok)?.body), JSON.stringify(["a"]));
    const b = (p + 1) % 3;
    const refused = c.query(b, "all", "linearizable");
    assert.equal(c.reply(refused)?.error, "not_primary");
    c.tick(5);
    const stale = c.query(b, "all", "stale");
    assert.equal(untext(c.reply(stale)?.body), JSON.stringify(["a"]));
    const failed = c.query(b, "throw", "stale");
    assert.equal(c.reply(failed)?.error, "query_failed");
    // Partition the primary: its read cannot be confirmed, and it is refused once it steps down.
    for (let r = 0; r < 3; r++) if (r !== p) { c.cut.add(`${p}>${r}`); c.cut.add(`${r}>${p}`); }
    const deposed = c.query(p, "all", "linearizable");
    c.settle();
    assert.equal(c.reply(deposed), undefined, "no quorum, no answer");
    newPrimary(c, p);
    c.cut.clear();
    c.tick(30);
    assert.equal(c.reply(deposed)?.error, "not_primary");
  });

  test("foreign-cluster messages and garbage are dropped and counted, never crash", () => {
    const { c, p } = started(3);
    const other = new Cluster({ replicaCount: 3, config: { cluster: new Uint8Array(16).fill(9) } });
    other.tick(5);
    const foreign: Flight[] = [];
    other.tick(8, (f) => { foreign.push(f); return true; });
    assert.ok(foreign.length > 0);
    for (const f of foreign) c.replica(p).receive(f.bytes);
    assert.equal(c.replica(p).status().droppedForeignCluster, foreign.length);
    let seed = 1;
    for (let i = 0; i < 500; i++) {
      const size = i % 200;
      const bytes = new Uint8Array(size);
      for (let j = 0; j < size; j++) { seed = (seed * 1103515245 + 12345) >>> 0; bytes[j] = seed >>> 24; }
      c.replica(p).receive(bytes);
    }
    // Valid messages with flipped bits are rejected by their checksum.
    c.tick(1, (f) => {
      const copy = f.bytes.slice();
      copy[copy.length - 1]! ^= 1;
      c.replica(f.to).receive(copy);
      return false;
    });
    assert.ok(c.replica(p).counters.droppedMalformed >= 500);
    c.register(p, clientId(1));
  });
});
