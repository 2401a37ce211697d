/**
 * The effect runner's decisions, without promises, timers or I/O: which outbox effect to
 * launch next, whether the runner is fenced, what an attempt's result leads to (an
 * outcome or a backoff), when outcomes are batched into an op-17 entry, and when a
 * schedule tick is due. Two drivers run it: {@link EffectRunner} (real timers, HTTP and
 * custom handlers, used by the node) and the simulator's effects driver (virtual ticks, a
 * simulated sink). Both therefore launch, retry, fence and batch in exactly the same way.
 *
 * A driver's loop, in the order the runner relies on:
 * 1. `wake()` after every applied commit: forget settled outcomes, then `fill()` and start
 *    every launch it returns, and ask `tickPlan(now)`;
 * 2. per attempt: `beginAttempt(item)` (false: fenced, drop it), execute, then
 *    `attemptDone(item, result)`: an outcome was queued (`finished`), wait `delayMs` and
 *    attempt again (`backoff`), or nothing more (`stopped`);
 * 3. when `slotFreed()` says so, `fill()` again (a burst of launches);
 * 4. `outcomeQueued()` tells whether to flush now, arm the one flush timer, or wait;
 *    `takeBatch()` hands each op-17 body to submit; `batchDone(batch, committed)` after.
 * @module
 */
import type { HttpResult } from "../app/app.ts";
import type { CustomEffect, HttpEffect, LogEffect } from "../app/effects.ts";
import { decodeValue } from "../app/value_codec.ts";
import type { EffectOutcome } from "../app/wire.ts";
import { assert } from "../assert.ts";
import type { Executor, StoredOutboxEntry } from "./executor.ts";

/** An effect a runner is working on. */
export interface InFlightEffect {
  readonly id: string;
  readonly kind: string;
  readonly generation: number;
  /** Attempts made so far by this runner. */
  attempts: number;
  /** `executing`, `backoff` (waiting to retry) or `submitting` (outcome not yet committed). */
  phase: "executing" | "backoff" | "submitting";
  lastError: string | null;
}

/** What one attempt gave. */
export type AttemptResult =
  | { readonly kind: "ok"; readonly value: unknown }
  | { readonly kind: "retry"; readonly error: string }
  | { readonly kind: "permanent"; readonly error: string };

/**
 * What an HTTP response means for an effect: 2xx acknowledges it with `{ status, body,
 * truncated }`; 408, 425, 429, 5xx and anything below 400 (3xx included: redirects are
 * not followed) are retried; any other 4xx dead-letters it at once.
 */
export function httpAttemptResult(status: number, body: string, truncated: boolean): AttemptResult {
  if (status >= 200 && status < 300) {
    const value: HttpResult = { status, body, truncated };
    return { kind: "ok", value };
  }
  const error = `HTTP ${status}${body.length > 0 ? ": " + body.slice(0, 200) : ""}`;
  const retryable = status === 408 || status === 425 || status === 429 || status >= 500 || status < 400;
  return { kind: retryable ? "retry" : "permanent", error };
}

/** An effect to start: its outbox entry, decoded effect and the record the runner tracks. */
export interface EffectLaunch {
  readonly entry: StoredOutboxEntry;
  readonly effect: HttpEffect | LogEffect | CustomEffect;
  readonly item: InFlightEffect;
}

/** What `attemptDone` decided. */
export type AttemptNext =
  | { readonly kind: "finished" }
  | { readonly kind: "backoff"; readonly delayMs: number }
  | { readonly kind: "stopped" };

/** What to do about the schedule queue now. */
export type TickPlan =
  | { readonly kind: "submit" }
  | { readonly kind: "sleep"; readonly wakeMs: number; readonly delayMs: number }
  | { readonly kind: "none" };

/** Options of {@link EffectRunnerCore} (the bounds and policies of EffectRunnerOptions). */
export interface EffectRunnerCoreOptions {
  readonly executor: Executor;
  readonly view: number;
  isPrimary(view: number): boolean;
  /** Uniform numbers in [0, 1) for jitter. */
  readonly random: () => number;
  readonly maxAttempts?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly inFlightMax?: number;
  readonly resultsBatchMax?: number;
  readonly resultsDelayMs?: number;
  readonly submitsInFlightMax?: number;
  readonly tickRetryMs?: number;
}

/** The runner's state and decisions for one primary in one view (see the module comment). */
export class EffectRunnerCore {
  readonly view: number;
  readonly maxAttempts: number;
  readonly inFlightMax: number;
  readonly resultsBatchMax: number;
  readonly submitsInFlightMax: number;
  readonly resultsDelayMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly tickRetryMs: number;
  /** Bound on `#active`: the executing ones plus the outcomes that may be queued or submitting. */
  readonly activeMax: number;
  readonly #executor: Executor;
  readonly #isPrimary: (view: number) => boolean;
  readonly #random: () => number;
  readonly #active = new Map<string, InFlightEffect>();
  /** Effects of `#active` executing or in backoff (the rest wait for their op 17). */
  #executing = 0;
  /** Where the outbox scan resumes (see fill). */
  #cursor: IterableIterator<StoredOutboxEntry> | null = null;
  /** True while the scan restarted from the oldest entry and launched nothing yet. */
  #cursorFresh = false;
  #outcomes: EffectOutcome[] = [];
  #submitsInFlight = 0;
  /** True while a delayed flush of outcomes is waiting. */
  #flushTimer = false;
  #tickInFlight = false;
  #tickLastMs = -Infinity;
  #tickTimerDueMs: number | null = null;
  #started = false;
  #stopped = false;
  /** Attempts started by this runner (all effects). */
  attemptsStarted = 0;

