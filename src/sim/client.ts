/**
 * A simulated client: registers a session, then issues get, put and compare-and-set on a
 * few keys, one request at a time, retrying the same request number on a timeout (to the
 * primary it was told about, or the next replica) and recording every invocation and
 * completion (ok, fail, or info = unknown) for the linearizability checker.
 * @module
 */
import { assert } from "../assert.ts";
import { operationRegister } from "../vsr/constants.ts";
import type { ClientQuery, ClientReply, ClientRequest } from "../vsr/replica_api.ts";
import type { HistoryEvent, KvCasInput, KvCasOutput } from "./lincheck/mod.ts";
import type { KvCommand } from "./kv_state_machine.ts";
import { decodeKvReply, encodeKvCommand, encodeKvQuery } from "./kv_state_machine.ts";
import type { Prng } from "./prng.ts";

/** Clients per run at most (tokens carry the client index in 6 bits). */
export const clientsMax = 64;

/** What a client hands to the network: a request or a query for replica `to`. */
export type ClientSend =
  | { readonly kind: "request"; readonly to: number; readonly request: ClientRequest }
  | { readonly kind: "query"; readonly to: number; readonly query: ClientQuery };

/** Shared by the clients of one run: the history and the counters. */
export interface ClientWorld {
  readonly replicaCount: number;
  readonly events: HistoryEvent<KvCasInput, KvCasOutput>[];
  /** A strictly increasing clock for history events (real-time order within a tick). */
  historyClock: number;
  /** Next unique value a put or cas writes. */
  valueNext: number;
  /** Requests still to be started by any client. */
  requestsLeft: number;
  requestsCompleted: number;
  requestsUnknown: number;
  requestsFailed: number;
  /** False in the liveness phase: clients retry forever. */
  mayGiveUp: boolean;
}

interface Current {
  readonly command: KvCommand;
  /** Sent as a linearizable query rather than through the log (gets only). */
  readonly asQuery: boolean;
  readonly request: number;
  readonly invokedTick: number;
  readonly seqFirst: number;
  attempts: number;
  sendAtTick: number;
  /** The next send follows a redirect (not_primary, busy), not a timeout. */
  redirected: boolean;
}

/** One simulated client. */
export class SimClient {
  private id: Uint8Array;
  private generation = 0;
  private registered = false;
  private registering = false;
  private requestNext = 1;
  private current: Current | null = null;
  private seq = 0;
  private target = 0;
  private readonly lastSeen = new Map<string, number | null>();

  constructor(
    readonly index: number,
    private readonly world: ClientWorld,
    private readonly keys: readonly string[],
    private readonly timeoutTicks: number,
    private readonly attemptsMax: number,
    private readonly prng: Prng,
  ) {
    assert(index < clientsMax, `client index ${index} < ${clientsMax}`);
    this.id = this.makeId();
    this.target = prng.int(world.replicaCount);
  }

  private makeId(): Uint8Array {
    const id = new Uint8Array(16);
    id[0] = 0xc1;
    id[1] = this.index;
    id[2] = this.generation & 0xff;
    for (let i = 3; i < 16; i++) id[i] = this.prng.int(256);
    return id;
  }

  /** The operation waiting for completion, if any (for the liveness checker). */
  outstanding(): { invokedTick: number; description: string } | null {
    if (this.current === null) return null;
    return { invokedTick: this.current.invokedTick, description: `${this.current.command.kind} ${this.current.command.key} (request ${this.current.request})` };
  }

  /** True when this client has nothing open and nothing left to do. */
  get idle(): boolean {
    return this.current === null && !this.registering;
  }

  private token(): number {
    return this.seq++ * clientsMax + this.index;
  }

  /** Advances the client by one tick; returns what it sends. */
  tick(now: number, sends: ClientSend[]): void {
    if (this.current === null && !this.registering) {
      if (this.world.requestsLeft === 0 || !this.prng.chance(0.5)) return;
      if (!this.registered) {
        this.registering = true;
        this.current = null;
        this.regSeqFirst = this.seq;
        this.regSendAt = now;
      } else {
        this.start(now);
      }
    }
    if (this.registering) {
      if (now < this.regSendAt) return;
      this.regSendAt = now + this.timeoutTicks;
      if (!this.regRedirected) this.target = (this.target + 1) % this.world.replicaCount;
      this.regRedirected = false;
      sends.push({ kind: "request", to: this.target, request: { client: this.id, request: 0, operation: operationRegister, body: new Uint8Array(0), token: this.token() } });
      return;
    }
    const current = this.current!;
    if (now < current.sendAtTick) return;
    if (this.world.mayGiveUp && current.attempts >= this.attemptsMax) {
      this.finish(now, "info");
      return;
    }
    // A timeout: try the next replica (a redirect already chose one).
    if (current.attempts > 0 && !current.redirected) this.target = (this.target + 1) % this.world.replicaCount;
    current.redirected = false;
    this.send(now, current, sends);
  }

