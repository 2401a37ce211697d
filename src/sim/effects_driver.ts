/**
 * The effect runners of a simulated cluster, in virtual time. Each replica that is the
 * normal primary of its view, once it applied everything committed when the view began,
 * runs the kernel's {@link EffectRunnerCore} (the same decisions as the node's
 * EffectRunner: launch from the applied outbox, fencing, backoff, batching into op 17,
 * schedule ticks), and this driver supplies what the node's runner gets from timers and
 * sockets:
 * - HTTP attempts travel to the simulated sink and back with random delays; a request or
 *   a response may be lost (the attempt then times out); the attempt carries the effect
 *   id and the runner's view;
 * - backoff, the results delay and the schedule timer are events at later ticks;
 * - op 17 and op 18 go into the replica as internal requests (zero client), and the
 *   replica's reply — sent after the entry committed and was applied — settles them.
 * A replica that crashes takes its runner with it (its pending timers and replies die),
 * but its requests already on the way still reach the sink: the late attempts of a
 * deposed primary, which the sink fences by view.
 * @module
 */
import type { HttpEffect } from "../app/effects.ts";
import { decodeReply, encodeEffectResults, operationEffectResults, operationScheduleTick } from "../app/wire.ts";
import type { EffectOutcome } from "../app/wire.ts";
import { assert } from "../assert.ts";
import type { AttemptResult, EffectLaunch } from "../kernel/effect_runner_core.ts";
import { EffectRunnerCore, httpAttemptResult } from "../kernel/effect_runner_core.ts";
import type { Executor } from "../kernel/executor.ts";
import type { ClientReply } from "../vsr/replica_api.ts";
import type { EffectSink } from "./effect_sink.ts";
import { TimedHeap } from "./heap.ts";
import type { Prng } from "./prng.ts";
import type { Simulation } from "./simulator.ts";
import { tickMs } from "./simulator.ts";

/** Tokens at or above this route replies to the driver (client tokens are far below). */
export const internalTokenBase = 2 ** 48;
/** Longest an HTTP attempt waits for its response in the simulation. */
export const attemptTimeoutMsMax = 500;
/** Ticks an internal submission waits for its reply before the runner counts it as not committed. */
export const submitTimeoutTicks = 400;
/** Timed events pending at most (a bound well above what the runners' own bounds allow). */
export const driverEventsMax = 1_000_000;

/** Network and runner settings of the effects driver (drawn per seed). */
export interface EffectsDriverOptions {
  /** Mean one-way delay between a primary and the sink, in ticks. */
  readonly delayTicksMean: number;
  readonly requestLossProbability: number;
  readonly responseLossProbability: number;
  /**
   * Probability that a request is held up on its way to the sink for 50–300 ticks (past
   * its attempt timeout, often past a view change): the late attempts of deposed
   * primaries, which the sink must fence by view.
   */
  readonly stallProbability: number;
  /** Runner bounds (small, so that batching and slot limits are exercised). */
  readonly inFlightMax: number;
  readonly resultsBatchMax: number;
  readonly maxAttempts: number;
}

/** Driver counters. */
export interface EffectsDriverStats {
  runnersStarted: number;
  runnersFenced: number;
  attempts: number;
  requestsLost: number;
  responsesLost: number;
  timeouts: number;
  lateResponses: number;
  stalls: number;
  resultSubmits: number;
  resultSubmitsFailed: number;
  tickSubmits: number;
}

interface Runner {
  readonly replica: number;
  readonly core: EffectRunnerCore;
  /** False once its replica crashed or the driver dropped it. */
  alive: boolean;
  /** Attempt number awaited per effect id (a response or timeout for another attempt is stale). */
  readonly awaiting: Map<string, number>;
}

interface Supervision {
  viewSeen: number;
  viewStartOp: number;
  lastCommit: number;
  runner: Runner | null;
}

type DriverEvent = { at: number; seq: number } & (
  | { readonly kind: "arrive"; readonly runner: Runner; readonly launch: EffectLaunch; readonly attempt: number; readonly view: number }
  | { readonly kind: "respond"; readonly runner: Runner; readonly launch: EffectLaunch; readonly attempt: number; readonly result: AttemptResult }
  | { readonly kind: "timeout"; readonly runner: Runner; readonly launch: EffectLaunch; readonly attempt: number }
  | { readonly kind: "retry"; readonly runner: Runner; readonly launch: EffectLaunch }
  | { readonly kind: "flush"; readonly runner: Runner }
  | { readonly kind: "resubmit"; readonly runner: Runner }
  | { readonly kind: "tick_timer"; readonly runner: Runner; readonly wakeMs: number }
  | { readonly kind: "submit_timeout"; readonly token: number }
);

