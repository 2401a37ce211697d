import { describe, test } from "node:test";
import assert from "node:assert/strict";
import kv from "../examples/kv.ts";
import bank from "../examples/bank.ts";
import { defineApp } from "../mod.ts";
import type { Event } from "../mod.ts";
import { decodeValue, encodeValue } from "../src/app/value_codec.ts";
import { decodeReply } from "../src/app/wire.ts";
import { Executor } from "../src/kernel/executor.ts";
import { inlineNodesMax } from "../src/kernel/snapshot_encoder.ts";
import { seededRandom } from "../src/storage/seeded_random.ts";
import { EntryLog } from "./kernel_helpers.ts";

/** Containers larger than the encoder writes in one go, so they get frames and pauses. */
const big = inlineNodesMax * 3;

interface Item {
  n: number;
  inner: { deep: number[] };
}

interface MutatorState {
  objects: Record<string, { n: number; tags: string[] }>;
  list: unknown[];
  members: Set<string>;
  map: Map<string, Item>;
  meta: { version: number; alias?: unknown };
}

type MutatorEvent = { type: string; key: string; n: number };

/** An app that writes its state in every way the guard knows, including rollbacks. */
const mutator = defineApp({
  genesis: (): MutatorState => {
    const objects: MutatorState["objects"] = {};
    for (let i = 0; i < inlineNodesMax + 100; i++) objects[`o${i}`] = { n: i, tags: [] };
    const list: unknown[] = [];
    for (let i = 0; i < big; i++) list.push(i % 3 === 0 ? { v: i } : i);
    const members = new Set<string>();
    for (let i = 0; i < big; i++) members.add(`m${i}`);
    const map = new Map<string, Item>();
    for (let i = 0; i < big; i++) map.set(`k${i}`, { n: i, inner: { deep: [i] } });
    return { objects, list, members, map, meta: { version: 0 } };
  },
  apply(state: MutatorState, event: Event<MutatorEvent>) {
    const { type, key, n } = event.payload;
    switch (type) {
      case "bump": {
        const item = state.map.get(key);
        if (item !== undefined) {
          item.n++;
          item.inner.deep.push(n);
        }
        break;
      }
      case "set_object":
        state.objects[key] = { n, tags: ["a"] };
        break;
      case "delete_object":
        delete state.objects[key];
        break;
      case "tag":
        state.objects[key]?.tags.push(`t${n}`);
        break;
      case "push":
        state.list.push({ v: n });
        break;
      case "splice":
        state.list.splice(n % Math.max(1, state.list.length), 1);
        break;
      case "add":
        state.members.add(key);
        break;
      case "remove":
        state.members.delete(key);
        break;
      case "clear":
        state.members.clear();
        break;
      case "map_set":
        state.map.set(key, { n, inner: { deep: [] } });
        break;
      case "map_delete":
        state.map.delete(key);
        break;
      case "nest":
        // A proxy stored inside a fresh object.
        state.meta = { version: n, alias: state.map.get(key) };
        break;
      case "replace":
        // A new root that shares the old containers (through their proxies).
        return { state: { ...state, meta: { version: n } }, reply: null };
      case "throw": {
        const item = state.map.get(key);
        if (item !== undefined) item.n = -1;
        state.list.push("lost");
        state.members.clear();
        delete state.objects[key];
        throw new Error("rolled back");
      }
    }
    return { state, reply: null };
  },
  query: () => null,
});

const mutatorTypes = ["bump", "set_object", "delete_object", "tag", "push", "splice", "add", "remove", "clear", "map_set", "map_delete", "nest", "replace", "throw"];

function randomMutation(random: () => number): MutatorEvent {
  const type = mutatorTypes[Math.floor(random() * mutatorTypes.length)]!;
  // "clear" empties the set: keep it rare so most jobs see a big Set.
  if (type === "clear" && random() < 0.8) return { type: "add", key: `m${Math.floor(random() * big * 2)}`, n: 0 };
  const pool = type.startsWith("map") || type === "bump" || type === "nest" || type === "throw" ? "k" : type.includes("object") || type === "tag" ? "o" : "m";
  return { type, key: `${pool}${Math.floor(random() * big * 1.2)}`, n: Math.floor(random() * 1000) };
}

function equalBytes(actual: Uint8Array, expected: Uint8Array, message: string): void {
  assert.equal(actual.length, expected.length, `${message}: length`);
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.length)), `${message}: bytes`);
}

