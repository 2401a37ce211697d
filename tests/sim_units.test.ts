import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeEntry } from "../src/codec/entry_header.ts";
import { decode } from "cborg";
import { Prng } from "../src/sim/prng.ts";
import { Network } from "../src/sim/network.ts";
import { SimStorage } from "../src/sim/storage.ts";
import { encodeKvCommand, KvStateMachine } from "../src/sim/kv_state_machine.ts";

describe("prng", () => {
  test("the same seed gives the same stream; different seeds differ", () => {
    const a = new Prng(42), b = new Prng(42), c = new Prng(43);
    const sa = Array.from({ length: 50 }, () => a.next32());
    const sb = Array.from({ length: 50 }, () => b.next32());
    const sc = Array.from({ length: 50 }, () => c.next32());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
  });
  test("int stays in range and covers it; chance(0) and chance(1) are exact", () => {
    const p = new Prng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = p.int(10);
      assert.ok(v >= 0 && v < 10);
      seen.add(v);
    }
    assert.equal(seen.size, 10);
    for (let i = 0; i < 100; i++) {
      assert.equal(p.chance(0), false);
      assert.equal(p.chance(1), true);
    }
    assert.ok(p.exponential(5, 3) <= 3);
  });
  test("seeds above 2^32 are distinct", () => {
    assert.notEqual(new Prng(2 ** 40).next32(), new Prng(2 ** 40 + 2 ** 33).next32());
  });
});

const calm = { delayMeanTicks: 1, delayMaxTicks: 1, lossProbability: 0, duplicateProbability: 0, replayProbability: 0, linkInFlightMax: 64 };

function drain(network: Network<string>, until: number): { from: number; to: number; payload: string }[] {
  const out = [];
  for (let t = 0; t <= until; t++) {
    for (let p = network.next(t); p !== undefined; p = network.next(t)) out.push({ from: p.from, to: p.to, payload: p.payload });
  }
  return out;
}

describe("network", () => {
  test("a one-way partition blocks one direction only", () => {
    const network = new Network<string>(3, calm, new Prng(1));
    network.setBlocked(0, 1, true);
    network.send(0, 0, 1, "a→b");
    network.send(0, 1, 0, "b→a");
    network.send(0, 0, 2, "a→c");
    const got = drain(network, 5).map((p) => p.payload).sort();
    assert.deepEqual(got, ["a→c", "b→a"]);
    assert.equal(network.stats.partitioned, 1);
  });
  test("a symmetric partition blocks both ways and heals; in-flight messages are cut off", () => {
    const network = new Network<string>(3, calm, new Prng(1));
    network.send(0, 0, 1, "early");
    network.partition([0], [0, 1, 2]);
    network.send(0, 1, 0, "x");
    network.send(0, 2, 0, "y");
    network.send(0, 1, 2, "z");
    assert.deepEqual(drain(network, 5).map((p) => p.payload), ["z"]);
    network.heal();
    network.send(6, 1, 0, "after");
    assert.deepEqual(drain(network, 10).map((p) => p.payload), ["after"]);
  });
  test("loss 1 loses everything; duplication delivers twice; the link bound drops the excess", () => {
    const lossy = new Network<string>(2, { ...calm, lossProbability: 1 }, new Prng(1));
    for (let i = 0; i < 10; i++) lossy.send(0, 0, 1, "m");
    assert.equal(drain(lossy, 5).length, 0);
    const dup = new Network<string>(2, { ...calm, duplicateProbability: 1 }, new Prng(1));
    dup.send(0, 0, 1, "m");
    assert.equal(drain(dup, 5).length, 2);
    const bounded = new Network<string>(2, { ...calm, linkInFlightMax: 3 }, new Prng(1));
    for (let i = 0; i < 10; i++) bounded.send(0, 0, 1, "m");
    assert.equal(drain(bounded, 5).length, 3);
    assert.equal(bounded.stats.overflowed, 7);
  });
  test("delays reorder messages", () => {
    const network = new Network<number>(2, { ...calm, delayMeanTicks: 10, delayMaxTicks: 100 }, new Prng(3));
    for (let i = 0; i < 50; i++) network.send(0, 0, 1, i);
    const order: number[] = [];
    for (let t = 0; t <= 200; t++) for (let p = network.next(t); p !== undefined; p = network.next(t)) order.push(p.payload);
    assert.equal(order.length, 50);
    assert.notDeepEqual(order, [...order].sort((a, b) => a - b));
  });
});