interface Submission {
  readonly runner: Runner;
  readonly kind: "results" | "tick";
  readonly batch: readonly EffectOutcome[];
}

const internalClient = new Uint8Array(16);
const tickBody = new Uint8Array([0xf6]); // CBOR null

function ticksOf(ms: number): number {
  return Math.max(1, Math.ceil(ms / tickMs));
}

/** Runs the primaries' effect runners of one simulated cluster (see the module comment). */
export class EffectsDriver {
  readonly stats: EffectsDriverStats = {
    runnersStarted: 0, runnersFenced: 0, attempts: 0, requestsLost: 0, responsesLost: 0, timeouts: 0,
    lateResponses: 0, stalls: 0, resultSubmits: 0, resultSubmitsFailed: 0, tickSubmits: 0,
  };
  readonly #options: EffectsDriverOptions;
  readonly #prng: Prng;
  readonly #sink: EffectSink;
  readonly #executorOf: (replica: number) => Executor | null;
  readonly #supervision: Supervision[] = [];
  readonly #events = new TimedHeap<DriverEvent>(driverEventsMax);
  #eventSeq = 0;
  readonly #submissions = new Map<number, Submission>();
  #tokenNext = internalTokenBase;
  /** Replies to internal requests, taken during the replicas' pumps and handled in `step`. */
  #replies: { replica: number; reply: ClientReply }[] = [];
  #run: Simulation | null = null;
  #now = 0;

  constructor(options: EffectsDriverOptions, prng: Prng, sink: EffectSink, executorOf: (replica: number) => Executor | null) {
    this.#options = options;
    this.#prng = prng;
    this.#sink = sink;
    this.#executorOf = executorOf;
  }

  /** True when `reply` answers one of the driver's internal requests (it is then kept for `step`). */
  takeReply(replica: number, reply: ClientReply): boolean {
    if (reply.token < internalTokenBase) return false;
    this.#replies.push({ replica, reply });
    return true;
  }

  /** Replica `replica` crashed: its runner, timers and awaited replies are gone. */
  crashed(replica: number): void {
    const supervision = this.#supervision[replica];
    if (supervision === undefined) return;
    if (supervision.runner !== null) {
      supervision.runner.alive = false;
      supervision.runner.core.stop();
    }
    this.#supervision[replica] = { viewSeen: -1, viewStartOp: -1, lastCommit: -1, runner: null };
  }

  /** One tick: replies, due events, then each replica's runner supervision (as the node's). */
  step(run: Simulation, now: number): void {
    this.#run = run;
    this.#now = now;
    const replies = this.#replies;
    this.#replies = [];
    for (const { reply } of replies) this.#settle(reply.token, reply);
    for (;;) {
      const next = this.#events.peek();
      if (next === undefined || next.at > now) break;
      this.#events.pop();
      this.#handle(next);
    }
    for (let r = 0; r < run.replicas.length; r++) this.#supervise(r);
  }

