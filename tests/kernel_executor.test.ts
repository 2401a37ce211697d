import { describe, test } from "node:test";
import assert from "node:assert/strict";
import bank from "../examples/bank.ts";
import kv from "../examples/kv.ts";
import { defineApp, emit, http, schedule } from "../mod.ts";
import type { EffectResult, Event } from "../mod.ts";
import { decodeValue, encodeValue } from "../src/app/value_codec.ts";
import {
  decodeQueryResult,
  decodeEffectResults,
  decodeReply,
  encodeAppQuery,
  encodeChannelQuery,
  encodeEffectId,
  encodeEffectResults,
  encodeEffectsQuery,
  operationEffectDiscard,
  operationEffectResults,
  operationEffectRetry,
  operationScheduleTick,
} from "../src/app/wire.ts";
import type { EffectOutcome, KernelReply } from "../src/app/wire.ts";
import { checksumHex } from "../src/codec/checksum.ts";
import { Executor, SchemaVersionError } from "../src/kernel/executor.ts";
import { seededRandom } from "../src/storage/seeded_random.ts";
import { EntryLog } from "./kernel_helpers.ts";

function send(executor: Executor, log: EntryLog, payload: unknown, advanceMs?: number): KernelReply {
  return decodeReply(executor.commit(log.event(payload, advanceMs)));
}

function results(executor: Executor, log: EntryLog, outcomes: EffectOutcome[], internal = true): KernelReply {
  return decodeReply(executor.commit(log.next(operationEffectResults, encodeEffectResults(outcomes), { internal })));
}

function ack(id: string, generation = 0): EffectOutcome {
  return { id, generation, status: "acknowledged", value: { status: 200, body: "ok", truncated: false }, attempts: 1, view: 1 };
}

function bankQuery(executor: Executor, q: unknown): unknown {
  return decodeQueryResult(executor.query(encodeAppQuery(q)));
}

function openBank(webhook = true): { executor: Executor; log: EntryLog } {
  const executor = new Executor(bank);
  const log = new EntryLog();
  if (webhook) send(executor, log, { type: "configure", webhookUrl: "http://127.0.0.1:1/hook" });
  for (const account of ["a", "b", "c"]) send(executor, log, { type: "open", account });
  send(executor, log, { type: "deposit", account: "a", amount: 100 });
  return { executor, log };
}

