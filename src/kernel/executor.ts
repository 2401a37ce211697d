/**
 * The executor: the kernel's StateMachine. It applies committed entries to the
 * application on every replica, records effects in the replicated outbox, channels and
 * schedule queue, and answers queries, snapshots and state hashes.
 *
 * Operation codes (see src/app/wire.ts for the bodies):
 * - 16 event: `apply`; a throw rolls the state back and replies `rejected`;
 * - 17 effect_results (internal only): outbox outcomes, each applied at most once, then
 *   `onEffectResult` for http and custom effects;
 * - 18 schedule_tick (internal only): fires every scheduled event due at the entry's
 *   timestamp (up to `scheduleFiresPerTickMax`), in (due time, scheduling order) order;
 * - 19 effect_retry / 20 effect_discard: operator requests on a dead-lettered effect.
 *
 * Nothing here reads a clock, draws a random number or does I/O: the entry is the only
 * input, so replicas that commit the same entries hold byte-identical state. No input a
 * client can send makes `commit` throw; only a broken internal invariant does.
 * @module
 */
import type { App, ApplyContext, ApplyResult, EffectResult, Event, EventHeader } from "../app/app.ts";
import type { Effect } from "../app/effects.ts";
import { seededFromChecksum } from "../app/random.ts";
import { decodeValue, encodeOkReplyValue, encodeValue, encodeValueFast, encodeValueReusing, NestedEncoding } from "../app/value_codec.ts";
import {
  effectResultFields,
  effectResultsFlat,
  effectStatusAcknowledged,
  effectStatusDeadLettered,
  encodeReply,
  operationEffectDiscard,
  operationEffectResults,
  operationEffectRetry,
  operationEvent,
  operationScheduleTick,
  queryApp,
  queryChannel,
  queryEffects,
  queryStatus,
} from "../app/wire.ts";
import type { EffectOutcome, KernelErrorCode, KernelReply } from "../app/wire.ts";
import { AssertionFailed, assert } from "../assert.ts";
import { checksum } from "../codec/checksum.ts";
import type { CommittedEntry, StateMachine } from "../vsr/state_machine.ts";
import { KernelRejection, validateEffect } from "./effect_validation.ts";
import type { KernelLimits } from "./limits.ts";
import { kernelLimits } from "./limits.ts";
import type { OutboxEffect, OutboxEntry } from "./outbox.ts";
import { effectId, isEffectId } from "./outbox.ts";
import { ClientHexTable } from "./client_hex.ts";
import { beginTransaction, commitTransaction, guard, readOnly, rollbackTransaction, unguard } from "./state_guard.ts";
import { encoderBufferOf } from "./snapshot_encoder.ts";
import { IncrementalSnapshot } from "./snapshot_job.ts";
import type { SnapshotFields, SnapshotJob } from "./snapshot_job.ts";

/** Counters kept in replicated state (they are part of the state hash). */
export interface KernelCounters {
  eventsApplied: number;
  eventsRejected: number;
  effectsCreated: number;
  effectsAcknowledged: number;
  effectsDeadLettered: number;
  outcomesIgnored: number;
  scheduledFired: number;
  scheduledRejected: number;
  effectResultsRejected: number;
}

/** A scheduled event waiting for its due time. */
export interface ScheduledEvent {
  readonly id: string;
  readonly dueMs: number;
  /** CBOR of the event payload. */
  readonly eventBytes: Uint8Array;
  /** The op of the event that scheduled it. */
  readonly eventIndex: number;
}

/** One entry of an emit channel. */
export interface ChannelEntry {
  /** Position in the channel, from 0; a reader's cursor. */
  readonly seq: number;
  /** The emit effect's id. */
  readonly id: string;
  /** CBOR of the payload. */
  readonly payloadBytes: Uint8Array;
  readonly eventIndex: number;
  readonly timestampMs: number;
}

interface Channel {
  nextSeq: number;
  entries: ChannelEntry[];
}

/** The outbox entry as stored: the effect kept as CBOR bytes (immutable, sized once). */
export interface StoredOutboxEntry extends Omit<OutboxEntry, "effect"> {
  readonly kind: OutboxEffect["kind"];
  readonly effectBytes: Uint8Array;
}

/** The kernel's snapshot format version (not the app's schema version). */
export const snapshotFormat = 1;

/** A checkpoint written by another app schema version, and the app cannot upgrade it. */
export class SchemaVersionError extends Error {
  override readonly name = "SchemaVersionError";
}

/** A snapshot that is not a chronon kernel snapshot (or of an unknown format). */
export class SnapshotFormatError extends Error {
  override readonly name = "SnapshotFormatError";
}

const zeroClient = new Uint8Array(16);
const zeroClientHex = "0".repeat(32);

function isInternal(entry: CommittedEntry): boolean {
  for (const byte of entry.client) if (byte !== 0) return false;
  return true;
}

function newCounters(): KernelCounters {
  return {
    eventsApplied: 0,
    eventsRejected: 0,
    effectsCreated: 0,
    effectsAcknowledged: 0,
    effectsDeadLettered: 0,
    outcomesIgnored: 0,
    scheduledFired: 0,
    scheduledRejected: 0,
    effectResultsRejected: 0,
  };
}