  constructor(options: EffectRunnerCoreOptions) {
    assert(Number.isSafeInteger(options.view) && options.view >= 0, "runner view must be a safe integer");
    this.view = options.view;
    this.#executor = options.executor;
    this.#isPrimary = options.isPrimary;
    this.#random = options.random;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.inFlightMax = options.inFlightMax ?? 64;
    this.resultsBatchMax = Math.min(options.resultsBatchMax ?? 256, options.executor.limits.resultsPerEntryMax);
    this.submitsInFlightMax = options.submitsInFlightMax ?? 4;
    this.resultsDelayMs = options.resultsDelayMs ?? 2;
    this.backoffBaseMs = options.backoffBaseMs ?? 200;
    this.backoffMaxMs = options.backoffMaxMs ?? 60_000;
    this.tickRetryMs = options.tickRetryMs ?? 1000;
    this.activeMax = this.inFlightMax + this.resultsBatchMax * (this.submitsInFlightMax + 1);
    assert(Number.isFinite(this.resultsDelayMs) && this.resultsDelayMs >= 0, "resultsDelayMs must be a non-negative number");
    assert(this.maxAttempts >= 1 && this.inFlightMax >= 1 && this.resultsBatchMax >= 1, "runner bounds must be positive");
    assert(this.submitsInFlightMax >= 1, "submitsInFlightMax must be positive");
  }

  /** True once fenced or stopped: it never runs again. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** True once started. */
  get started(): boolean {
    return this.#started;
  }