describe("executor", () => {
  test("apply that throws leaves the state unchanged, replies rejected, and the next event applies", () => {
    const mutateThenThrow = defineApp({
      genesis: () => ({ items: new Map<string, { n: number }>([["x", { n: 1 }]]), list: [1, 2], count: 0 }),
      apply(state, event: Event<{ boom: boolean }>) {
        state.count++;
        state.items.get("x")!.n = 99;
        state.items.set("y", { n: 2 });
        state.items.delete("x");
        state.list.push(3);
        state.list.shift();
        if (event.payload.boom) throw new Error("boom after writes");
        return { state, reply: state.count };
      },
      query: (state, _q: null) => state,
    });
    const executor = new Executor(mutateThenThrow);
    const log = new EntryLog();
    const before = checksumHex(executor.stateHash());
    const reply = send(executor, log, { boom: true });
    assert.deepEqual(reply, { ok: false, code: "rejected", message: "boom after writes" });
    const state = executor.state as { items: Map<string, { n: number }>; list: number[]; count: number };
    assert.equal(state.count, 0);
    assert.deepEqual([...state.items], [["x", { n: 1 }]]);
    assert.deepEqual(state.list, [1, 2]);
    // The op and counters moved on, the app state did not.
    const fresh = new Executor(mutateThenThrow);
    assert.deepEqual(fresh.state, executor.state);
    assert.notEqual(checksumHex(executor.stateHash()), before);
    const ok = send(executor, log, { boom: false });
    assert.deepEqual(ok, { ok: true, value: 1, effects: [] });
    assert.deepEqual([...state.items.keys()], ["y"]);
  });

  test("bank transfer on overdraft is rejected with the app's message and changes nothing", () => {
    const { executor, log } = openBank();
    const reply = send(executor, log, { type: "transfer", from: "a", to: "b", amount: 101 });
    assert.equal(reply.ok, false);
    assert.equal(!reply.ok && reply.code, "rejected");
    assert.match(!reply.ok ? reply.message : "", /insufficient funds/);
    assert.equal(bankQuery(executor, { type: "balance", account: "a" }), 100);
    assert.equal(executor.outboxSize, 0);
  });

  test("effect ids are deterministic and identical on two executors fed the same entries", () => {
    const one = openBank();
    const two = new Executor(bank);
    for (const entry of one.log.entries) two.commit(entry);
    const entry = one.log.event({ type: "transfer", from: "a", to: "b", amount: 10 });
    const replyOne = decodeReply(one.executor.commit(entry));
    const replyTwo = decodeReply(two.commit(entry));
    assert.deepEqual(replyOne, replyTwo);
    assert.ok(replyOne.ok && replyOne.effects.length === 2);
    for (const id of replyOne.ok ? replyOne.effects : []) assert.match(id, /^[0-9a-f]{32}$/);
    assert.deepEqual(one.executor.stateHash(), two.stateHash());
    assert.deepEqual([...one.executor.outboxEntries()].map((e) => e.id), [...two.outboxEntries()].map((e) => e.id));
  });

  test("a snapshot with the app image nested in place is byte for byte the one encoded in two steps", () => {
    // The same bank behind an app snapshot hook takes the two-step path (the image first,
    // then the snapshot around it); without the hook the image is written in place.
    const twoStep = defineApp({ ...bank, snapshot: (state) => encodeValue(state), restore: (bytes) => decodeValue(bytes as Uint8Array) as never });
    const { executor, log } = openBank();
    send(executor, log, { type: "configure", monthlyFee: 1, feeIntervalMs: 1000 });
    for (let i = 0; i < 30; i++) send(executor, log, { type: "transfer", from: "a", to: i % 2 === 0 ? "b" : "c", amount: 1 });
    const other = new Executor(twoStep);
    for (const entry of log.entries) other.commit(entry);
    assert.deepEqual(executor.snapshot(), other.snapshot());
    // And a large image (over 64 KiB: the nested head's full width).
    for (let i = 0; i < 3000; i++) send(executor, log, { type: "open", account: `account-${i}-${"x".repeat(20)}` });
    for (const entry of log.entries.slice(other.op)) other.commit(entry);
    const nested = executor.snapshot();
    assert.ok(nested.length > 65_536, `${nested.length} bytes`);
    assert.deepEqual(nested, other.snapshot());
  });

  test("the outbox, channels and schedule survive snapshot and restore", () => {
    const { executor, log } = openBank();
    send(executor, log, { type: "configure", monthlyFee: 1, feeIntervalMs: 1000 });
    send(executor, log, { type: "transfer", from: "a", to: "b", amount: 10 });
    const restored = new Executor(bank);
    restored.restore(executor.snapshot());
    assert.deepEqual(restored.stateHash(), executor.stateHash());
    assert.equal(restored.outboxSize, 1);
    assert.equal(restored.scheduleSize, 1);
    assert.deepEqual(restored.readChannel("transfers", 0), executor.readChannel("transfers", 0));
    assert.deepEqual(restored.listEffects("pending"), executor.listEffects("pending"));
    assert.equal(bankQuery(restored, { type: "balance", account: "b" }), 10);
  });

  test("an acknowledgement committed twice is applied once; unknown ids and client submissions are ignored", () => {
    let seen = 0;
    const app = defineApp({
      genesis: () => ({ acks: 0 }),
      apply: (state, _e: Event<null>) => ({ state, effects: [http("http://127.0.0.1:1/x")] }),
      onEffectResult(state) {
        seen++;
        state.acks++;
        return { state };
      },
      query: (state, _q: null) => state.acks,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    const reply = send(executor, log, null);
    const id = reply.ok ? reply.effects[0]! : "";
    assert.deepEqual(results(executor, log, [ack(id)], false), { ok: false, code: "forbidden", message: "operation 17 is internal: only the replica may submit it" });
    assert.equal(executor.outboxSize, 1);
    assert.deepEqual(results(executor, log, [ack(id)]), { ok: true, value: { applied: 1, ignored: 0 }, effects: [] });
    assert.deepEqual(results(executor, log, [ack(id), ack("f".repeat(32))]), { ok: true, value: { applied: 0, ignored: 2 }, effects: [] });
    assert.equal(seen, 1);
    assert.equal(decodeQueryResult(executor.query(encodeAppQuery(null))), 1);
    assert.equal(executor.counters().effectsAcknowledged, 1);
    assert.equal(executor.outboxSize, 0);
  });

  test("op 17 in the flat form and the older { results } form apply the same outcomes; malformed bodies are bad requests", () => {
    const seen: EffectResult[] = [];
    const app = defineApp({
      genesis: () => ({ n: 0 }),
      apply: (state, _e: Event<null>) => ({ state, effects: [http("http://127.0.0.1:1/x"), http("http://127.0.0.1:1/y")] }),
      onEffectResult(state, result) {
        seen.push(result);
        return { state };
      },
      query: (state, _q: null) => state.n,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    const reply = send(executor, log, null);
    const [first, second] = reply.ok ? reply.effects : [];
    const flat = encodeEffectResults([ack(first!), { id: second!, generation: 0, status: "dead_lettered", error: "HTTP 404", attempts: 2, view: 3 }]);
    assert.deepEqual(decodeEffectResults(flat), [
      { ...ack(first!) },
      { id: second!, generation: 0, status: "dead_lettered", error: "HTTP 404", attempts: 2, view: 3 },
    ]);
    assert.deepEqual(decodeReply(executor.commit(log.next(operationEffectResults, flat, { internal: true }))), { ok: true, value: { applied: 2, ignored: 0 }, effects: [] });
    assert.deepEqual(seen.map((r) => [r.id, r.status, r.value, r.error, r.attempts]), [
      [first, "acknowledged", { status: 200, body: "ok", truncated: false }, undefined, 1],
      [second, "dead_lettered", undefined, "HTTP 404", 2],
    ]);
    // The older form, as entries written before the flat one carry it.
    const older = send(executor, log, null);
    const [third] = older.ok ? older.effects : [];
    const legacy = encodeValue({ results: [{ id: third!, generation: 0, status: "acknowledged", value: 7, attempts: 1, view: 1 }, { id: "f".repeat(32), generation: 0, status: "acknowledged", attempts: 1, view: 1 }] });
    assert.deepEqual(decodeEffectResults(legacy).map((o) => o.id), [third, "f".repeat(32)]);
    assert.deepEqual(decodeReply(executor.commit(log.next(operationEffectResults, legacy, { internal: true }))), { ok: true, value: { applied: 1, ignored: 1 }, effects: [] });
    assert.equal(seen.at(-1)!.value, 7);
    // A flat body with a bad tag, a ragged length, or an unknown status code.
    for (const body of [[2, third, 0, 0, 1, 1, null], [1, third, 0, 0, 1, 1], { results: 3 }, "x"]) {
      const bad = decodeReply(executor.commit(log.next(operationEffectResults, encodeValue(body), { internal: true })));
      assert.equal(bad.ok ? "ok" : bad.code, "bad_request", JSON.stringify(body));
    }
    const unknownStatus = decodeReply(executor.commit(log.next(operationEffectResults, encodeValue([1, "e".repeat(32), 0, 9, 1, 1, null]), { internal: true })));
    assert.deepEqual(unknownStatus, { ok: true, value: { applied: 0, ignored: 1 }, effects: [] });
  });

  test("dead-lettered effects are listed, retried by an operator under a new generation, or discarded", () => {
    const statuses: string[] = [];
    const app = defineApp({
      genesis: () => 0,
      apply: (state: number, _e: Event<null>) => ({ state, effects: [http("http://127.0.0.1:1/x"), http("http://127.0.0.1:1/y")] }),
      onEffectResult(state: number, result) {
        statuses.push(result.status);
        return { state: state + 1 };
      },
      query: (state: number) => state,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    const reply = send(executor, log, null);
    const [x, y] = reply.ok ? reply.effects : [];
    const dead = (id: string, generation = 0): EffectOutcome => ({ id, generation, status: "dead_lettered", error: "HTTP 503", attempts: 8, view: 1 });
    results(executor, log, [dead(x!), dead(y!)]);
    const listed = decodeQueryResult<{ items: { id: string; lastError: string; attempts: number }[] }>(executor.query(encodeEffectsQuery("dead_lettered")));
    assert.deepEqual(listed.items.map((i) => [i.id, i.lastError, i.attempts]).sort(), [[x, "HTTP 503", 8], [y, "HTTP 503", 8]].sort());
    // Operator retry: back to pending under generation 1; a stale generation-0 ack is ignored.
    const retry = decodeReply(executor.commit(log.next(operationEffectRetry, encodeEffectId(x!))));
    assert.deepEqual(retry, { ok: true, value: { id: x, status: "pending", generation: 1 }, effects: [] });
    assert.deepEqual(results(executor, log, [ack(x!, 0)]), { ok: true, value: { applied: 0, ignored: 1 }, effects: [] });
    assert.deepEqual(results(executor, log, [ack(x!, 1)]), { ok: true, value: { applied: 1, ignored: 0 }, effects: [] });
    assert.deepEqual(statuses, ["dead_lettered", "dead_lettered", "acknowledged"]);
    const discard = decodeReply(executor.commit(log.next(operationEffectDiscard, encodeEffectId(y!))));
    assert.equal(discard.ok, true);
    assert.equal(executor.outboxSize, 0);
    const missing = decodeReply(executor.commit(log.next(operationEffectRetry, encodeEffectId(y!))));
    assert.equal(!missing.ok && missing.code, "not_found");
  });

  test("a scheduled event fires once, when consensus time passes its due time", () => {
    const { executor, log } = openBank(false);
    send(executor, log, { type: "configure", monthlyFee: 5, feeIntervalMs: 1000 });
    const dueMs = executor.nextDueMs()!;
    assert.equal(dueMs, log.timestampMs + 1000);
    const tick = (advanceMs: number) => decodeReply(executor.commit(log.next(operationScheduleTick, new Uint8Array([0xf6]), { internal: true, advanceMs })));
    assert.deepEqual(tick(10), { ok: true, value: { fired: 0, rejected: 0 }, effects: [] });
    assert.equal(bankQuery(executor, { type: "balance", account: "a" }), 100);
    assert.deepEqual(tick(1000), { ok: true, value: { fired: 1, rejected: 0 }, effects: [] });
    assert.equal(bankQuery(executor, { type: "balance", account: "a" }), 95);
    assert.equal(bankQuery(executor, { type: "balance", account: "fees" }), 5);
    // The fee rescheduled itself one interval after the tick; an immediate tick fires nothing.
    assert.deepEqual(tick(1), { ok: true, value: { fired: 0, rejected: 0 }, effects: [] });
    assert.equal(executor.nextDueMs(), log.timestampMs - 1 + 1000);
    // A client cannot fire the schedule, nor send the scheduled event itself.
    const forged = decodeReply(executor.commit(log.next(operationScheduleTick, new Uint8Array([0xf6]), { advanceMs: 5000 })));
    assert.equal(!forged.ok && forged.code, "forbidden");
    assert.equal(send(executor, log, { type: "monthly_fee" }).ok, false);
  });

  test("checkpoint, restore and replay give the same state hash as never restarting", () => {
    const { executor, log } = openBank();
    send(executor, log, { type: "configure", monthlyFee: 1, feeIntervalMs: 50 });
    const random = seededRandom(7);
    let checkpoint: Uint8Array | null = null;
    let checkpointOp = 0;
    for (let i = 0; i < 300; i++) {
      if (i === 120) {
        checkpoint = executor.snapshot();
        checkpointOp = log.op;
      }
      if (i % 25 === 24) executor.commit(log.next(operationScheduleTick, new Uint8Array([0xf6]), { internal: true, advanceMs: 20 }));
      else {
        const names = ["a", "b", "c"];
        send(executor, log, { type: "transfer", from: names[Math.floor(random() * 3)], to: names[Math.floor(random() * 3)], amount: 1 + Math.floor(random() * 40) });
      }
    }
    const restarted = new Executor(bank);
    restarted.restore(checkpoint!);
    for (const entry of log.entries) if (entry.op > checkpointOp) restarted.commit(entry);
    assert.deepEqual(restarted.stateHash(), executor.stateHash());
    assert.deepEqual(restarted.snapshot(), executor.snapshot());
  });

  test("bank balances are conserved over random transfers, rejections and fees", () => {
    const { executor, log } = openBank(false);
    send(executor, log, { type: "deposit", account: "b", amount: 50 });
    send(executor, log, { type: "configure", monthlyFee: 3, feeIntervalMs: 100 });
    const random = seededRandom(11);
    const names = ["a", "b", "c", "fees", "nobody"];
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      if (i % 100 === 99) {
        executor.commit(log.next(operationScheduleTick, new Uint8Array([0xf6]), { internal: true, advanceMs: 150 }));
        continue;
      }
      const reply = send(executor, log, {
        type: "transfer",
        from: names[Math.floor(random() * names.length)],
        to: names[Math.floor(random() * names.length)],
        amount: Math.floor(random() * 80) - 5,
      });
      if (!reply.ok) rejected++;
    }
    assert.ok(rejected > 100, `only ${rejected} rejections: the test does not exercise rollback`);
    assert.equal(bankQuery(executor, { type: "total" }), 150);
    assert.ok(executor.counters().scheduledFired >= 10);
    assert.ok((bankQuery(executor, { type: "balance", account: "fees" }) as number) > 0);
  });

  test("a full outbox rejects the event with outbox_full and keeps the state", () => {
    const app = defineApp({
      genesis: () => ({ n: 0 }),
      apply: (state, _e: Event<null>) => {
        state.n++;
        return { state, effects: [http("http://127.0.0.1:1/a"), http("http://127.0.0.1:1/b")] };
      },
      query: (state, _q: null) => state.n,
    });
    const executor = new Executor(app, { limits: { outboxMax: 3, effectsPerEventMax: 2 } });
    const log = new EntryLog();
    assert.equal(send(executor, log, null).ok, true);
    const full = send(executor, log, null);
    assert.equal(!full.ok && full.code, "outbox_full");
    assert.equal((executor.state as { n: number }).n, 1);
    assert.equal(executor.outboxSize, 2);
  });

  test("malformed effects, bodies and unknown operations get definite errors, never a throw", () => {
    const app = defineApp({
      genesis: () => 0,
      apply: (state: number, e: Event<string>) => ({ state, effects: [e.payload === "bad" ? { kind: "teleport" } : http("ftp://x")] as never }),
      query: (state: number) => state,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    assert.equal((decodeReply(executor.commit(log.event("bad"))) as { code: string }).code, "invalid_effect");
    assert.equal((decodeReply(executor.commit(log.event("ftp"))) as { code: string }).code, "invalid_effect");
    assert.equal((decodeReply(executor.commit(log.next(16, new Uint8Array([0xff, 0x00])))) as { code: string }).code, "bad_request");
    assert.equal((decodeReply(executor.commit(log.next(99, new Uint8Array()))) as { code: string }).code, "unknown_operation");
    assert.equal(executor.state, 0);
  });

  test("queries cannot modify the state", () => {
    const app = defineApp({
      genesis: () => ({ m: new Map([["k", 1]]) }),
      apply: (state, _e: Event<null>) => ({ state }),
      query: (state, _q: null) => {
        state.m.set("k", 2);
        return 0;
      },
    });
    const executor = new Executor(app);
    assert.throws(() => executor.query(encodeAppQuery(null)), /must not modify/);
    assert.equal((executor.state as { m: Map<string, number> }).m.get("k"), 1);
  });

  test("emit channels are read by cursor with bounded retention", () => {
    const app = defineApp({
      genesis: () => 0,
      apply: (state: number, _e: Event<null>) => ({ state: state + 1, effects: [emit("ticks", state)] }),
      query: (state: number) => state,
    });
    const executor = new Executor(app, { limits: { channelRetention: 8 } });
    const log = new EntryLog();
    for (let i = 0; i < 20; i++) send(executor, log, null);
    const page = decodeQueryResult<{ entries: { seq: number; payload: number }[]; first: number; next: number; missed: number }>(
      executor.query(encodeChannelQuery("ticks", 0, 100)),
    );
    assert.ok(page.first >= 20 - 10 && page.first <= 12, `first ${page.first}`);
    assert.equal(page.missed, page.first);
    assert.deepEqual(page.entries.map((e) => e.payload), Array.from({ length: 20 - page.first }, (_, i) => page.first + i));
    assert.equal(page.next, 20);
    assert.deepEqual(executor.readChannel("ticks", 20).entries, []);
  });

  test("restore upgrades state from an older schema version through app.restore, and refuses without it", () => {
    const v1 = defineApp({
      genesis: () => ({ items: new Map([["k", "v"]]) }),
      apply: (s, _e: Event<null>) => ({ state: s }),
      query: (s, _q: null) => s,
    });
    const old = new Executor(v1).snapshot();
    const v2 = defineApp({
      schemaVersion: 2,
      genesis: () => ({ items: new Map<string, { value: string }>() }),
      apply: (s, _e: Event<null>) => ({ state: s }),
      query: (s, _q: null) => s,
      restore(data: unknown, version: number) {
        assert.equal(version, 1);
        const items = (data as { items: Map<string, string> }).items;
        return { items: new Map([...items].map(([k, v]) => [k, { value: v }])) };
      },
    });
    const upgraded = new Executor(v2);
    upgraded.restore(old);
    assert.deepEqual(upgraded.state, { items: new Map([["k", { value: "v" }]]) });
    const v2NoRestore = defineApp({ schemaVersion: 2, genesis: () => 0, apply: (s: number) => ({ state: s }), query: (s: number) => s });
    assert.throws(() => new Executor(v2NoRestore).restore(old), SchemaVersionError);
  });

  test("kv: put, get, cas and delete reply with what they saw", () => {
    const executor = new Executor(kv);
    const log = new EntryLog();
    assert.deepEqual(send(executor, log, { type: "cas", key: "k", expected: null, value: "a" }), { ok: true, value: { ok: true, value: "a", version: 1 }, effects: [] });
    assert.deepEqual(send(executor, log, { type: "cas", key: "k", expected: "x", value: "b" }), { ok: true, value: { ok: false, value: "a", version: 1 }, effects: [] });
    assert.deepEqual(send(executor, log, { type: "put", key: "k", value: "c" }), { ok: true, value: { ok: true, value: "c", version: 2 }, effects: [] });
    assert.deepEqual(send(executor, log, { type: "get", key: "k" }), { ok: true, value: { ok: true, value: "c", version: 2 }, effects: [] });
    send(executor, log, { type: "delete", key: "k" });
    assert.equal(decodeQueryResult(executor.query(encodeAppQuery({ type: "get", key: "k" }))), null);
  });

  test("scheduled events from apply carry origin schedule and their effect id", () => {
    const seen: unknown[] = [];
    const app = defineApp({
      genesis: () => 0,
      apply(state: number, event: Event<string>) {
        seen.push([event.payload, event.header.origin, event.header.scheduledBy ?? null]);
        return { state: state + 1, effects: event.payload === "start" ? [schedule(10, "later")] : [] };
      },
      query: (s: number) => s,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    const reply = send(executor, log, "start");
    const id = reply.ok ? reply.effects[0] : undefined;
    executor.commit(log.next(operationScheduleTick, new Uint8Array([0xf6]), { internal: true, advanceMs: 10 }));
    executor.commit(log.next(operationScheduleTick, new Uint8Array([0xf6]), { internal: true, advanceMs: 10 }));
    assert.deepEqual(seen, [["start", "client", null], ["later", "schedule", id]]);
  });
});