/**
 * Effects of one apply, checked and encoded, waiting for the apply to be accepted. One
 * per executor, reused by every apply: filled by #planEffects, emptied by
 * {@link EffectPlan.clear} once #record took the effects or the apply was rolled back.
 * Parallel arrays with counts, not an object and four fresh arrays per event: those were
 * a quarter of the bytes an applied event allocated.
 */
class EffectPlan {
  outbox: StoredOutboxEntry[] = [];
  outboxCount = 0;
  emitChannels: string[] = [];
  emitIds: string[] = [];
  emitPayloads: Uint8Array[] = [];
  emitCount = 0;
  schedules: ScheduledEvent[] = [];
  scheduleCount = 0;

  /** Empties the plan, references included (encoded effects may be large). */
  clear(): void {
    for (let i = 0; i < this.outboxCount; i++) this.outbox[i] = undefined as unknown as StoredOutboxEntry;
    for (let i = 0; i < this.emitCount; i++) this.emitPayloads[i] = undefined as unknown as Uint8Array;
    for (let i = 0; i < this.scheduleCount; i++) this.schedules[i] = undefined as unknown as ScheduledEvent;
    this.outboxCount = this.emitCount = this.scheduleCount = 0;
  }

  /** True when an emit to `channel` is already planned. */
  hasChannel(channel: string): boolean {
    for (let i = 0; i < this.emitCount; i++) if (this.emitChannels[i] === channel) return true;
    return false;
  }
}

/** An accepted app call (its reply, when wanted, is in the executor's #replyBytes). */
const applied = { ok: true } as const;

type ApplyOutcome =
  | typeof applied
  | { readonly ok: false; readonly code: KernelErrorCode; readonly message: string };

/** Options of {@link Executor}. */
export interface ExecutorOptions {
  /** Kernel bounds; equal on every replica (see limits.ts). */
  readonly limits?: Partial<KernelLimits>;
}

/** Applies committed entries to an application: the StateMachine of a chronon replica. */
export class Executor implements StateMachine {
  readonly app: App;
  readonly limits: KernelLimits;
  #state: unknown;
  #outbox = new Map<string, StoredOutboxEntry>();
  #channels = new Map<string, Channel>();
  /** Sorted by dueMs; equal due times keep scheduling order. */
  #schedule: ScheduledEvent[] = [];
  #counters: KernelCounters = newCounters();
  #op = 0;
  #timestampMs = 0;
  /** Size of the last snapshot encoded here: the next one is reserved at about that size. */
  #snapshotSizeLast = 0;
  /** The snapshot being encoded between applies (see {@link beginSnapshot}), or null. */
  #snapshotJob: IncrementalSnapshot | null = null;
  /** The reply of the last accepted app call that wanted one, until its caller takes it. */
  #replyBytes: Uint8Array | null = null;
  /** The effects of the apply in progress (see {@link EffectPlan}). */
  readonly #plan = new EffectPlan();

  constructor(app: App, options: ExecutorOptions = {}) {
    this.app = app;
    this.limits = kernelLimits(options.limits);
    this.#state = app.genesis();
  }

  /** The last op applied (0 before the first). */
  get op(): number {
    return this.#op;
  }

  /** The last applied entry's timestamp. */
  get timestampMs(): number {
    return this.#timestampMs;
  }

  /** The application state (read it, never write it outside apply). */
  get state(): unknown {
    return this.#state;
  }

  /** Hex of the clients seen recently (every event's header carries its client as hex). */
  readonly #clientHex = new ClientHexTable();