const cluster = new Uint8Array(16).fill(9);
const zero = new Uint8Array(16);
const storageCalm = { latencyMeanTicks: 0, latencyMaxTicks: 0, tornWriteProbability: 0, misdirectProbability: 0 };

function entry(op: number, parent: Uint8Array): { header: Uint8Array; body: Uint8Array } {
  const body = new Uint8Array([op, op, op]);
  return { header: encodeEntry({ parent, cluster, client: zero, op, commit: 0, timestamp: op, view: 1, request: 0, operation: 16 }, body), body };
}

/** Submits ops 1..count, chained; returns the last one's checksum (the next parent). */
function writeChain(storage: SimStorage, count: number, now: number): Uint8Array {
  let parent: Uint8Array = zero;
  for (let op = 1; op <= count; op++) {
    const e = entry(op, parent);
    parent = e.header.subarray(0, 16);
    storage.submit(now, { kind: "write_entry", id: op, op, header: e.header, body: e.body });
  }
  return parent;
}

describe("storage", () => {
  test("a crash keeps what completed and loses what was in flight", () => {
    const storage = new SimStorage(0, cluster, storageCalm, false, new Prng(5));
    writeChain(storage, 3, 0);
    const done: number[] = [];
    for (let d = storage.next(1); d !== undefined; d = storage.next(1)) done.push(d.id);
    assert.deepEqual(done, [1, 2, 3]);
    storage.submit(1, { kind: "write_superblock", id: 10, superblock: { view: 1, logView: 1, commit: 3, checkpointOp: 0 } });
    // Not completed (the next tick never came): lost or landed unacknowledged, never torn here.
    storage.crash();
    const recovered = storage.recover();
    assert.equal(recovered.headers.length, 3);
    assert.deepEqual(recovered.faultyOps, []);
    assert.ok(recovered.intact);
  });
  test("actions complete in submission order, after their latency", () => {
    const storage = new SimStorage(0, cluster, { ...storageCalm, latencyMeanTicks: 5, latencyMaxTicks: 20 }, false, new Prng(2));
    writeChain(storage, 20, 0);
    const ids: number[] = [];
    for (let t = 0; t < 500; t++) for (let d = storage.next(t); d !== undefined; d = storage.next(t)) ids.push(d.id);
    assert.deepEqual(ids, [...Array(20).keys()].map((i) => i + 1));
  });
  test("a torn write at the tail is truncated by recovery; never reported as faulty", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const storage = new SimStorage(0, cluster, { ...storageCalm, tornWriteProbability: 1 }, false, new Prng(seed));
      const parent = writeChain(storage, 5, 0);
      for (let d = storage.next(1); d !== undefined; d = storage.next(1)) { /* complete all */ }
      const e6 = entry(6, parent);
      storage.submit(1, { kind: "write_entry", id: 6, op: 6, header: e6.header, body: e6.body });
      storage.crash();
      const recovered = storage.recover();
      assert.deepEqual(recovered.faultyOps, []);
      assert.ok(recovered.headers.length === 5 || recovered.headers.length === 6);
    }
  });
  test("an append that does not chain after the entry held below it is a replica bug, as in the real journal", () => {
    const storage = new SimStorage(0, cluster, storageCalm, false, new Prng(3));
    writeChain(storage, 3, 0);
    const stray = entry(4, new Uint8Array(16).fill(7));
    storage.submit(0, { kind: "write_entry", id: 4, op: 4, header: stray.header, body: stray.body });
    assert.throws(() => {
      for (let d = storage.next(1); d !== undefined; d = storage.next(1)) { /* complete all */ }
    }, /op 4 does not chain after op 3 held by the journal/);
  });
  test("an append after an entry recovery found faulty is a replica bug (the journal refuses it)", () => {
    const storage = new SimStorage(0, cluster, storageCalm, true, new Prng(11));
    const parent = writeChain(storage, 4, 0);
    for (let d = storage.next(1); d !== undefined; d = storage.next(1)) { /* complete all */ }
    let flipped = storage.flipBit();
    while (flipped !== 4) {
      // Rewrite until the head is the damaged one (the flip picks an op at random).
      storage.submit(1, { kind: "truncate", id: 90, op: 0 });
      writeChain(storage, 4, 1);
      for (let d = storage.next(2); d !== undefined; d = storage.next(2)) { /* complete all */ }
      flipped = storage.flipBit();
    }
    assert.deepEqual(storage.recover().faultyOps, [4]);
    const next = entry(5, parent);
    storage.submit(3, { kind: "write_entry", id: 5, op: 5, header: next.header, body: next.body });
    assert.throws(() => storage.next(4), /append of op 5 after op 4, which recovery found faulty/);
  });
  test("bit flips are detected at recovery and on reads", () => {
    const storage = new SimStorage(0, cluster, storageCalm, true, new Prng(11));
    writeChain(storage, 8, 0);
    for (let d = storage.next(1); d !== undefined; d = storage.next(1)) { /* complete all */ }
    const op = storage.flipBit();
    assert.ok(op >= 1 && op <= 8);
    assert.equal(storage.read(op), null);
    const recovered = storage.recover();
    assert.deepEqual(recovered.faultyOps, [op]);
    assert.equal(recovered.headers.length, 7);
  });
  test("a misdirected write shows up as two faulty ops, never a silent loss", () => {
    const storage = new SimStorage(0, cluster, { ...storageCalm, misdirectProbability: 1 }, true, new Prng(4));
    writeChain(storage, 6, 0);
    for (let d = storage.next(1); d !== undefined; d = storage.next(1)) { /* complete all */ }
    const recovered = storage.recover();
    assert.ok(recovered.faultyOps.length >= 2, `faulty ${recovered.faultyOps}`);
    assert.equal(recovered.headers.length + recovered.faultyOps.length, 6);
  });
  test("a lost disk restarts not intact until the replica reports voting", () => {
    const storage = new SimStorage(0, cluster, storageCalm, true, new Prng(4));
    writeChain(storage, 3, 0);
    for (let d = storage.next(1); d !== undefined; d = storage.next(1)) { /* complete all */ }
    storage.loseDisk();
    let recovered = storage.recover();
    assert.equal(recovered.intact, false);
    assert.equal(recovered.headers.length, 0);
    recovered = storage.recover();
    assert.equal(recovered.intact, false);
    storage.sawVoting();
    assert.equal(storage.recover().intact, true);
  });
});

