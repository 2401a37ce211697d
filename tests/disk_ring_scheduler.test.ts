/**
 * The ring scheduler's reaping policy on a fake ring whose completions take a set time:
 * it waits in the kernel (a bounded blocking wait, at most one per event-loop turn) only
 * while completions are fast, and waits on the eventfd when they are slow.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Completion, Ring } from "../ffi/native_io.ts";
import { pollLatencyMicrosMax, RingScheduler } from "../src/storage/ring_scheduler.ts";

/** A ring whose every entry completes `delayMs` after its submission. */
class FakeRing implements Ring {
  readonly entries = 8;
  delayMs: number;
  waits = 0;
  /** Blocking waits, and how many came in the same event-loop turn as the one before. */
  blockWaits = 0;
  blockWaitsSameTurn = 0;
  /** False: the ring has no timed wait (waitMicros answers null). */
  timedWait = true;
  #turnOpen = false;
  #queued: number[] = [];
  #pending: { tag: number; readyAt: number }[] = [];
  constructor(delayMs: number) {
    this.delayMs = delayMs;
  }
  sqSpace(): number {
    return this.entries - this.#queued.length;
  }
  prepWrite(_fd: number, _bytes: Uint8Array, _position: number, tag: number): void {
    this.#queued.push(tag);
  }
  prepRead(_fd: number, _bytes: Uint8Array, _position: number, tag: number): void {
    this.#queued.push(tag);
  }
  prepFsync(_fd: number, _dataOnly: boolean, tag: number): void {
    this.#queued.push(tag);
  }
  submit(): number {
    const readyAt = performance.now() + this.delayMs;
    for (const tag of this.#queued) this.#pending.push({ tag, readyAt });
    const count = this.#queued.length;
    this.#queued = [];
    return count;
  }
  reap(countMax: number): Completion[] {
    const now = performance.now();
    const ready = this.#pending.filter((p) => p.readyAt <= now).slice(0, countMax);
    this.#pending = this.#pending.filter((p) => !ready.includes(p));
    return ready.map((p) => ({ tag: p.tag, result: 0 }));
  }
  waitCompletions(): Promise<void> {
    this.waits++;
    const next = Math.min(...this.#pending.map((p) => p.readyAt));
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now()) + 0.1));
  }
  waitMicros(micros: number): boolean | null {
    if (!this.timedWait) {
      this.blockWaits++;
      return null;
    }
    this.blockWaits++;
    if (this.#turnOpen) this.blockWaitsSameTurn++;
    this.#turnOpen = true;
    setImmediate(() => (this.#turnOpen = false));
    // Block like the kernel would: until the earliest completion or the time passes.
    const next = Math.min(...this.#pending.map((p) => p.readyAt));
    const until = Math.min(next, performance.now() + micros / 1000);
    while (performance.now() < until) {
      // spin: this thread is "in the kernel"
    }
    return next <= performance.now();
  }
  close(): void {}
}

const fsync = [{ kind: "fsync", fd: 3, dataOnly: true }] as const;

test("ring scheduler: slow completions turn polling off (eventfd waits), fast ones turn it back on", async () => {
  const ring = new FakeRing(4);
  const scheduler = new RingScheduler(ring, { pollMicros: 2000 });
  for (let i = 0; i < 20; i++) assert.deepEqual(await scheduler.run(fsync), [0]);
  assert.ok(scheduler.completionMicros > pollLatencyMicrosMax, `average ${scheduler.completionMicros} µs`);
  assert.equal(scheduler.pollWindowMicros, 0);
  const waitsSlow = ring.waits;
  assert.ok(waitsSlow >= 15, `each slow completion was awaited on the eventfd (${waitsSlow})`);
  ring.delayMs = 0;
  for (let i = 0; i < 60; i++) await scheduler.run(fsync);
  assert.ok(scheduler.completionMicros < pollLatencyMicrosMax, `average ${scheduler.completionMicros} µs`);
  assert.ok(scheduler.pollWindowMicros > 0 && scheduler.pollWindowMicros <= 2000, `window ${scheduler.pollWindowMicros}`);
  // Once polling is back on, fast completions are found by looking, not by waiting.
  const waitsBefore = ring.waits;
  for (let i = 0; i < 20; i++) await scheduler.run(fsync);
  assert.ok(ring.waits - waitsBefore <= 10, `${ring.waits - waitsBefore} eventfd waits for 20 fast completions`);
});

test("ring scheduler: pollMicros 0 never polls and never blocks", async () => {
  const ring = new FakeRing(0);
  const scheduler = new RingScheduler(ring, { pollMicros: 0 });
  for (let i = 0; i < 10; i++) await scheduler.run(fsync);
  assert.equal(scheduler.pollWindowMicros, 0);
  assert.equal(ring.blockWaits, 0);
});

test("ring scheduler: fast completions are met by a blocking wait, at most one per event-loop turn", async () => {
  const ring = new FakeRing(0.2);
  const scheduler = new RingScheduler(ring, { pollMicros: 2000 });
  for (let i = 0; i < 30; i++) assert.deepEqual(await scheduler.run(fsync), [0]);
  // Eight appenders at once: several chains in flight, completions spread over turns.
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = 0; i < 10; i++) assert.deepEqual(await scheduler.run(fsync), [0]);
  }));
  // How many completions were already there when the reaper looked depends on how busy
  // the machine is; that the waits happen, and never two in one turn, does not.
  assert.ok(ring.blockWaits >= 1, "no blocking wait for 110 fast completions");
  assert.equal(ring.blockWaitsSameTurn, 0, "two blocking waits in one event-loop turn");
});

test("ring scheduler: a ring without a timed wait is asked once, then polled", async () => {
  const ring = new FakeRing(0.2);
  ring.timedWait = false;
  const scheduler = new RingScheduler(ring, { pollMicros: 2000 });
  for (let i = 0; i < 20; i++) assert.deepEqual(await scheduler.run(fsync), [0]);
  assert.equal(ring.blockWaits, 1);
});
