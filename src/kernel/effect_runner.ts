/**
 * The effect runner: executes the outbox on the primary, and only there.
 *
 * The driver (src/node, src/sim) creates one runner per view in which its replica is the
 * normal primary, once the replica has applied everything committed in that view, and
 * calls `wake()` after each commit it applies. The runner:
 * - reads work only from the executor's applied state (so it never executes an effect
 *   whose event did not commit);
 * - checks `isPrimary(view)` before every attempt and every submission, and stops for
 *   good the first time it is false (or `signal` aborts): in-flight requests are aborted
 *   and no outcome of this view is submitted afterwards;
 * - sends every attempt with the effect id (`Idempotency-Key`, `webhook-id`) and the view
 *   (`chronon-view`, a fencing token a receiver may use to refuse a deposed primary);
 * - retries with exponential backoff and jitter; after `maxAttempts` (or a permanent
 *   failure: a 4xx other than 408/425/429) the effect is dead-lettered;
 * - submits outcomes in batches as op 17 through `submit`; they reach the state (and
 *   `onEffectResult`) only when committed. A crash between execution and commit means
 *   the next primary executes the effect again with the same id: at-least-once delivery,
 *   exactly-once application at a receiver that honours the id ("effectively once");
 * - proposes op 18 (schedule tick) when its clock passes the earliest due time.
 *
 * It is driver-side code: it may use timers and randomness, but takes them injected
 * (`clock`, `random`) so the simulator can run it in virtual time.
 * @module
 */
import type { CustomEffect, HttpEffect, LogEffect, LogLevel } from "../app/effects.ts";
import { encodeEffectResults, operationEffectResults, operationScheduleTick } from "../app/wire.ts";
import { EffectRunnerCore, httpAttemptResult } from "./effect_runner_core.ts";
import type { AttemptResult, EffectLaunch, InFlightEffect } from "./effect_runner_core.ts";
import type { Executor, StoredOutboxEntry } from "./executor.ts";
import { defaultHttpTransport, fetchTransport } from "./http_transport.ts";
import type { HttpTransport } from "./http_transport.ts";

/** Time as the runner sees it (virtual in the simulator). */
export interface RunnerClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects/resolves early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** The real clock: Date.now and setTimeout. */
export const systemClock: RunnerClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    }),
};

/** What a custom effect handler receives besides the effect's data. */
export interface EffectHandlerContext {
  /** The effect id: pass it on as an idempotency key. */
  readonly id: string;
  /** The runner's view: a fencing token for the receiver. */
  readonly view: number;
  /** 1 for the first attempt of this runner. */
  readonly attempt: number;
  /** Aborts when the runner is fenced or stopped. */
  readonly signal: AbortSignal;
  readonly effect: CustomEffect;
}

/**
 * Executes one custom effect; resolves to the result value (CBOR-encodable, bounded) or
 * throws to retry. Throw an error with `permanent: true` to dead-letter at once.
 */
export type EffectHandler = (data: unknown, context: EffectHandlerContext) => Promise<unknown>;

/** Where `log` effects go. */
export type EffectLogger = (level: LogLevel, message: string, fields: { readonly id: string; readonly eventIndex: number }) => void;

/** Options of {@link EffectRunner}. */
export interface EffectRunnerOptions {
  /** The replica's executor (applied state only). */
  readonly executor: Executor;
  /** The view in which this replica is primary. */
  readonly view: number;
  /** Fencing: true while this replica is the normal primary of `view`. */
  isPrimary(view: number): boolean;
  /**
   * Routes an internal operation (zero client id) into the replica; resolves once it is
   * committed and applied by this replica's executor, rejects if it was not accepted.
   */
  submit(operation: number, body: Uint8Array): Promise<void>;
  /** Aborting it stops the runner (the driver's view-change hook). */
  readonly signal?: AbortSignal;
  readonly clock?: RunnerClock;
  /** Uniform numbers in [0, 1) for jitter. */
  readonly random?: () => number;
  /** Sends HTTP effects through this fetch (default: node:http on Node, fetch elsewhere; see http_transport.ts). */
  readonly fetch?: typeof fetch;
  readonly handlers?: Readonly<Record<string, EffectHandler>>;
  readonly logger?: EffectLogger;
  /** Attempts per effect before it is dead-lettered (default 8). */
  readonly maxAttempts?: number;
  /** First retry delay (default 200 ms), doubled each attempt up to `backoffMaxMs` (default 60 s). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Effects executing or waiting to retry at once (default 64). */
  readonly inFlightMax?: number;
  /** Outcomes per op-17 entry (default 256; at most the executor's resultsPerEntryMax). */
  readonly resultsBatchMax?: number;
  /**
   * How long a finished outcome waits for others to share its op-17 entry (default 2 ms;
   * 0 submits each at once). A full batch is submitted without waiting.
   */
  readonly resultsDelayMs?: number;
  /** Op-17 submissions in flight at once (default 4). */
  readonly submitsInFlightMax?: number;
  /** Bytes of an HTTP response body kept in the result (default 16 KiB). */
  readonly responseBodySizeMax?: number;
  /** Makes the signal that times out one HTTP attempt (default AbortSignal.timeout; the simulator passes its own). */
  readonly timeoutSignal?: (ms: number) => AbortSignal;
  /** Wait before proposing another schedule tick that fired nothing (default 1 s). */
  readonly tickRetryMs?: number;
}

