/**
 * Linearizable reads at the primary, without going through the log: a query is answered
 * once (1) a quorum round (`ping`/`pong`) that started after the query arrived has
 * completed, which proves no newer view had a quorum at that moment, so this replica was
 * still the primary, and (2) the primary has applied the commit the query must observe.
 * Pure bookkeeping: the replica sends the pings and runs the queries.
 * @module
 */
import { assert } from "../assert.ts";

/** A query waiting for its quorum round and for the commit it must see. */
export interface PendingQuery {
  readonly token: number;
  readonly body: Uint8Array;
  /** The primary must have applied at least this op (its commit when the query arrived). */
  readonly commitNeeded: number;
  /** The round whose quorum confirms primacy after the query arrived. */
  readonly nonce: number;
}

/** The primary's read rounds and the queries waiting on them. */
export class ReadRounds {
  #queries: PendingQuery[] = [];
  #nonce = 0;
  #outstanding: number | null = null;
  readonly #pongs = new Set<number>();
  #confirmed = 0;
  #ticks = 0;

  /**
   * @param replica this replica (counts towards its own rounds)
   * @param quorum replicas a round needs, this one included
   * @param queriesMax queries that may wait at once
   */
  constructor(readonly replica: number, readonly quorum: number, readonly queriesMax: number) {
    assert(quorum >= 1 && queriesMax >= 1, "a read round needs a quorum and room for queries");
  }

  /** Queries waiting. */
  get pending(): number {
    return this.#queries.length;
  }

  /** Whether another query fits (the bound on waiting queries). */
  get hasRoom(): boolean {
    return this.#queries.length < this.queriesMax;
  }

  /**
   * Adds a query. Returns the nonces of rounds to broadcast now: a round already in
   * flight started before this query arrived, so the query needs the next one.
   */
  add(token: number, body: Uint8Array, commitNeeded: number): number[] {
    assert(this.hasRoom, "read queries are bounded");
    const pings: number[] = [];
    const nonce = this.#outstanding === null ? this.#start(pings) : this.#outstanding + 1;
    this.#queries.push({ token, body, commitNeeded, nonce });
    return pings;
  }

  /** A pong for round `nonce` from `replica`; returns the nonces of rounds to broadcast now. */
  pong(replica: number, nonce: number): number[] {
    const pings: number[] = [];
    if (nonce !== this.#outstanding) return pings;
    this.#pongs.add(replica);
    this.#check(pings);
    return pings;
  }

  /** One tick; returns the round to broadcast again after `retryTicks` without a quorum. */
  tick(retryTicks: number): number | null {
    if (this.#outstanding === null || ++this.#ticks < retryTicks) return null;
    this.#ticks = 0;
    return this.#outstanding;
  }

  /** Removes and returns the queries that may be answered with `commitMin` applied. */
  takeAnswerable(commitMin: number): PendingQuery[] {
    if (this.#queries.length === 0) return [];
    const ready: PendingQuery[] = [];
    const waiting: PendingQuery[] = [];
    for (const q of this.#queries) {
      if (q.nonce <= this.#confirmed && commitMin >= q.commitNeeded) ready.push(q);
      else waiting.push(q);
    }
    this.#queries = waiting;
    return ready;
  }

  /** Leaves primacy: returns every waiting query (to be refused) and forgets the round. */
  abandon(): PendingQuery[] {
    const queries = this.#queries;
    this.#queries = [];
    this.#outstanding = null;
    this.#pongs.clear();
    return queries;
  }

  #start(pings: number[]): number {
    this.#nonce++;
    this.#outstanding = this.#nonce;
    this.#ticks = 0;
    this.#pongs.clear();
    this.#pongs.add(this.replica);
    pings.push(this.#nonce);
    const nonce = this.#nonce;
    this.#check(pings);
    return nonce;
  }

  #check(pings: number[]): void {
    if (this.#outstanding === null || this.#pongs.size < this.quorum) return;
    this.#confirmed = this.#outstanding;
    this.#outstanding = null;
    if (this.#queries.some((q) => q.nonce > this.#confirmed)) this.#start(pings);
  }
}