  /** Marks the runner started (once). */
  start(): void {
    assert(!this.#started, "runner started twice");
    this.#started = true;
  }

  /** Stops for good; outcomes not yet submitted are dropped (the next primary re-executes). */
  stop(): void {
    this.#stopped = true;
    this.#outcomes = [];
  }

  /** Fencing: true (and stopped) once this replica is no longer the normal primary of the view. */
  fenced(): boolean {
    if (this.#stopped) return true;
    if (this.#isPrimary(this.view)) return false;
    this.stop();
    return true;
  }

  /** Effects this runner is executing, waiting to retry, or submitting (copies). */
  inFlight(): InFlightEffect[] {
    return [...this.#active.values()].map((e) => ({ ...e }));
  }

  /** Number of effects tracked (executing, in backoff, or waiting for their op 17). */
  get activeCount(): number {
    return this.#active.size;
  }

  /** Drops `submitting` records whose outcome committed (or whose entry changed). */
  forgetSettled(): void {
    for (const [id, item] of this.#active) {
      if (item.phase !== "submitting") continue;
      const entry = this.#executor.outboxEntry(id);
      if (entry === undefined || entry.status !== "pending" || entry.generation !== item.generation) this.#active.delete(id);
    }
  }

  /**
   * Effects to launch now, while fewer than inFlightMax execute. Effects whose outcome
   * waits for its op-17 entry do not hold an execution slot (so the pipe stays full while
   * outcomes batch) but stay tracked, bounded by `activeMax`, so none is launched twice.
   * The scan resumes where it stopped (Map iterators see later insertions), and starts
   * over from the oldest entry once it reaches the end, so an effect that went back to
   * pending (failed submission, operator retry) is found again. Reads only the applied
   * outbox: an effect of an event that did not commit is never launched.
   */
  fill(): EffectLaunch[] {
    const launches: EffectLaunch[] = [];
    if (!this.#started || this.fenced()) return launches;
    while (this.#executing < this.inFlightMax && this.#active.size < this.activeMax) {
      this.#cursor ??= this.#executor.outboxEntries();
      const next = this.#cursor.next();
      if (next.done === true) {
        this.#cursor = null;
        if (this.#cursorFresh) break; // a whole pass found nothing more
        this.#cursorFresh = true;
        continue;
      }
      const entry = next.value;
      if (entry.status !== "pending" || this.#active.has(entry.id)) continue;
      this.#cursorFresh = false;
      const item: InFlightEffect = { id: entry.id, kind: entry.kind, generation: entry.generation, attempts: 0, phase: "executing", lastError: null };
      this.#active.set(entry.id, item);
      this.#executing++;
      const effect = decodeValue(entry.effectBytes) as HttpEffect | LogEffect | CustomEffect;
      launches.push({ entry, effect, item });
    }
    this.#cursorFresh = false;
    assert(this.#executing <= this.inFlightMax, "executing effects within inFlightMax");
    assert(this.#active.size <= this.activeMax, "tracked effects within activeMax");
    return launches;
  }

  /** Before each attempt: false when fenced (the effect is not attempted). */
  beginAttempt(item: InFlightEffect): boolean {
    if (this.fenced()) return false;
    item.phase = "executing";
    item.attempts++;
    this.attemptsStarted++;
    return true;
  }

  /** After each attempt: queue the outcome, or back off and attempt again. */
  attemptDone(item: InFlightEffect, result: AttemptResult): AttemptNext {
    assert(item.phase === "executing", "an attempt ends in the executing phase");
    if (this.fenced()) return { kind: "stopped" };
    if (result.kind === "ok") {
      this.#finish(item, { id: item.id, generation: item.generation, status: "acknowledged", value: result.value, attempts: item.attempts, view: this.view });
      return { kind: "finished" };
    }
    item.lastError = result.error;
    if (result.kind === "permanent" || item.attempts >= this.maxAttempts) {
      this.#finish(item, { id: item.id, generation: item.generation, status: "dead_lettered", error: result.error, attempts: item.attempts, view: this.view });
      return { kind: "finished" };
    }
    item.phase = "backoff";
    return { kind: "backoff", delayMs: this.backoffMs(item.attempts) };
  }

  /**
   * An effect's attempts are over (finished, stopped or fenced): its execution slot is
   * free. True when half the slots are free and the driver should `fill()` now (bursts,
   * not one launch per finish: requests sent together share event-loop turns and system
   * calls; one-by-one was about 30% slower against a local sink).
   */
  slotFreed(): boolean {
    assert(this.#executing > 0, "a slot freed while none is taken");
    this.#executing--;
    return this.#executing <= this.inFlightMax >>> 1 && this.#started && !this.fenced();
  }

  /** Exponential backoff with equal jitter: half fixed, half uniform. */
  backoffMs(attempts: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(attempts - 1, 30));
    return ceiling / 2 + this.#random() * (ceiling / 2);
  }

  #finish(item: InFlightEffect, outcome: EffectOutcome): void {
    item.phase = "submitting";
    this.#outcomes.push(outcome);
  }

  /**
   * After an attempt finished: `flush` now (a full batch, or no delay configured), arm
   * the flush `timer` (outcomes finishing within resultsDelayMs share one op-17 entry:
   * every entry is a replicated journal write, and one per effect capped throughput),
   * or `wait` for the timer already armed.
   */
  outcomeQueued(): "flush" | "timer" | "wait" {
    if (this.#outcomes.length >= this.resultsBatchMax || this.resultsDelayMs === 0) return "flush";
    if (this.#flushTimer) return "wait";
    this.#flushTimer = true;
    return "timer";
  }

  /** The flush timer armed by `outcomeQueued` fired. */
  flushTimerFired(): void {
    this.#flushTimer = false;
  }

  /** The next op-17 batch to submit, or null (none queued, submissions at their bound, or fenced). */
  takeBatch(): EffectOutcome[] | null {
    if (this.#outcomes.length === 0 || this.#submitsInFlight >= this.submitsInFlightMax) return null;
    if (this.fenced()) return null;
    const batch = this.#outcomes.splice(0, this.resultsBatchMax);
    this.#submitsInFlight++;
    return batch;
  }

  /**
   * A batch's submission ended. Committed and applied: the entries left the pending
   * outbox (or the outcome was ignored, and the effect is due again). Not committed
   * (busy, view change…): if still primary, a later fill executes them again under the
   * same ids.
   */
  batchDone(batch: readonly EffectOutcome[], _committed: boolean): void {
    assert(this.#submitsInFlight > 0, "a batch ended while none was submitted");
    this.#submitsInFlight--;
    for (const outcome of batch) this.#active.delete(outcome.id);
  }

  /** Whether to propose a schedule tick now, sleep until one may be due, or do nothing. */
  tickPlan(nowMs: number): TickPlan {
    const dueMs = this.#executor.nextDueMs();
    if (dueMs === null || this.#tickInFlight || this.#stopped) return { kind: "none" };
    if (nowMs >= dueMs && nowMs >= this.#tickLastMs + this.tickRetryMs) {
      this.#tickInFlight = true;
      this.#tickLastMs = nowMs;
      return { kind: "submit" };
    }
    const wakeMs = Math.max(dueMs, this.#tickLastMs + this.tickRetryMs);
    if (this.#tickTimerDueMs !== null && this.#tickTimerDueMs <= wakeMs) return { kind: "none" };
    this.#tickTimerDueMs = wakeMs;
    return { kind: "sleep", wakeMs, delayMs: Math.max(0, wakeMs - nowMs) };
  }

  /** The tick submission ended (committed or not: a failed one is retried after tickRetryMs). */
  tickDone(): void {
    this.#tickInFlight = false;
  }

  /** The tick timer for `wakeMs` fired. */
  tickTimerFired(wakeMs: number): void {
    if (this.#tickTimerDueMs === wakeMs) this.#tickTimerDueMs = null;
  }
}