  #push(event: DriverEvent): void {
    this.#events.push(event);
  }

  #at(delayTicks: number): { at: number; seq: number } {
    return { at: this.#now + delayTicks, seq: this.#eventSeq++ };
  }

  /** The node's supervision rule: a runner per view in which this replica is the normal primary. */
  #supervise(r: number): void {
    const run = this.#run!;
    const core = run.replicas[r]!.core;
    const supervision = (this.#supervision[r] ??= { viewSeen: -1, viewStartOp: -1, lastCommit: -1, runner: null });
    if (core === null) return;
    const status = core.status();
    if (status.view !== supervision.viewSeen) {
      supervision.viewSeen = status.view;
      supervision.viewStartOp = -1;
    }
    const primaryNow = status.status === "normal" && status.primary === r;
    const current = supervision.runner;
    if (current !== null && (!primaryNow || current.core.view !== status.view || current.core.stopped)) {
      if (!current.core.stopped) current.core.stop();
      current.alive = false;
      this.stats.runnersFenced++;
      supervision.runner = null;
    }
    if (primaryNow) {
      if (supervision.viewStartOp < 0) supervision.viewStartOp = status.op;
      const executor = this.#executorOf(r);
      assert(executor !== null, "a running replica has an executor");
      if (supervision.runner === null && status.commit >= supervision.viewStartOp) {
        const runner = this.#newRunner(r, status.view, executor);
        supervision.runner = runner;
        runner.core.start();
        this.#wake(runner);
      } else if (supervision.runner !== null && status.commit !== supervision.lastCommit) {
        this.#wake(supervision.runner);
      }
    }
    supervision.lastCommit = status.commit;
  }

  #newRunner(r: number, view: number, executor: Executor): Runner {
    const run = this.#run!;
    this.stats.runnersStarted++;
    let runner: Runner | null = null;
    const isPrimary = (v: number): boolean => {
      const core = run.replicas[r]!.core;
      if (runner === null || !runner.alive || core === null) return false;
      const status = core.status();
      return status.status === "normal" && status.view === v && status.primary === r;
    };
    const options = this.#options;
    runner = {
      replica: r,
      alive: true,
      awaiting: new Map(),
      core: new EffectRunnerCore({
        executor,
        view,
        isPrimary,
        random: () => this.#prng.next32() / 2 ** 32,
        maxAttempts: options.maxAttempts,
        inFlightMax: options.inFlightMax,
        resultsBatchMax: options.resultsBatchMax,
        resultsDelayMs: tickMs,
        submitsInFlightMax: 2,
        backoffBaseMs: 50,
        backoffMaxMs: 2_000,
        tickRetryMs: 1_000,
      }),
    };
    run.trace.event(this.#now, "runner_start", r, view);
    return runner;
  }

  #wake(runner: Runner): void {
    if (!runner.alive || !runner.core.started || runner.core.fenced()) return;
    runner.core.forgetSettled();
    this.#fill(runner);
    const plan = runner.core.tickPlan(this.#run!.clockMs(runner.replica));
    if (plan.kind === "submit") this.#submit(runner, "tick", [], operationScheduleTick, tickBody);
    else if (plan.kind === "sleep") this.#push({ ...this.#at(ticksOf(plan.delayMs)), kind: "tick_timer", runner, wakeMs: plan.wakeMs });
  }

  #fill(runner: Runner): void {
    for (const launch of runner.core.fill()) this.#attempt(runner, launch);
  }

  #attempt(runner: Runner, launch: EffectLaunch): void {
    if (!runner.core.beginAttempt(launch.item)) {
      this.#slotFreed(runner);
      return;
    }
    this.stats.attempts++;
    const attempt = launch.item.attempts;
    const effect = launch.effect;
    switch (effect.kind) {
      case "http": {
        runner.awaiting.set(launch.item.id, attempt);
        const timeoutMs = Math.min(effect.timeoutMs, attemptTimeoutMsMax);
        this.#push({ ...this.#at(ticksOf(timeoutMs)), kind: "timeout", runner, launch, attempt });
        if (this.#prng.chance(this.#lossProbability(this.#options.requestLossProbability))) {
          this.stats.requestsLost++;
          return;
        }
        let delayTicks = this.#delayTicks();
        if (this.#run!.world.mayGiveUp && this.#prng.chance(this.#options.stallProbability)) {
          this.stats.stalls++;
          delayTicks += 50 + this.#prng.int(251);
        }
        this.#push({ ...this.#at(delayTicks), kind: "arrive", runner, launch, attempt, view: runner.core.view });
        return;
      }
      case "log":
        this.#attemptDone(runner, launch, { kind: "ok", value: null });
        return;
      case "custom":
        this.#attemptDone(runner, launch, { kind: "retry", error: `no handler for custom effect type '${effect.type}' in the simulation` });
    }
  }

  #lossProbability(p: number): number {
    return this.#run!.world.mayGiveUp ? p : 0;
  }

  #delayTicks(): number {
    return this.#prng.exponential(this.#options.delayTicksMean, this.#options.delayTicksMean * 8);
  }

  #attemptDone(runner: Runner, launch: EffectLaunch, result: AttemptResult): void {
    runner.awaiting.delete(launch.item.id);
    const next = runner.core.attemptDone(launch.item, result);
    switch (next.kind) {
      case "stopped":
        this.#slotFreed(runner);
        return;
      case "finished": {
        const action = runner.core.outcomeQueued();
        if (action === "flush") this.#flush(runner);
        else if (action === "timer") this.#push({ ...this.#at(ticksOf(runner.core.resultsDelayMs)), kind: "flush", runner });
        this.#slotFreed(runner);
        return;
      }
      case "backoff":
        this.#push({ ...this.#at(ticksOf(next.delayMs)), kind: "retry", runner, launch });
    }
  }

  #slotFreed(runner: Runner): void {
    if (runner.core.slotFreed()) this.#fill(runner);
  }

  #flush(runner: Runner): void {
    for (;;) {
      const batch = runner.core.takeBatch();
      if (batch === null) return;
      this.stats.resultSubmits++;
      this.#submit(runner, "results", batch, operationEffectResults, encodeEffectResults(batch));
    }
  }

  #submit(runner: Runner, kind: Submission["kind"], batch: readonly EffectOutcome[], operation: number, body: Uint8Array): void {
    const run = this.#run!;
    if (kind === "tick") this.stats.tickSubmits++;
    const token = this.#tokenNext++;
    this.#submissions.set(token, { runner, kind, batch });
    this.#push({ ...this.#at(submitTimeoutTicks), kind: "submit_timeout", token });
    run.requestLocal(runner.replica, { client: internalClient, request: 0, operation, body, token });
  }

  /** A reply (or the timeout: `reply` null) for internal request `token`. */
  #settle(token: number, reply: ClientReply | null): void {
    const submission = this.#submissions.get(token);
    if (submission === undefined) return; // settled already (timed out, then answered)
    this.#submissions.delete(token);
    const { runner } = submission;
    if (!runner.alive) return;
    let committed = reply !== null && reply.error === undefined && reply.body !== undefined;
    if (committed) {
      const decoded = decodeReply(reply!.body!);
      committed = decoded.ok || decoded.code === "not_found" || decoded.code === "not_dead_lettered";
    }
    if (submission.kind === "tick") {
      runner.core.tickDone();
      this.#wake(runner);
      return;
    }
    runner.core.batchDone(submission.batch, committed);
    if (!committed) {
      this.stats.resultSubmitsFailed++;
      this.#push({ ...this.#at(ticksOf(runner.core.backoffBaseMs)), kind: "resubmit", runner });
      return;
    }
    this.#flush(runner);
    this.#wake(runner);
  }

  #handle(event: DriverEvent): void {
    switch (event.kind) {
      case "arrive": {
        // The request reached the sink: it acts on it even if the sender died or was deposed since.
        const effect = event.launch.effect as HttpEffect;
        const response = this.#sink.receive(event.launch.item.id, event.view, JSON.stringify(effect.body ?? null));
        this.#run!.trace.event(this.#now, "sink", event.runner.replica, event.view, response.status);
        if (this.#prng.chance(this.#lossProbability(this.#options.responseLossProbability))) {
          this.stats.responsesLost++;
          return;
        }
        const result = httpAttemptResult(response.status, response.body, false);
        this.#push({ ...this.#at(this.#delayTicks()), kind: "respond", runner: event.runner, launch: event.launch, attempt: event.attempt, result });
        return;
      }
      case "respond":
      case "timeout": {
        const runner = event.runner;
        if (!runner.alive) return;
        if (runner.awaiting.get(event.launch.item.id) !== event.attempt) {
          if (event.kind === "respond") this.stats.lateResponses++;
          return;
        }
        if (event.kind === "timeout") this.stats.timeouts++;
        const result: AttemptResult = event.kind === "respond" ? event.result : { kind: "retry", error: "timed out" };
        this.#attemptDone(runner, event.launch, result);
        return;
      }
      case "retry":
        if (event.runner.alive) this.#attempt(event.runner, event.launch);
        return;
      case "flush":
        if (!event.runner.alive) return;
        event.runner.core.flushTimerFired();
        this.#flush(event.runner);
        return;
      case "resubmit":
        if (!event.runner.alive) return;
        this.#flush(event.runner);
        this.#wake(event.runner);
        return;
      case "tick_timer":
        if (!event.runner.alive) return;
        event.runner.core.tickTimerFired(event.wakeMs);
        this.#wake(event.runner);
        return;
      case "submit_timeout":
        this.#settle(event.token, null);
    }
  }
}
