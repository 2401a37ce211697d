import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { defineApp, http } from "../mod.ts";
import type { EffectResult, Event } from "../mod.ts";
import { decodeReply } from "../src/app/wire.ts";
import { EffectRunner } from "../src/kernel/effect_runner.ts";
import type { RunnerClock } from "../src/kernel/effect_runner.ts";
import { Executor } from "../src/kernel/executor.ts";
import { EntryLog } from "./kernel_helpers.ts";

/** An idempotent webhook receiver: counts deliveries and applications per effect id. */
async function startSink(options: { failFirst?: number; delayMs?: number; minViewFencing?: boolean } = {}) {
  const deliveries = new Map<string, number>();
  const applied = new Set<string>();
  const views: number[] = [];
  let highestView = 0;
  let failures = options.failFirst ?? 0;
  const server = createServer((request, response) => {
    const id = String(request.headers["idempotency-key"]);
    const view = Number(request.headers["chronon-view"]);
    views.push(view);
    assert.equal(request.headers["webhook-id"], id);
    request.resume();
    request.on("end", () => {
      const finish = () => {
        deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
        if (options.minViewFencing === true && view < highestView) {
          response.writeHead(409).end("fenced: stale view");
          return;
        }
        highestView = Math.max(highestView, view);
        if (failures > 0) {
          failures--;
          response.writeHead(503).end("try later");
          return;
        }
        applied.add(id);
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ approved: true }));
      };
      if (options.delayMs !== undefined) setTimeout(finish, options.delayMs);
      else finish();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, deliveries, applied, views, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A clock whose sleeps end at once (backoff and timers do not slow the tests). */
const instantClock: RunnerClock = { now: () => 0, sleep: () => new Promise((resolve) => setTimeout(resolve, 1)) };

function webhookApp(url: string, results: EffectResult[]) {
  return defineApp({
    genesis: () => ({ sent: 0, acked: 0 }),
    apply: (state, _e: Event<number>) => {
      state.sent++;
      return { state, effects: [http(url, { body: { n: state.sent } })] };
    },
    onEffectResult(state, result) {
      results.push(result);
      if (result.status === "acknowledged") state.acked++;
      return { state };
    },
    query: (state, _q: null) => state,
  });
}

/** A one-replica driver: submit commits an internal entry into the executor, then wakes the runner. */
function driver(executor: Executor, log: EntryLog) {
  let runner: EffectRunner | null = null;
  const submitted: number[] = [];
  return {
    submitted,
    set runner(r: EffectRunner) {
      runner = r;
    },
    submit(operation: number, body: Uint8Array): Promise<void> {
      submitted.push(operation);
      const reply = decodeReply(executor.commit(log.next(operation, body, { internal: true })));
      assert.ok(reply.ok, JSON.stringify(reply));
      queueMicrotask(() => runner?.wake());
      return Promise.resolve();
    },
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe("effect runner", () => {
  test("executes http effects with id and view headers, commits the acknowledgement, and the app sees it", async () => {
    const sink = await startSink();
    try {
      const results: EffectResult[] = [];
      const executor = new Executor(webhookApp(sink.url, results));
      const log = new EntryLog();
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const reply = decodeReply(executor.commit(log.event(i)));
        if (reply.ok) ids.push(...reply.effects);
      }
      const d = driver(executor, log);
      const runner = new EffectRunner({ executor, view: 3, isPrimary: () => true, submit: d.submit, clock: instantClock });
      d.runner = runner;
      runner.start();
      await until(() => executor.outboxSize === 0, "all effects acknowledged");
      runner.stop();
      await runner.idle();
      assert.equal(results.length, 20);
      assert.deepEqual(new Set(results.map((r) => r.id)), new Set(ids));
      assert.deepEqual(results[0]!.value, { status: 200, body: '{"approved":true}', truncated: false });
      assert.equal((executor.state as { acked: number }).acked, 20);
      assert.deepEqual([...sink.deliveries.values()], new Array(20).fill(1));
      assert.ok(sink.views.every((v) => v === 3));
    } finally {
      await sink.close();
    }
  });

  test("a primary that crashes after executing but before its acknowledgement commits: the next view re-executes with the same id, the sink applies once", async () => {
    const sink = await startSink();
    try {
      const results: EffectResult[] = [];
      const executor = new Executor(webhookApp(sink.url, results));
      const log = new EntryLog();
      const reply = decodeReply(executor.commit(log.event(1)));
      const id = reply.ok ? reply.effects[0]! : "";
      // View 1: the primary executes, then "crashes" before its op 17 commits.
      let crashed = false;
      const first = new EffectRunner({
        executor,
        view: 1,
        isPrimary: () => !crashed,
        clock: instantClock,
        submit: () => {
          crashed = true;
          return Promise.reject(new Error("primary crashed"));
        },
      });
      first.start();
      await until(() => crashed, "first execution");
      await first.idle();
      assert.equal(first.stopped, true);
      assert.equal(executor.outboxSize, 1, "the acknowledgement never committed");
      // View 2: a new primary's runner finds the effect pending in the applied state.
      const d = driver(executor, log);
      const second = new EffectRunner({ executor, view: 2, isPrimary: () => true, submit: d.submit, clock: instantClock });
      d.runner = second;
      second.start();
      await until(() => executor.outboxSize === 0, "acknowledgement in view 2");
      second.stop();
      await second.idle();
      assert.equal(sink.deliveries.get(id), 2, "delivered twice (at least once)");
      assert.equal(sink.applied.size, 1, "applied once at the idempotent sink");
      assert.deepEqual(sink.views, [1, 2]);
      assert.equal(results.length, 1);
      assert.equal(executor.counters().effectsAcknowledged, 1);
    } finally {
      await sink.close();
    }
  });

  test("a deposed primary's late attempt carries its old view, and the runner stops and submits nothing once fenced", async () => {
    const sink = await startSink({ delayMs: 60, minViewFencing: true });
    try {
      const results: EffectResult[] = [];
      const executor = new Executor(webhookApp(sink.url, results));
      const log = new EntryLog();
      const reply = decodeReply(executor.commit(log.event(1)));
      const id = reply.ok ? reply.effects[0]! : "";
      let primaryView = 1;
      let oldSubmits = 0;
      const old = new EffectRunner({
        executor,
        view: 1,
        isPrimary: (view) => view === primaryView,
        clock: instantClock,
        submit: () => {
          oldSubmits++;
          return Promise.resolve();
        },
      });
      old.start();
      await until(() => sink.views.length === 1, "old primary's attempt in flight");
      // A view change deposes it while its request is in flight; the new primary executes.
      primaryView = 2;
      const d = driver(executor, log);
      const fresh = new EffectRunner({ executor, view: 2, isPrimary: (view) => view === primaryView, submit: d.submit, clock: instantClock });
      d.runner = fresh;
      fresh.start();
      old.wake();
      assert.equal(old.stopped, true);
      await until(() => executor.outboxSize === 0, "new primary's acknowledgement");
      await old.idle();
      fresh.stop();
      await fresh.idle();
      assert.equal(oldSubmits, 0, "the deposed runner submitted nothing");
      assert.deepEqual(sink.views.sort(), [1, 2]);
      assert.equal(sink.applied.size, 1);
      assert.ok(sink.applied.has(id));
      assert.equal(results.length, 1);
    } finally {
      await sink.close();
    }
  });

  test("retries with backoff, dead-letters after max attempts, and an operator retry sends it again with the same id", async () => {
    const sink = await startSink({ failFirst: 3 });
    try {
      const results: EffectResult[] = [];
      const executor = new Executor(webhookApp(sink.url, results));
      const log = new EntryLog();
      const reply = decodeReply(executor.commit(log.event(1)));
      const id = reply.ok ? reply.effects[0]! : "";
      const sleeps: number[] = [];
      const clock: RunnerClock = { now: () => 0, sleep: (ms) => (sleeps.push(ms), new Promise((r) => setTimeout(r, 1))) };
      const d = driver(executor, log);
      const runner = new EffectRunner({ executor, view: 1, isPrimary: () => true, submit: d.submit, clock, maxAttempts: 2, backoffBaseMs: 100, random: () => 0.5 });
      d.runner = runner;
      runner.start();
      await until(() => executor.outboxEntry(id)?.status === "dead_lettered", "dead letter");
      assert.equal(sink.deliveries.get(id), 2);
      assert.ok(sleeps.includes(75), `backoff 100 ms with jitter 0.5 → 75 ms, saw ${sleeps}`);
      assert.equal(results.at(-1)!.status, "dead_lettered");
      assert.match(results.at(-1)!.error!, /HTTP 503/);
      // Operator retry (op 19) → pending under generation 1; the runner picks it up again.
      const retry = decodeReply(executor.commit(log.next(19, new Uint8Array([0xa1, 0x62, 0x69, 0x64, 0x78, 0x20, ...new TextEncoder().encode(id)]))));
      assert.ok(retry.ok);
      runner.wake();
      await until(() => executor.outboxSize === 0, "acknowledged after retry");
      runner.stop();
      await runner.idle();
      assert.equal(sink.deliveries.get(id), 4);
      assert.equal(sink.applied.size, 1);
      assert.equal(results.at(-1)!.status, "acknowledged");
      assert.equal(results.at(-1)!.attempts, 4);
    } finally {
      await sink.close();
    }
  });

  test("proposes a schedule tick once its clock passes the earliest due time", async () => {
    const app = defineApp({
      genesis: () => ({ fired: 0 }),
      apply(state, event: Event<string>) {
        if (event.payload === "fire") state.fired++;
        return { state, effects: event.payload === "arm" ? [{ kind: "schedule" as const, delayMs: 50, event: "fire" }] : [] };
      },
      query: (state, _q: null) => state.fired,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    executor.commit(log.event("arm"));
    let nowMs = log.timestampMs;
    const clock: RunnerClock = { now: () => nowMs, sleep: () => new Promise((r) => setTimeout(r, 1)) };
    const d = driver(executor, log);
    const runner = new EffectRunner({ executor, view: 1, isPrimary: () => true, submit: (op, body) => {
      log.timestampMs = Math.max(log.timestampMs, nowMs);
      return d.submit(op, body);
    }, clock, tickRetryMs: 10 });
    d.runner = runner;
    runner.start();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(d.submitted.length, 0, "no tick before the due time");
    nowMs += 60;
    await until(() => (executor.state as { fired: number }).fired === 1, "scheduled event fired");
    runner.stop();
    await runner.idle();
    assert.deepEqual(d.submitted, [18]);
    assert.equal(executor.scheduleSize, 0);
  });
});
