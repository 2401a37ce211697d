/**
 * A simulated bank client: registers a session, then submits bank events (configure,
 * open, deposit, transfer) as kernel events (operation 16), one at a time, retrying the
 * same request number on a timeout (next replica) or a redirect (`not_primary`, `busy`),
 * like the kv client. It keeps no history: the bank workload checks the committed log,
 * the effects and the balances instead of a linearizability model.
 * @module
 */
import { decodeReply, encodeEvent, operationEvent } from "../app/wire.ts";
import { assert } from "../assert.ts";
import { operationRegister } from "../vsr/constants.ts";
import type { ClientReply } from "../vsr/replica_api.ts";
import type { ClientSend, ClientWorld } from "./client.ts";
import { clientsMax } from "./client.ts";
import type { Prng } from "./prng.ts";
import type { SimClientLike } from "./simulator.ts";

/** The webhook URL the bank is configured with; the simulated sink receives it. */
export const bankSinkUrl = "http://sink.sim/bank-transfers";
/** Monthly fee and its interval in the simulated bank (short, so the schedule fires). */
export const bankMonthlyFee = 1;
export const bankFeeIntervalMs = 5_000;

/** The bank events a simulated client sends (examples/bank.ts's vocabulary). */
export type SimBankEvent =
  | { readonly type: "configure"; readonly webhookUrl: string; readonly monthlyFee: number; readonly feeIntervalMs: number }
  | { readonly type: "open"; readonly account: string }
  | { readonly type: "deposit"; readonly account: string; readonly amount: number }
  | { readonly type: "transfer"; readonly from: string; readonly to: string; readonly amount: number };

/** Counters shared by the bank clients of one run. */
export interface BankClientCounters {
  replied: number;
  rejected: number;
}

interface Current {
  readonly event: SimBankEvent;
  readonly request: number;
  readonly invokedTick: number;
  readonly seqFirst: number;
  attempts: number;
  sendAtTick: number;
  redirected: boolean;
}

/** One simulated bank client. */
export class BankClient implements SimClientLike {
  private id: Uint8Array;
  private generation = 0;
  private registered = false;
  private registering = false;
  private regSeqFirst = 0;
  private regSendAt = 0;
  private regRedirected = false;
  private requestNext = 1;
  private current: Current | null = null;
  private seq = 0;
  private target: number;
  private configured = false;

  constructor(
    readonly index: number,
    private readonly world: ClientWorld,
    private readonly accounts: readonly string[],
    private readonly timeoutTicks: number,
    private readonly attemptsMax: number,
    private readonly prng: Prng,
    private readonly counters: BankClientCounters,
  ) {
    assert(index < clientsMax, `client index ${index} < ${clientsMax}`);
    assert(accounts.length >= 2, "a bank run needs two accounts to transfer between");
    this.id = this.makeId();
    this.target = prng.int(world.replicaCount);
  }

  private makeId(): Uint8Array {
    const id = new Uint8Array(16);
    id[0] = 0xb4;
    id[1] = this.index;
    id[2] = this.generation & 0xff;
    for (let i = 3; i < 16; i++) id[i] = this.prng.int(256);
    return id;
  }

  /** True when nothing is open and nothing is left to do. */
  get idle(): boolean {
    return this.current === null && !this.registering;
  }

  /** The event waiting for its reply, if any (for the liveness checker). */
  outstanding(): { invokedTick: number; description: string } | null {
    if (this.current === null) return null;
    return { invokedTick: this.current.invokedTick, description: `${this.current.event.type} (request ${this.current.request})` };
  }

  private token(): number {
    return this.seq++ * clientsMax + this.index;
  }

  /** Advances the client by one tick. */
  tick(now: number, sends: ClientSend[]): void {
    if (this.current === null && !this.registering) {
      if (this.world.requestsLeft === 0 || !this.prng.chance(0.5)) return;
      if (!this.registered) {
        this.registering = true;
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
      this.finish("info");
      return;
    }
    if (current.attempts > 0 && !current.redirected) this.target = (this.target + 1) % this.world.replicaCount;
    current.redirected = false;
    current.attempts++;
    current.sendAtTick = now + this.timeoutTicks;
    sends.push({
      kind: "request",
      to: this.target,
      request: { client: this.id, request: current.request, operation: operationEvent, body: encodeEvent(current.event), token: this.token() },
    });
  }

  private start(now: number): void {
    this.world.requestsLeft--;
    const event = this.pickEvent();
    this.current = { event, request: this.requestNext++, invokedTick: now, seqFirst: this.seq, attempts: 0, sendAtTick: now, redirected: false };
  }

  /** Client 0 configures the bank first; then opens, deposits and (mostly) transfers. */
  private pickEvent(): SimBankEvent {
    const account = () => this.prng.pick(this.accounts);
    if (!this.configured && this.index === 0) {
      this.configured = true;
      return { type: "configure", webhookUrl: bankSinkUrl, monthlyFee: bankMonthlyFee, feeIntervalMs: bankFeeIntervalMs };
    }
    const dice = this.prng.int(100);
    if (dice < 2) return { type: "configure", webhookUrl: bankSinkUrl, monthlyFee: bankMonthlyFee, feeIntervalMs: bankFeeIntervalMs };
    if (dice < 12) return { type: "open", account: account() };
    if (dice < 40) return { type: "deposit", account: account(), amount: 1 + this.prng.int(100) };
    const from = account();
    let to = account();
    if (to === from) to = this.accounts[(this.accounts.indexOf(from) + 1) % this.accounts.length]!;
    return { type: "transfer", from, to, amount: 1 + this.prng.int(60) };
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
    if (current === null || seq < current.seqFirst) return;
    if (reply.error === undefined) {
      this.counters.replied++;
      const decoded = decodeReply(reply.body ?? new Uint8Array(0));
      if (!decoded.ok) this.counters.rejected++;
      this.finish("ok");
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
        this.finish("info");
        this.registered = false;
        this.generation++;
        this.id = this.makeId();
        return;
      case "stale_request":
        this.finish("info");
        return;
      default:
        this.finish("fail");
    }
  }

  private redirect(now: number, reply: ClientReply): number {
    if (reply.error === "not_primary" && reply.primary >= 0 && reply.primary < this.world.replicaCount) this.target = reply.primary;
    return now + 1 + this.prng.int(reply.error === "busy" ? 20 : 5);
  }

  private finish(kind: "ok" | "fail" | "info"): void {
    if (kind === "ok") this.world.requestsCompleted++;
    else if (kind === "fail") this.world.requestsFailed++;
    else this.world.requestsUnknown++;
    this.current = null;
  }
}