describe("incremental snapshot", () => {
  test("kv with puts, cas and deletes between one-byte steps writes the snapshot of its op", () => {
    const executor = new Executor(kv);
    const log = new EntryLog();
    for (let i = 0; i < big; i++) executor.commit(log.event({ type: "put", key: `k${i}`, value: "v".repeat(i % 300) }));
    const reference = executor.snapshot();
    const referenceHash = executor.stateHash();
    const job = executor.beginSnapshot();
    assert.equal(job.op, log.op);
    const random = seededRandom(3);
    let steps = 0;
    while (!job.step(1 + Math.floor(random() * 64))) {
      steps++;
      const key = `k${Math.floor(random() * big * 1.5)}`;
      const kind = random();
      const payload = kind < 0.6 ? { type: "put", key, value: `new ${steps}` } : kind < 0.8 ? { type: "delete", key } : { type: "cas", key, expected: null, value: "cas" };
      assert.ok(decodeReply(executor.commit(log.event(payload))).ok);
    }
    assert.ok(steps > 100, `${steps} steps`);
    equalBytes(job.result(), reference, "the job's bytes");
    const restored = new Executor(kv);
    restored.restore(job.result());
    assert.deepEqual(restored.stateHash(), referenceHash);
  });

  test("a job handed an earlier job's dropped bytes encodes into their buffer, stale bytes and all, and ignores other bytes", () => {
    const executor = new Executor(kv);
    const log = new EntryLog();
    for (let i = 0; i < big; i++) executor.commit(log.event({ type: "put", key: `k${i}`, value: "v".repeat(i % 300) }));
    const first = executor.beginSnapshot();
    while (!first.step(4096));
    const dropped = first.result();
    // What was there must not leak into the next snapshot.
    new Uint8Array(dropped.buffer).fill(0xaa);
    for (let i = 0; i < 50; i++) executor.commit(log.event({ type: "put", key: `k${i}`, value: `second ${i}` }));
    const reference = executor.snapshot();
    const second = executor.beginSnapshot(dropped);
    let steps = 0;
    while (!second.step(512)) {
      steps++;
      executor.commit(log.event({ type: "put", key: `k${steps % big}`, value: `during ${steps}` }));
    }
    equalBytes(second.result(), reference, "the reused job's bytes");
    assert.equal(second.result().buffer, dropped.buffer, "encoded into the buffer handed back");
    // Bytes no encoder allocated (someone else's, or a slab view) are never written.
    const foreign = new Uint8Array(4 * 1024 * 1024);
    const third = executor.beginSnapshot(foreign);
    while (!third.step(1 << 20));
    assert.notEqual(third.result().buffer, foreign.buffer);
    assert.ok(foreign.every((byte) => byte === 0), "the foreign buffer is untouched");
    equalBytes(third.result(), executor.snapshot(), "the third job's bytes");
  });

  test("every kind of write between steps, rollbacks included, leaves the bytes of the snapshot's op (20 seeds)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = seededRandom(seed);
      const executor = new Executor(mutator);
      const plain = new Executor(mutator);
      const log = new EntryLog(seed);
      const feed = (payload: MutatorEvent) => {
        const entry = log.event(payload);
        const reply = decodeReply(executor.commit(entry));
        assert.deepEqual(decodeReply(plain.commit(entry)), reply);
      };
      for (let i = 0; i < 40; i++) feed(randomMutation(random));
      for (let round = 0; round < 2; round++) {
        const reference = executor.snapshot();
        const job = executor.beginSnapshot();
        let steps = 0;
        while (!job.step(1 + Math.floor(random() * 3000))) {
          steps++;
          const burst = Math.floor(random() * 4);
          for (let i = 0; i < burst; i++) feed(randomMutation(random));
        }
        equalBytes(job.result(), reference, `seed ${seed} round ${round} (${steps} steps)`);
        // The state the job watched is the state an executor without a job has.
        assert.deepEqual(executor.stateHash(), plain.stateHash(), `seed ${seed}: live state`);
      }
    }
  });

  test("bytes handed to apply raw finish the job before apply can write into them", () => {
    type Blobs = { blobs: Map<string, Uint8Array> };
    const app = defineApp({
      genesis: (): Blobs => {
        const blobs = new Map<string, Uint8Array>();
        for (let i = 0; i < big; i++) blobs.set(`b${i}`, new Uint8Array([i & 0xff, 1, 2]));
        return { blobs };
      },
      apply(state: Blobs, event: Event<{ key: string }>) {
        // Against the contract (writes into bytes are not guarded), and still deterministic.
        const bytes = state.blobs.get(event.payload.key)!;
        bytes[1] = 99;
        return { state, reply: null };
      },
      query: () => null,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    const reference = executor.snapshot();
    const job = executor.beginSnapshot();
    assert.equal(job.step(16), false);
    executor.commit(log.event({ key: `b${big - 1}` }));
    assert.equal(job.done, true, "the apply that was handed the bytes finished the job");
    equalBytes(job.result(), reference, "the job's bytes");
    assert.notDeepEqual(executor.snapshot(), reference);
  });

  test("a property descriptor's raw value finishes the job before apply writes into it", () => {
    type Holder = { list: number[]; holder: { inner: { n: number } } };
    const app = defineApp({
      genesis: (): Holder => ({ list: Array.from({ length: big }, (_, i) => i), holder: { inner: { n: 1 } } }),
      apply(state: Holder) {
        const raw = Object.getOwnPropertyDescriptor(state.holder, "inner")!.value as { n: number };
        raw.n++;
        return { state, reply: null };
      },
      query: () => null,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    const reference = executor.snapshot();
    const job = executor.beginSnapshot();
    assert.equal(job.step(16), false);
    executor.commit(log.event(null));
    assert.equal(job.done, true);
    equalBytes(job.result(), reference, "the job's bytes");
  });

  test("a state the fast path leaves to cborg is encoded from its copy at the snapshot's op", () => {
    type Odd = { map: Map<string, number>; odd: Record<string, number> };
    const app = defineApp({
      genesis: (): Odd => {
        const map = new Map<string, number>();
        for (let i = 0; i < big; i++) map.set(`k${i}`, i);
        const odd = Object.create(null) as Record<string, number>;
        odd.x = 1;
        return { map, odd };
      },
      apply(state: Odd, event: Event<{ key: string }>) {
        state.map.set(event.payload.key, -1);
        state.map.delete("k0");
        state.odd.x = (state.odd.x ?? 0) + 1;
        return { state, reply: null };
      },
      query: () => null,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    const reference = executor.snapshot();
    const job = executor.beginSnapshot();
    let steps = 0;
    while (!job.step(100)) executor.commit(log.event({ key: `k${steps++}` }));
    assert.ok(steps > 3, `${steps} steps`);
    equalBytes(job.result(), reference, "the job's bytes");
    assert.equal((decodeValue((decodeValue(job.result()) as { app: Uint8Array }).app) as Odd).odd.x, 1);
  });

  test("a snapshot hook, a bank with channels and an outbox, and a job at op 0 match snapshot()", () => {
    const withHook = defineApp({ ...bank, snapshot: (state) => encodeValue(state), restore: (bytes) => decodeValue(bytes as Uint8Array) as never });
    for (const app of [bank, withHook]) {
      const executor = new Executor(app);
      const empty = executor.snapshot();
      const first = executor.beginSnapshot();
      assert.equal(first.step(1 << 20), true);
      equalBytes(first.result(), empty, "op 0");
      const log = new EntryLog();
      executor.commit(log.event({ type: "configure", webhookUrl: "http://127.0.0.1:1/hook" }));
      for (let i = 0; i < 50; i++) executor.commit(log.event({ type: "open", account: `a${i}` }));
      for (let i = 0; i < 50; i++) executor.commit(log.event({ type: "deposit", account: `a${i}`, amount: 100 }));
      const reference = executor.snapshot();
      const job = executor.beginSnapshot();
      let i = 0;
      while (!job.step(64)) executor.commit(log.event({ type: "transfer", from: `a${i % 50}`, to: `a${++i % 50}`, amount: 1 }));
      equalBytes(job.result(), reference, "bank");
    }
  });

  test("one job at a time; restore aborts it; a finished job lets the next begin", () => {
    const executor = new Executor(kv);
    const log = new EntryLog();
    for (let i = 0; i < big; i++) executor.commit(log.event({ type: "put", key: `k${i}`, value: "v" }));
    const job = executor.beginSnapshot();
    assert.throws(() => executor.beginSnapshot(), /one snapshot job at a time/);
    const snapshot = executor.snapshot();
    executor.restore(snapshot);
    assert.throws(() => job.step(1), /aborted/);
    const next = executor.beginSnapshot();
    while (!next.step(1 << 16)) executor.commit(log.event({ type: "put", key: "k1", value: "w" }));
    equalBytes(next.result(), snapshot, "after restore");
    const after = executor.beginSnapshot();
    after.abort();
    executor.beginSnapshot().abort();
  });

  test("a state that cannot be encoded fails the job's step as snapshot() fails", () => {
    const app = defineApp({
      genesis: () => ({ list: Array.from({ length: big }, (_, i) => i), callback: () => 1 }),
      apply: (state: { list: number[] }) => ({ state, reply: null }),
      query: () => null,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    assert.throws(() => executor.snapshot(), /unsupported type: Function/);
    const job = executor.beginSnapshot();
    assert.throws(() => {
      while (!job.step(64)) executor.commit(log.event(null));
    }, /unsupported type: Function/);
    assert.throws(() => job.step(64), /unsupported type: Function/);
    executor.beginSnapshot().abort();
  });
});