  private regSeqFirst = 0;
  private regSendAt = 0;
  private regRedirected = false;

  private start(now: number): void {
    this.world.requestsLeft--;
    const key = this.prng.pick(this.keys);
    const dice = this.prng.int(100);
    let command: KvCommand;
    if (dice < 35) command = { kind: "put", key, value: this.world.valueNext++ };
    else if (dice < 70) command = { kind: "get", key };
    else {
      const expected = this.lastSeen.has(key) ? this.lastSeen.get(key)! : null;
      command = { kind: "cas", key, expected, value: this.world.valueNext++ };
    }
    const asQuery = command.kind === "get" && dice >= 55;
    const request = asQuery ? 0 : this.requestNext++;
    this.current = { command, asQuery, request, invokedTick: now, seqFirst: this.seq, attempts: 0, sendAtTick: now, redirected: false };
    this.world.events.push({ kind: "invoke", client: this.index, time: ++this.world.historyClock, input: toInput(command) });
  }

  private send(now: number, current: Current, sends: ClientSend[]): void {
    current.attempts++;
    current.sendAtTick = now + this.timeoutTicks;
    const token = this.token();
    if (current.asQuery) {
      sends.push({ kind: "query", to: this.target, query: { body: encodeKvQuery(current.command.key), mode: "linearizable", token } });
      return;
    }
    const { operation, body } = encodeKvCommand(current.command);
    sends.push({ kind: "request", to: this.target, request: { client: this.id, request: current.request, operation, body, token } });
  }

  /** A reply for this client arrived at tick `now`. */
  receive(now: number, reply: ClientReply): void {
    const seq = Math.floor(reply.token / clientsMax);
    if (this.registering) {
      if (seq < this.regSeqFirst) return;
      if (reply.error === undefined) {
        this.registering = false;
        this.registered = true;
        this.requestNext = 1;
        return;
      }
      this.regSendAt = this.redirect(now, reply);
      this.regRedirected = true;
      return;
    }
    const current = this.current;
    if (current === null || seq < current.seqFirst) return; // a late reply to an old request
    if (reply.error === undefined) {
      const output = this.outputOf(current.command, reply.body ?? new Uint8Array(0));
      if (output === undefined) this.finish(now, "info");
      else this.finish(now, "ok", output);
      return;
    }
    switch (reply.error) {
      case "not_primary":
      case "busy":
        current.sendAtTick = this.redirect(now, reply);
        current.redirected = true;
        return;
      case "session_evicted":
      case "session_unknown":
        // The request may have been executed before the session went: unknown.
        this.finish(now, "info");
        this.registered = false;
        this.generation++;
        this.id = this.makeId();
        return;
      case "stale_request":
        this.finish(now, "info");
        return;
      default:
        // too_large, invalid_operation, query_failed: definite, nothing was applied.
        this.finish(now, "fail");
    }
  }

  /** Follows a not_primary hint; returns the tick to send again (soon, not at once). */
  private redirect(now: number, reply: ClientReply): number {
    if (reply.error === "not_primary" && reply.primary >= 0 && reply.primary < this.world.replicaCount) {
      this.target = reply.primary;
    }
    return now + 1 + this.prng.int(reply.error === "busy" ? 20 : 5);
  }

  private outputOf(command: KvCommand, body: Uint8Array): KvCasOutput | undefined {
    const reply = decodeKvReply(command.kind, body);
    switch (reply.kind) {
      case "ok":
        return "ok";
      case "value":
        this.lastSeen.set(command.key, reply.value);
        return reply.value;
      case "swapped":
        if (reply.swapped && command.kind === "cas") this.lastSeen.set(command.key, command.value);
        return reply.swapped;
      case "error":
        return undefined;
    }
  }

  private finish(now: number, kind: "ok" | "fail" | "info", output?: KvCasOutput): void {
    assert(this.current !== null, "finish an open operation");
    const time = ++this.world.historyClock;
    if (kind === "ok") {
      this.world.events.push({ kind: "ok", client: this.index, time, output: output! });
      this.world.requestsCompleted++;
    } else if (kind === "fail") {
      this.world.events.push({ kind: "fail", client: this.index, time });
      this.world.requestsFailed++;
    } else {
      this.world.events.push({ kind: "info", client: this.index, time });
      this.world.requestsUnknown++;
    }
    void now;
    this.current = null;
  }
}

function toInput(command: KvCommand): KvCasInput {
  switch (command.kind) {
    case "put":
      return { f: "put", key: command.key, value: command.value };
    case "get":
      return { f: "get", key: command.key };
    case "cas":
      return { f: "cas", key: command.key, expected: command.expected, value: command.value };
  }
}