  /** A copy of the kernel counters. */
  counters(): KernelCounters {
    return { ...this.#counters };
  }

  commit(entry: CommittedEntry): Uint8Array {
    const reply = this.#commit(entry);
    return reply instanceof Uint8Array ? reply : encodeReply(reply);
  }

  #commit(entry: CommittedEntry): KernelReply | Uint8Array {
    // The message is built only on failure (a template per commit was measurable).
    if (!(Number.isSafeInteger(entry.op) && entry.op > this.#op)) assert(false, `commit of op ${entry.op} after op ${this.#op}`);
    assert(entry.checksum.length >= 16, "entry checksum must hold 16 bytes");
    this.#op = entry.op;
    this.#timestampMs = entry.timestamp;
    let reply: KernelReply | Uint8Array;
    switch (entry.operation) {
      case operationEvent:
        reply = this.#commitEvent(entry);
        break;
      case operationEffectResults:
        reply = isInternal(entry) ? this.#commitEffectResults(entry) : forbidden(entry.operation);
        break;
      case operationScheduleTick:
        reply = isInternal(entry) ? this.#commitScheduleTick(entry) : forbidden(entry.operation);
        break;
      case operationEffectRetry:
      case operationEffectDiscard:
        reply = this.#commitOperator(entry);
        break;
      default:
        reply = { ok: false, code: "unknown_operation", message: `operation ${entry.operation} is not a kernel operation` };
    }
    return reply;
  }

  #commitEvent(entry: CommittedEntry): KernelReply | Uint8Array {
    let schemaVersion: number;
    let payload: unknown;
    try {
      const body = decodeValue(entry.body);
      if (!Array.isArray(body) || body.length !== 2 || !Number.isSafeInteger(body[0]) || body[0] < 1) {
        throw new TypeError("event body must be CBOR [schemaVersion, payload]");
      }
      schemaVersion = body[0];
      payload = body[1];
    } catch (error) {
      this.#counters.eventsRejected++;
      return { ok: false, code: "bad_request", message: this.#message(error) };
    }
    if (schemaVersion > this.app.schemaVersion) {
      this.#counters.eventsRejected++;
      return {
        ok: false,
        code: "schema_unsupported",
        message: `event schema version ${schemaVersion} is newer than the app's ${this.app.schemaVersion}`,
      };
    }
    const header: EventHeader = {
      index: entry.op,
      view: entry.view,
      client: this.#clientHex.hex(entry.client),
      request: entry.request,
      schemaVersion,
      timestamp: entry.timestamp,
      origin: "client",
    };
    const event: Event<unknown> = { header, payload };
    const outcome = this.#apply(entry, 0, true, event, null);
    if (!outcome.ok) {
      this.#counters.eventsRejected++;
      return outcome;
    }
    this.#counters.eventsApplied++;
    // An event always wants its reply, so #apply encoded it.
    const replyBytes = this.#replyBytes;
    assert(replyBytes !== null, "an applied event has its reply encoded");
    this.#replyBytes = null;
    return replyBytes;
  }

  /**
   * Runs one app call in a state transaction: on a throw, an invalid result or a full
   * table, every write is undone and nothing is recorded.
   */
  #apply(
    entry: CommittedEntry,
    stream: number,
    wantsReply: boolean,
    // Exactly one of the two: `app.apply(state, event)` or `app.onEffectResult(state, result)`.
    // (Not a closure: one per event was measurable.)
    event: Event<unknown> | null,
    effectResult: EffectResult | null,
  ): ApplyOutcome {
    const ctx = new Context(entry, stream);
    let ids: string[] | null;
    let newState: unknown;
    let replyBytes: Uint8Array | null = null;
    // A snapshot encoding the state in place keeps what this apply writes first (copy on
    // write); one around an app.snapshot image took the image already.
    const job = this.#snapshotJob;
    beginTransaction(job !== null && job.watchesState ? job : null);
    try {
      const app = this.app;
      const state = guard(this.#state);
      let result: ApplyResult<unknown, unknown, unknown>;
      if (event !== null) result = app.apply(state, event, ctx);
      else {
        assert(effectResult !== null && app.onEffectResult !== undefined, "an app call needs an event or an effect result");
        result = app.onEffectResult(state, effectResult, ctx);
      }
      if (typeof result !== "object" || result === null || !("state" in result)) {
        throw new KernelRejection("rejected", "apply must return an object { state, effects?, reply? }");
      }
      newState = unguard(result.state);
      ids = this.#planEffects(result.effects, entry, stream);
      // The whole reply is encoded here, inside the transaction, so an unencodable
      // reply rejects the event; one encode, no splicing.
      if (wantsReply) replyBytes = encodeOkReplyValue(result.reply === undefined ? null : result.reply, ids ?? noIds);
    } catch (error) {
      rollbackTransaction();
      this.#plan.clear();
      if (error instanceof AssertionFailed) throw error;
      const code = error instanceof KernelRejection ? error.code : "rejected";
      return { ok: false, code, message: this.#message(error) };
    }
    commitTransaction();
    this.#state = newState;
    if (ids !== null) this.#record(ids.length, entry);
    this.#replyBytes = replyBytes;
    return applied;
  }

  /**
   * Checks and encodes the effects into this.#plan; returns their ids, or null when apply
   * returned no effects.
   */
  #planEffects(effects: readonly Effect[] | undefined, entry: CommittedEntry, stream: number): string[] | null {
    if (effects === undefined) return null;
    if (!Array.isArray(effects)) throw new KernelRejection("invalid_effect", "effects must be an array");
    const limits = this.limits;
    if (effects.length > limits.effectsPerEventMax) {
      throw new KernelRejection("invalid_effect", `${effects.length} effects exceed the limit of ${limits.effectsPerEventMax} per event`);
    }
    if (effects.length === 0) return null;
    const plan = this.#plan;
    assert(plan.outboxCount === 0 && plan.emitCount === 0 && plan.scheduleCount === 0, "the effect plan is empty between applies");
    // Sized once: the ids escape into the reply.
    const ids: string[] = new Array(effects.length);
    let newChannels = 0;
    // The last emitted payload object and its bytes: a webhook that carries the same
    // object (a common pattern: notify a channel and a URL) reuses its encoding.
    let payload: object | null = null;
    let payloadEncoded: Uint8Array | null = null;
    for (let index = 0; index < effects.length; index++) {
      const effect: unknown = effects[index];
      validateEffect(effect, index);
      const id = effectId(entry.checksum, stream, index);
      ids[index] = id;
      switch (effect.kind) {
        case "emit": {
          const payloadBytes = encodeValue(effect.payload);
          if (typeof effect.payload === "object" && effect.payload !== null) {
            payload = effect.payload;
            payloadEncoded = payloadBytes;
          }
          if (payloadBytes.length > limits.effectSizeMax) {
            throw new KernelRejection("invalid_effect", `effect ${index}: emit payload of ${payloadBytes.length} bytes exceeds ${limits.effectSizeMax}`);
          }
          if (!this.#channels.has(effect.channel) && !plan.hasChannel(effect.channel)) newChannels++;
          const at = plan.emitCount++;
          plan.emitChannels[at] = effect.channel;
          plan.emitIds[at] = id;
          plan.emitPayloads[at] = payloadBytes;
          break;
        }
        case "schedule": {
          const eventBytes = encodeValue(effect.event);
          if (eventBytes.length > limits.effectSizeMax) {
            throw new KernelRejection("invalid_effect", `effect ${index}: scheduled event of ${eventBytes.length} bytes exceeds ${limits.effectSizeMax}`);
          }
          plan.schedules[plan.scheduleCount++] = { id, dueMs: entry.timestamp + effect.delayMs, eventBytes, eventIndex: entry.op };
          break;
        }
        default: {
          const effectBytes = payload === null ? encodeValue(effect) : encodeValueReusing(effect, payload, payloadEncoded!);
          if (effectBytes.length > limits.effectSizeMax) {
            throw new KernelRejection("invalid_effect", `effect ${index}: ${effectBytes.length} bytes exceed ${limits.effectSizeMax}`);
          }
          plan.outbox[plan.outboxCount++] = {
            id,
            kind: effect.kind,
            effectBytes,
            eventIndex: entry.op,
            createdMs: entry.timestamp,
            status: "pending",
            generation: 0,
            attempts: 0,
            lastError: null,
          };
        }
      }
    }
    if (this.#outbox.size + plan.outboxCount > limits.outboxMax) {
      throw new KernelRejection("outbox_full", `the outbox holds ${this.#outbox.size} of ${limits.outboxMax} effects; retry once effects drain (or discard dead letters)`);
    }
    if (this.#schedule.length + plan.scheduleCount > limits.scheduleMax) {
      throw new KernelRejection("schedule_full", `the schedule queue holds ${this.#schedule.length} of ${limits.scheduleMax} events`);
    }
    if (this.#channels.size + newChannels > limits.channelsMax) {
      throw new KernelRejection("channel_full", `${this.#channels.size} channels exist, the limit is ${limits.channelsMax}`);
    }
    return ids;
  }

  /** Adds the planned effects (`count` of them) to the outbox, channels and schedule. */
  #record(count: number, entry: CommittedEntry): void {
    const plan = this.#plan;
    for (let i = 0; i < plan.outboxCount; i++) {
      const item = plan.outbox[i]!;
      if (this.#outbox.has(item.id)) assert(false, `effect id ${item.id} already in the outbox`);
      this.#outbox.set(item.id, item);
    }
    for (let i = 0; i < plan.emitCount; i++) {
      const channel = plan.emitChannels[i]!;
      let state = this.#channels.get(channel);
      if (state === undefined) {
        state = { nextSeq: 0, entries: [] };
        this.#channels.set(channel, state);
      }
      state.entries.push({ seq: state.nextSeq++, id: plan.emitIds[i]!, payloadBytes: plan.emitPayloads[i]!, eventIndex: entry.op, timestampMs: entry.timestamp });
      const retention = this.limits.channelRetention;
      // Drop in batches so the array shifts once per quarter of the retention.
      if (state.entries.length >= retention + Math.ceil(retention / 4)) {
        state.entries.splice(0, state.entries.length - retention);
      }
    }
    for (let i = 0; i < plan.scheduleCount; i++) this.#scheduleInsert(plan.schedules[i]!);
    plan.clear();
    this.#counters.effectsCreated += count;
  }

  #scheduleInsert(item: ScheduledEvent): void {
    const schedule = this.#schedule;
    // First position whose due time is later: equal due times keep scheduling order.
    let low = 0;
    let high = schedule.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (schedule[middle]!.dueMs <= item.dueMs) low = middle + 1;
      else high = middle;
    }
    schedule.splice(low, 0, item);
  }

  #commitEffectResults(entry: CommittedEntry): KernelReply {
    let body: unknown;
    try {
      body = decodeValue(entry.body);
    } catch (error) {
      return { ok: false, code: "bad_request", message: this.#message(error) };
    }
    let applied = 0;
    let ignored = 0;
    if (Array.isArray(body)) {
      // The flat form: [1, id, generation, status, attempts, view, detail, …] (wire.ts).
      const count = (body.length - 1) / effectResultFields;
      if (body[0] !== effectResultsFlat || !Number.isInteger(count)) {
        return { ok: false, code: "bad_request", message: `body must be [${effectResultsFlat}, …${effectResultFields} fields per outcome]` };
      }
      if (count > this.limits.resultsPerEntryMax) {
        return { ok: false, code: "bad_request", message: `${count} results exceed ${this.limits.resultsPerEntryMax} per entry` };
      }
      for (let k = 0, at = 1; k < count; k++, at += effectResultFields) {
        const code: unknown = body[at + 2];
        const status = code === effectStatusAcknowledged ? "acknowledged" : code === effectStatusDeadLettered ? "dead_lettered" : null;
        const detail: unknown = body[at + 5];
        const done = this.#applyOutcome(entry, k, body[at], body[at + 1], status, status === "acknowledged" ? detail : undefined, status === "dead_lettered" ? detail : undefined, body[at + 3]);
        if (done) applied++;
        else ignored++;
      }
    } else {
      // The older form { results: [{ id, generation, status, value?, error?, attempts, view }] }.
      const results = typeof body === "object" && body !== null ? (body as { results?: unknown }).results : undefined;
      if (!Array.isArray(results)) return { ok: false, code: "bad_request", message: "TypeError: body must be { results: [...] }" };
      if (results.length > this.limits.resultsPerEntryMax) {
        return { ok: false, code: "bad_request", message: `TypeError: ${results.length} results exceed ${this.limits.resultsPerEntryMax} per entry` };
      }
      for (let k = 0; k < results.length; k++) {
        const outcome: unknown = results[k];
        const o = (typeof outcome === "object" && outcome !== null ? outcome : {}) as Partial<Record<keyof EffectOutcome, unknown>>;
        const status = o.status === "acknowledged" || o.status === "dead_lettered" ? o.status : null;
        if (this.#applyOutcome(entry, k, o.id, o.generation, status, o.value, o.error, o.attempts)) applied++;
        else ignored++;
      }
    }
    this.#counters.outcomesIgnored += ignored;
    return { ok: true, value: { applied, ignored }, effects: [] };
  }

  /**
   * Applies one outcome; false when it is ignored (unknown id, not pending, another
   * generation, a malformed field), so an acknowledgement committed twice applies once.
   */
  #applyOutcome(
    entry: CommittedEntry,
    k: number,
    id: unknown,
    generation: unknown,
    status: "acknowledged" | "dead_lettered" | null,
    resultValue: unknown,
    resultError: unknown,
    attemptsReported: unknown,
  ): boolean {
    // Every key of the outbox is a well-formed id: a lookup is the shape check.
    const stored = typeof id === "string" ? this.#outbox.get(id) : undefined;
    const valid = stored !== undefined &&
      stored.status === "pending" &&
      generation === stored.generation &&
      status !== null &&
      Number.isSafeInteger(attemptsReported) && (attemptsReported as number) >= 0;
    if (!valid) return false;
    const attempts = stored.attempts + (attemptsReported as number);
    let value: unknown;
    let error: string | undefined;
    if (status === "acknowledged") {
      this.#outbox.delete(stored.id);
      this.#counters.effectsAcknowledged++;
      value = this.#boundedValue(resultValue);
    } else {
      error = this.#cut(typeof resultError === "string" ? resultError : "unknown error");
      this.#outbox.set(stored.id, { ...stored, status: "dead_lettered", attempts, lastError: error });
      this.#counters.effectsDeadLettered++;
    }
    if (this.app.onEffectResult === undefined || stored.kind === "log") return true;
    const result: EffectResult = {
      id: stored.id,
      effect: decodeValue(stored.effectBytes) as EffectResult["effect"],
      eventIndex: stored.eventIndex,
      status,
      ...(value !== undefined ? { value } : {}),
      ...(error !== undefined ? { error } : {}),
      attempts,
    };
    const applyOutcome = this.#apply(entry, k + 1, false, null, result);
    if (!applyOutcome.ok) this.#counters.effectResultsRejected++;
    return true;
  }

  #commitScheduleTick(entry: CommittedEntry): KernelReply {
    const schedule = this.#schedule;
    let due = 0;
    while (due < schedule.length && due < this.limits.scheduleFiresPerTickMax && schedule[due]!.dueMs <= entry.timestamp) due++;
    const fired = schedule.splice(0, due);
    let rejected = 0;
    const app = this.app;
    for (let k = 0; k < fired.length; k++) {
      const item = fired[k]!;
      const header: EventHeader = {
        index: entry.op,
        view: entry.view,
        client: zeroClientHex,
        request: 0,
        schemaVersion: app.schemaVersion,
        timestamp: entry.timestamp,
        origin: "schedule",
        scheduledBy: item.id,
      };
      const event: Event<unknown> = { header, payload: decodeValue(item.eventBytes) };
      const outcome = this.#apply(entry, k + 1, false, event, null);
      if (outcome.ok) this.#counters.scheduledFired++;
      else {
        this.#counters.scheduledRejected++;
        rejected++;
      }
    }
    return { ok: true, value: { fired: fired.length, rejected }, effects: [] };
  }