/** An effect this runner is working on. */
export type { InFlightEffect } from "./effect_runner_core.ts";

const defaultLogger: EffectLogger = (level, message, fields) => {
  const line = `[chronon effect ${fields.id} op ${fields.eventIndex}] ${message}`;
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
};

/**
 * Runs the outbox of one primary in one view (see the module comment): the decisions are
 * {@link EffectRunnerCore}'s; this class adds the clock, the HTTP transport, custom
 * handlers and the tasks that wait on them.
 */
export class EffectRunner {
  readonly view: number;
  readonly #options: EffectRunnerOptions;
  readonly #core: EffectRunnerCore;
  readonly #clock: RunnerClock;
  readonly #abort = new AbortController();
  /** Controllers of the HTTP attempts running now; stop() aborts them. */
  readonly #attemptControllers = new Set<AbortController>();
  /** Made on the first HTTP attempt; closed by stop(). */
  #transport: HttpTransport | null = null;
  #tasks = 0;
  #idle: (() => void)[] = [];

  constructor(options: EffectRunnerOptions) {
    this.#core = new EffectRunnerCore({
      executor: options.executor,
      view: options.view,
      isPrimary: (view) => options.isPrimary(view),
      random: options.random ?? Math.random,
      ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
      ...(options.backoffBaseMs === undefined ? {} : { backoffBaseMs: options.backoffBaseMs }),
      ...(options.backoffMaxMs === undefined ? {} : { backoffMaxMs: options.backoffMaxMs }),
      ...(options.inFlightMax === undefined ? {} : { inFlightMax: options.inFlightMax }),
      ...(options.resultsBatchMax === undefined ? {} : { resultsBatchMax: options.resultsBatchMax }),
      ...(options.resultsDelayMs === undefined ? {} : { resultsDelayMs: options.resultsDelayMs }),
      ...(options.submitsInFlightMax === undefined ? {} : { submitsInFlightMax: options.submitsInFlightMax }),
      ...(options.tickRetryMs === undefined ? {} : { tickRetryMs: options.tickRetryMs }),
    });
    this.view = this.#core.view;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
  }

  /** Attempts started by this runner (all effects). */
  get attemptsStarted(): number {
    return this.#core.attemptsStarted;
  }

  /** True once fenced or stopped: it never runs again (start a new runner for a new view). */
  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Starts working; the driver calls it once the replica applied all of its view's commits. */
  start(): void {
    this.#core.start();
    this.wake();
  }

  /** Looks for new work: call after every applied commit. */
  wake(): void {
    if (!this.#core.started || this.#checkFenced()) return;
    this.#core.forgetSettled();
    this.#fill();
    this.#maybeTick();
  }

  #fill(): void {
    for (const launch of this.#core.fill()) this.#launch(launch);
    if (this.#core.stopped) this.stop();
  }

  /** Stops at once: aborts requests and timers; unsubmitted outcomes are dropped. */
  stop(): void {
    this.#core.stop();
    if (this.#abort.signal.aborted) return;
    const reason = new Error("effect runner stopped");
    this.#abort.abort(reason);
    for (const controller of this.#attemptControllers) controller.abort(reason);
    this.#attemptControllers.clear();
    this.#transport?.close();
  }

  /** Effects this runner is executing, waiting to retry, or submitting. */
  inFlight(): InFlightEffect[] {
    return this.#core.inFlight();
  }

  /** Resolves when no task of this runner is running (for tests and shutdown). */
  idle(): Promise<void> {
    if (this.#tasks === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #checkFenced(): boolean {
    if (!this.#core.fenced()) return false;
    this.stop();
    return true;
  }

  #task(body: () => Promise<void>): void {
    this.#tasks++;
    body().catch((error: unknown) => {
      // A bug in the runner must not take the replica down; log it and stop this runner.
      console.error("chronon effect runner failed:", error);
      this.stop();
    }).finally(() => {
      this.#tasks--;
      if (this.#tasks === 0) for (const resolve of this.#idle.splice(0)) resolve();
    });
  }

  #launch(launch: EffectLaunch): void {
    this.#task(async () => {
      try {
        await this.#run(launch);
      } finally {
        if (this.#core.slotFreed()) this.#fill();
        else if (this.#core.stopped) this.stop();
      }
    });
  }

  async #run({ entry, effect, item }: EffectLaunch): Promise<void> {
    const signal = this.#abort.signal;
    for (;;) {
      if (!this.#core.beginAttempt(item)) return this.stop();
      const result = await this.#attempt(entry, effect, item.attempts, signal);
      const next = this.#core.attemptDone(item, result);
      switch (next.kind) {
        case "stopped":
          return this.stop();
        case "finished":
          return this.#outcomeQueued();
        case "backoff":
          await this.#clock.sleep(next.delayMs, signal);
      }
    }
  }

  #outcomeQueued(): void {
    const action = this.#core.outcomeQueued();
    if (action === "flush") this.#flush();
    else if (action === "timer") {
      this.#task(async () => {
        await this.#clock.sleep(this.#core.resultsDelayMs, this.#abort.signal);
        this.#core.flushTimerFired();
        this.#flush();
      });
    }
  }

  #flush(): void {
    for (;;) {
      const batch = this.#core.takeBatch();
      if (batch === null) break;
      this.#task(async () => {
        let committed = true;
        try {
          await this.#options.submit(operationEffectResults, encodeEffectResults(batch));
        } catch {
          committed = false;
        }
        this.#core.batchDone(batch, committed);
        if (!committed) await this.#clock.sleep(this.#core.backoffBaseMs, this.#abort.signal);
        this.#flush();
        this.wake();
      });
    }
    if (this.#core.stopped) this.stop();
  }

  #maybeTick(): void {
    const now = this.#clock.now();
    const plan = this.#core.tickPlan(now);
    if (plan.kind === "submit") {
      this.#task(async () => {
        try {
          await this.#options.submit(operationScheduleTick, tickBody);
        } catch {
          // Retried after tickRetryMs by the next wake.
        }
        this.#core.tickDone();
        this.wake();
      });
    } else if (plan.kind === "sleep") {
      this.#task(async () => {
        await this.#clock.sleep(plan.delayMs, this.#abort.signal);
        this.#core.tickTimerFired(plan.wakeMs);
        this.wake();
      });
    }
  }

  async #attempt(entry: StoredOutboxEntry, effect: HttpEffect | LogEffect | CustomEffect, attempt: number, signal: AbortSignal): Promise<AttemptResult> {
    try {
      switch (effect.kind) {
        case "http":
          return await this.#http(entry.id, effect, attempt, signal);
        case "log":
          (this.#options.logger ?? defaultLogger)(effect.level, effect.message, { id: entry.id, eventIndex: entry.eventIndex });
          return { kind: "ok", value: null };
        case "custom": {
          const handler = this.#options.handlers?.[effect.type];
          if (handler === undefined) return { kind: "retry", error: `no handler for custom effect type '${effect.type}' on this node` };
          const value = await handler(effect.data, { id: entry.id, view: this.view, attempt, signal, effect });
          return { kind: "ok", value: value ?? null };
        }
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const permanent = typeof error === "object" && error !== null && (error as { permanent?: unknown }).permanent === true;
      return { kind: permanent ? "permanent" : "retry", error: message };
    }
  }

  async #http(id: string, effect: HttpEffect, attempt: number, runnerSignal: AbortSignal): Promise<AttemptResult> {
    const headers: Record<string, string> = {};
    let body: string | Uint8Array<ArrayBuffer> | undefined;
    if (effect.method !== "GET" && effect.body !== null && effect.body !== undefined) {
      if (typeof effect.body === "string") body = effect.body;
      else if (effect.body instanceof Uint8Array) body = new Uint8Array(effect.body);
      else {
        body = JSON.stringify(effect.body);
        headers["content-type"] = "application/json";
      }
    }
    Object.assign(headers, effect.headers, {
      "idempotency-key": id,
      "webhook-id": id,
      "chronon-view": String(this.view),
      "chronon-attempt": String(attempt),
    });
    if (runnerSignal.aborted) return { kind: "retry", error: "effect runner stopped" };
    // One plain AbortController per attempt, aborted by the timeout or by stop(). (On
    // Node 20, AbortSignal.timeout and AbortSignal.any cost tens of microseconds each:
    // they make transferable signals; that was the largest item of an HTTP effect.)
    const controller = new AbortController();
    let timedOut = false;
    const onTimeout = (): void => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${effect.timeoutMs} ms`));
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timeoutSignal: AbortSignal | undefined;
    if (this.#options.timeoutSignal !== undefined) {
      timeoutSignal = this.#options.timeoutSignal(effect.timeoutMs);
      if (timeoutSignal.aborted) onTimeout();
      else timeoutSignal.addEventListener("abort", onTimeout, { once: true });
    } else {
      timer = setTimeout(onTimeout, effect.timeoutMs);
    }
    this.#attemptControllers.add(controller);
    try {
      this.#transport ??= this.#options.fetch !== undefined ? fetchTransport(this.#options.fetch) : defaultHttpTransport(this.#core.inFlightMax);
      const text = await this.#transport.send({
        url: effect.url,
        method: effect.method,
        headers,
        body,
        signal: controller.signal,
        bodySizeMax: this.#options.responseBodySizeMax ?? 16 * 1024,
      });
      return httpAttemptResult(text.status, text.body, text.truncated);
    } catch (error) {
      if (timedOut) return { kind: "retry", error: `timed out after ${effect.timeoutMs} ms` };
      return { kind: "retry", error: error instanceof Error ? error.message : String(error) };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      timeoutSignal?.removeEventListener("abort", onTimeout);
      this.#attemptControllers.delete(controller);
    }
  }
}

const tickBody = new Uint8Array([0xf6]); // CBOR null