describe("kv state machine", () => {
  const at = (op: number, command: Parameters<typeof encodeKvCommand>[0]) => {
    const { operation, body } = encodeKvCommand(command);
    return { op, view: 1, timestamp: 0, client: zero, request: op, operation, body, checksum: zero };
  };
  test("put, get, cas, snapshot and restore; equal states hash equal", () => {
    const kv = new KvStateMachine();
    decode(kv.commit(at(1, { kind: "put", key: "a", value: 1 })));
    assert.deepEqual(decode(kv.commit(at(2, { kind: "get", key: "a" }))), { v: 1 });
    assert.deepEqual(decode(kv.commit(at(3, { kind: "cas", key: "a", expected: 2, value: 3 }))), { ok: false });
    assert.deepEqual(decode(kv.commit(at(4, { kind: "cas", key: "a", expected: 1, value: 3 }))), { ok: true });
    assert.deepEqual(decode(kv.commit(at(5, { kind: "cas", key: "b", expected: null, value: 4 }))), { ok: true });
    const copy = new KvStateMachine();
    copy.restore(kv.snapshot());
    assert.deepEqual(copy.stateHash(), kv.stateHash());
    assert.equal(copy.peek("a"), 3);
    copy.commit(at(6, { kind: "put", key: "a", value: 9 }));
    assert.notDeepEqual(copy.stateHash(), kv.stateHash());
    assert.ok("error" in (decode(kv.commit({ ...at(7, { kind: "get", key: "a" }), body: new Uint8Array([0xff]) })) as object));
  });
});