  #commitOperator(entry: CommittedEntry): KernelReply {
    let id: string;
    try {
      const body = decodeValue(entry.body) as { id?: unknown };
      if (typeof body !== "object" || body === null || !isEffectId(body.id)) throw new TypeError("body must be { id: <32 hex digits> }");
      id = body.id;
    } catch (error) {
      return { ok: false, code: "bad_request", message: this.#message(error) };
    }
    const stored = this.#outbox.get(id);
    if (stored === undefined) return { ok: false, code: "not_found", message: `effect ${id} is not in the outbox` };
    if (stored.status !== "dead_lettered") return { ok: false, code: "not_dead_lettered", message: `effect ${id} is ${stored.status}` };
    if (entry.operation === operationEffectRetry) {
      this.#outbox.set(id, { ...stored, status: "pending", generation: stored.generation + 1 });
      return { ok: true, value: { id, status: "pending", generation: stored.generation + 1 }, effects: [] };
    }
    this.#outbox.delete(id);
    return { ok: true, value: { id, status: "discarded" }, effects: [] };
  }

  #boundedValue(value: unknown): unknown {
    if (value === undefined) return undefined;
    // Scalars encode in at most 9 bytes: no need to encode them to know they fit.
    const scalar = value === null || typeof value === "boolean" || typeof value === "number";
    if (scalar && this.limits.resultValueSizeMax >= 9) return value;
    let size: number;
    try {
      size = encodeValue(value).length;
    } catch {
      return { unencodable: true };
    }
    if (size > this.limits.resultValueSizeMax) return { truncated: true, size };
    return value;
  }

  #cut(message: string): string {
    const max = this.limits.errorMessageLengthMax;
    return message.length > max ? message.slice(0, max) : message;
  }

  #message(error: unknown): string {
    let text: string;
    try {
      text = error instanceof Error ? `${error.name === "Error" ? "" : error.name + ": "}${error.message}` : String(error);
    } catch {
      text = "apply threw a value that cannot be printed";
    }
    return this.#cut(text);
  }

  // ---------------------------------------------------------------------- queries

  query(body: Uint8Array): Uint8Array {
    const request = decodeValue(body);
    if (!Array.isArray(request) || !Number.isSafeInteger(request[0])) throw new TypeError("query body must be CBOR [kind, argument]");
    const argument: unknown = request[1];
    switch (request[0]) {
      case queryApp: {
        const app = this.app;
        const state = this.#state;
        return readOnly(() => encodeValue(app.query(guard(state), argument)));
      }
      case queryEffects: {
        const { status, after, limit } = (argument ?? {}) as { status?: unknown; after?: unknown; limit?: unknown };
        if (status !== "pending" && status !== "dead_lettered") throw new TypeError("status must be pending or dead_lettered");
        return encodeValue(this.listEffects(status, typeof after === "string" ? after : undefined, typeof limit === "number" ? limit : undefined));
      }
      case queryChannel: {
        const { channel, cursor, limit } = (argument ?? {}) as { channel?: unknown; cursor?: unknown; limit?: unknown };
        if (typeof channel !== "string") throw new TypeError("channel must be a string");
        if (!Number.isSafeInteger(cursor) || (cursor as number) < 0) throw new TypeError("cursor must be a non-negative integer");
        return encodeValue(this.readChannel(channel, cursor as number, typeof limit === "number" ? limit : undefined));
      }
      case queryStatus:
        return encodeValue(this.status());
      default:
        throw new TypeError(`unknown query kind ${request[0]}`);
    }
  }

  /** Every outbox entry in insertion order (the effect runner's view of pending work). */
  outboxEntries(): IterableIterator<StoredOutboxEntry> {
    return this.#outbox.values();
  }

  /** One outbox entry by id. */
  outboxEntry(id: string): StoredOutboxEntry | undefined {
    return this.#outbox.get(id);
  }

  /** Number of effects in the outbox (pending + dead-lettered). */
  get outboxSize(): number {
    return this.#outbox.size;
  }

  /**
   * Outbox entries with `status`, ordered by (eventIndex, id), paged: `after` is the
   * `next` cursor of the previous page.
   */
  listEffects(status: "pending" | "dead_lettered", after?: string, limit?: number): { items: OutboxListItem[]; next: string | null } {
    const max = Math.min(limit ?? this.limits.listLimitMax, this.limits.listLimitMax);
    const matching = [...this.#outbox.values()].filter((e) => e.status === status);
    matching.sort((a, b) => a.eventIndex - b.eventIndex || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let start = 0;
    if (after !== undefined) {
      const [indexText, id = ""] = after.split(":");
      const index = Number(indexText);
      while (start < matching.length && (matching[start]!.eventIndex < index || (matching[start]!.eventIndex === index && matching[start]!.id <= id))) start++;
    }
    const page = matching.slice(start, start + Math.max(0, max));
    const items = page.map((e) => ({
      id: e.id,
      kind: e.kind,
      effect: decodeValue(e.effectBytes) as OutboxEffect,
      eventIndex: e.eventIndex,
      createdMs: e.createdMs,
      status: e.status,
      generation: e.generation,
      attempts: e.attempts,
      lastError: e.lastError,
    }));
    const last = page[page.length - 1];
    const next = start + page.length < matching.length && last !== undefined ? `${last.eventIndex}:${last.id}` : null;
    return { items, next };
  }

  /**
   * Channel entries from `cursor` on. `first` is the oldest retained seq: a reader whose
   * cursor is older missed entries (`missed` says how many).
   */
  readChannel(channel: string, cursor: number, limit?: number): ChannelPage {
    const max = Math.min(limit ?? this.limits.listLimitMax, this.limits.listLimitMax);
    const state = this.#channels.get(channel);
    if (state === undefined) return { entries: [], first: 0, next: cursor, missed: 0 };
    const first = state.nextSeq - state.entries.length;
    const from = Math.max(cursor, first);
    const slice = state.entries.slice(from - first, from - first + Math.max(0, max));
    return {
      entries: slice.map((e) => ({ seq: e.seq, id: e.id, payload: decodeValue(e.payloadBytes), eventIndex: e.eventIndex, timestampMs: e.timestampMs })),
      first,
      next: from + slice.length,
      missed: Math.max(0, first - cursor),
    };
  }

  /** Due time of the earliest scheduled event, or null when none waits. */
  nextDueMs(): number | null {
    return this.#schedule[0]?.dueMs ?? null;
  }

  /** Number of scheduled events waiting. */
  get scheduleSize(): number {
    return this.#schedule.length;
  }

  /** Counters and table sizes. */
  status(): KernelStatus {
    let pending = 0;
    for (const e of this.#outbox.values()) if (e.status === "pending") pending++;
    return {
      op: this.#op,
      timestampMs: this.#timestampMs,
      schemaVersion: this.app.schemaVersion,
      outboxPending: pending,
      outboxDeadLettered: this.#outbox.size - pending,
      scheduled: this.#schedule.length,
      nextDueMs: this.nextDueMs(),
      channels: this.#channels.size,
      counters: this.counters(),
    };
  }

  // ---------------------------------------------------------------------- checkpoints

  /**
   * The snapshot's fields around the app's part. `copied`: the kernel's tables are copied
   * (shallowly: their entries are never written in place, only replaced), for a snapshot
   * encoded while later commits change them; otherwise they are the live ones.
   */
  #snapshotFields(appPart: unknown, copied: boolean): SnapshotFields {
    const channels: [string, number, ChannelEntry[]][] = [];
    for (const [name, channel] of this.#channels) channels.push([name, channel.nextSeq, copied ? channel.entries.slice() : channel.entries]);
    return {
      format: snapshotFormat,
      schemaVersion: this.app.schemaVersion,
      op: this.#op,
      timestampMs: this.#timestampMs,
      app: appPart,
      outbox: [...this.#outbox.values()],
      channels,
      schedule: copied ? this.#schedule.slice() : this.#schedule,
      counters: copied ? { ...this.#counters } : this.#counters,
    };
  }

  /**
   * A state of megabytes is encoded into a buffer reserved at the last snapshot's size
   * plus an eighth, instead of one doubled (and copied) a dozen times from 4 KiB.
   */
  #snapshotSizeHint(): number {
    const last = this.#snapshotSizeLast;
    return last > 1024 * 1024 ? last + (last >>> 3) : 0;
  }

  snapshot(): Uint8Array {
    const app = this.app;
    const fields = (appPart: unknown) => this.#snapshotFields(appPart, false);
    const sizeHint = this.#snapshotSizeHint();
    if (app.snapshot === undefined) {
      // The app image written in place as the snapshot's byte string: no buffer of its
      // own to fault in and copy (an 18 MB one cost 10–15 ms of a checkpoint's pause).
      const bytes = encodeValueFast(fields(new NestedEncoding(this.#state)), sizeHint);
      if (bytes !== null) {
        this.#snapshotSizeLast = bytes.length;
        return bytes;
      }
    }
    // An app snapshot hook, or a state the fast path leaves to cborg: the image first.
    const appBytes = app.snapshot !== undefined ? app.snapshot(this.#state) : encodeValue(this.#state, sizeHint);
    assert(appBytes instanceof Uint8Array, "app.snapshot must return a Uint8Array");
    // Sized for the app image plus the kernel's parts: the image is copied in once.
    const bytes = encodeValue(fields(appBytes), appBytes.length + 64 * 1024);
    this.#snapshotSizeLast = bytes.length;
    return bytes;
  }

  /**
   * Begins a snapshot of the state at the current op, to be encoded in steps between later
   * commits: `job.step(budgetBytes)` until it returns true, then `job.result()` is
   * byte for byte what {@link snapshot} would have returned now. Commits may run between
   * steps (each write to the state keeps its container's pre-image first; see
   * snapshot_job.ts). One job at a time; {@link restore} aborts it.
   *
   * `reuse`: the result of an earlier job that the caller no longer reads or keeps (the
   * replica passes the state bytes of the checkpoint it has just replaced). When its buffer
   * is one an encoder allocated, the job encodes into it rather than allocating and
   * faulting in a state-sized buffer each checkpoint; other bytes are ignored.
   */
  beginSnapshot(reuse?: Uint8Array): SnapshotJob {
    assert(this.#snapshotJob === null, "one snapshot job at a time");
    const app = this.app;
    const appInPlace = app.snapshot === undefined;
    let appPart: unknown;
    if (appInPlace) appPart = new NestedEncoding(this.#state);
    else {
      appPart = app.snapshot!(this.#state);
      assert(appPart instanceof Uint8Array, "app.snapshot must return a Uint8Array");
    }
    // Later commits change the kernel's tables, so the job encodes copies of them.
    const fields = this.#snapshotFields(appPart, true);
    const spare = reuse === undefined ? null : encoderBufferOf(reuse);
    const job = new IncrementalSnapshot(fields, this.#state, appInPlace, this.#snapshotSizeHint(), (ended, bytes) => {
      if (this.#snapshotJob === ended) this.#snapshotJob = null;
      if (bytes !== null) this.#snapshotSizeLast = bytes.length;
    }, spare);
    this.#snapshotJob = job;
    return job;
  }

  restore(snapshot: Uint8Array): void {
    // A snapshot of the state being replaced is of no use to anyone.
    this.#snapshotJob?.abort();
    assert(this.#snapshotJob === null, "restore aborted the snapshot job");
    const decoded = decodeValue(snapshot) as SnapshotShape;
    if (typeof decoded !== "object" || decoded === null || decoded.format !== snapshotFormat) {
      throw new SnapshotFormatError(`not a chronon kernel snapshot of format ${snapshotFormat}`);
    }
    const app = this.app;
    let state: unknown;
    if (app.snapshot !== undefined) {
      state = app.restore!(decoded.app, decoded.schemaVersion);
    } else if (decoded.schemaVersion === app.schemaVersion) {
      state = decodeValue(decoded.app);
    } else if (app.restore !== undefined) {
      state = app.restore(decodeValue(decoded.app), decoded.schemaVersion);
    } else {
      throw new SchemaVersionError(
        `checkpoint has app schema version ${decoded.schemaVersion}, the app is version ${app.schemaVersion} and defines no restore to upgrade it`,
      );
    }
    this.#state = state;
    this.#op = decoded.op;
    this.#timestampMs = decoded.timestampMs;
    this.#outbox = new Map(decoded.outbox.map((e) => [e.id, e]));
    this.#channels = new Map(decoded.channels.map(([name, nextSeq, entries]) => [name, { nextSeq, entries }]));
    this.#schedule = decoded.schedule;
    this.#counters = { ...newCounters(), ...decoded.counters };
  }

  stateHash(): Uint8Array {
    return checksum(this.snapshot());
  }
}

interface SnapshotShape {
  format: number;
  schemaVersion: number;
  op: number;
  timestampMs: number;
  app: Uint8Array;
  outbox: StoredOutboxEntry[];
  channels: [string, number, ChannelEntry[]][];
  schedule: ScheduledEvent[];
  counters: KernelCounters;
}

/** An outbox entry as listings show it. */
export interface OutboxListItem extends Omit<StoredOutboxEntry, "effectBytes"> {
  readonly effect: OutboxEffect;
}

/** A page of a channel read. */
export interface ChannelPage {
  readonly entries: { seq: number; id: string; payload: unknown; eventIndex: number; timestampMs: number }[];
  /** Oldest seq still retained. */
  readonly first: number;
  /** The cursor for the next read. */
  readonly next: number;
  /** Entries the reader's cursor pointed at that retention already dropped. */
  readonly missed: number;
}

/** Kernel counters and table sizes (query kind 3). */
export interface KernelStatus {
  readonly op: number;
  readonly timestampMs: number;
  readonly schemaVersion: number;
  readonly outboxPending: number;
  readonly outboxDeadLettered: number;
  readonly scheduled: number;
  readonly nextDueMs: number | null;
  readonly channels: number;
  readonly counters: KernelCounters;
}

const noIds: string[] = [];

/**
 * The ApplyContext of one app call. Its PRNG is seeded on the first draw: most events
 * never draw, and seeding mixes twelve rounds.
 */
class Context implements ApplyContext {
  readonly blockTime: number;
  readonly eventIndex: number;
  readonly view: number;
  readonly #checksum: Uint8Array;
  readonly #stream: number;
  #random: (() => number) | null = null;

  constructor(entry: CommittedEntry, stream: number) {
    this.blockTime = entry.timestamp;
    this.eventIndex = entry.op;
    this.view = entry.view;
    this.#checksum = entry.checksum;
    this.#stream = stream;
  }

  /**
   * A getter handing out the PRNG itself, so `const { random } = ctx` works as it did
   * with a plain object, and no closure is made for events that never draw.
   */
  get random(): () => number {
    this.#random ??= seededFromChecksum(this.#checksum, this.#stream);
    return this.#random;
  }
}

function forbidden(operation: number): KernelReply {
  return { ok: false, code: "forbidden", message: `operation ${operation} is internal: only the replica may submit it` };
}

/** The all-zero client id of internal operations. */
export const internalClient: Uint8Array = zeroClient;
