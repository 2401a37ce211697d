/**
 * The simulated network: virtual-time delivery between nodes (replicas and clients are
 * both nodes, numbered 0..nodeCount-1) with a delay distribution, loss, duplication,
 * replay of old messages, reordering (independent delays), symmetric and one-way
 * partitions, and a bound on the messages in flight on each link.
 *
 * A link from → to is "blocked" by a partition; a blocked link drops a message both when
 * it is sent and when it would be delivered (a partition that starts while a message is
 * in flight cuts it off too). One-way partitions block only one direction.
 * @module
 */
import { assert } from "../assert.ts";
import { TimedHeap } from "./heap.ts";
import type { Prng } from "./prng.ts";

/** Network fault and delay parameters (picked per seed by the swarm, see swarm.ts). */
export interface NetworkOptions {
  /** Mean delivery delay in ticks (exponential), at least one tick. */
  readonly delayMeanTicks: number;
  /** Largest delivery delay in ticks. */
  readonly delayMaxTicks: number;
  /** Probability that a message is lost. */
  readonly lossProbability: number;
  /** Probability that a message is delivered twice (independent delays). */
  readonly duplicateProbability: number;
  /** Probability, per message sent, that an old message on the same link is delivered again. */
  readonly replayProbability: number;
  /** Messages in flight on one link before further ones are dropped. */
  readonly linkInFlightMax: number;
}

/** Old messages remembered per link for replay. */
export const replayBufferPerLinkMax = 8;

/** A message in flight. */
export interface Packet<P> {
  readonly at: number;
  readonly seq: number;
  readonly from: number;
  readonly to: number;
  readonly payload: P;
}

/** Counters of what the network did. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  partitioned: number;
  overflowed: number;
  duplicated: number;
  replayed: number;
  droppedDown: number;
}

/** The network between `nodeCount` nodes, carrying payloads of type P. */
export class Network<P> {
  private readonly queue: TimedHeap<Packet<P>>;
  private readonly blocked: Uint8Array;
  private readonly inFlight: Int32Array;
  private readonly replayBuffers: (Packet<P>[] | undefined)[];
  private seq = 0;
  /** What happened so far. */
  readonly stats: NetworkStats = {
    sent: 0, delivered: 0, lost: 0, partitioned: 0, overflowed: 0, duplicated: 0, replayed: 0, droppedDown: 0,
  };
  /** Options in force; the liveness phase swaps in calm ones. */
  options: NetworkOptions;

  constructor(readonly nodeCount: number, options: NetworkOptions, private readonly prng: Prng) {
    assert(nodeCount >= 1 && nodeCount <= 256, `node count ${nodeCount}`);
    assert(options.delayMeanTicks >= 1 && options.delayMaxTicks >= options.delayMeanTicks, "delays");
    assert(options.linkInFlightMax >= 1, "link bound");
    this.options = options;
    this.blocked = new Uint8Array(nodeCount * nodeCount);
    this.inFlight = new Int32Array(nodeCount * nodeCount);
    this.replayBuffers = new Array(nodeCount * nodeCount);
    // Duplicates and replays can at most double what the link bounds allow.
    this.queue = new TimedHeap(nodeCount * nodeCount * options.linkInFlightMax * 2 + 16);
  }

  /** Messages in flight over all links. */
  get inFlightCount(): number {
    return this.queue.size;
  }

  /** True when messages from `from` to `to` are currently cut off. */
  isBlocked(from: number, to: number): boolean {
    return this.blocked[from * this.nodeCount + to] === 1;
  }

  /** Cuts (or restores) the one-way link from → to. */
  setBlocked(from: number, to: number, blocked: boolean): void {
    assert(from !== to, "a node always reaches itself");
    this.blocked[from * this.nodeCount + to] = blocked ? 1 : 0;
  }

  /** Symmetric partition: nodes in `side` and nodes of `among` outside it cannot talk. */
  partition(side: readonly number[], among: readonly number[]): void {
    for (const a of side) {
      for (const b of among) {
        if (side.includes(b)) continue;
        this.setBlocked(a, b, true);
        this.setBlocked(b, a, true);
      }
    }
  }

  /** Heals every partition. */
  heal(): void {
    this.blocked.fill(0);
  }

  /** Sends a message at tick `now`; it may be lost, duplicated, delayed or cause a replay. */
  send(now: number, from: number, to: number, payload: P): void {
    assert(from >= 0 && from < this.nodeCount && to >= 0 && to < this.nodeCount, `link ${from}→${to}`);
    this.stats.sent++;
    if (this.isBlocked(from, to)) {
      this.stats.partitioned++;
      return;
    }
    if (this.prng.chance(this.options.lossProbability)) {
      this.stats.lost++;
      return;
    }
    this.enqueue(now, from, to, payload);
    if (this.prng.chance(this.options.duplicateProbability)) {
      this.stats.duplicated++;
      this.enqueue(now, from, to, payload);
    }
    if (this.prng.chance(this.options.replayProbability)) {
      const buffer = this.replayBuffers[from * this.nodeCount + to];
      if (buffer !== undefined && buffer.length > 0) {
        this.stats.replayed++;
        this.enqueue(now, from, to, this.prng.pick(buffer).payload);
      }
    }
  }

  private enqueue(now: number, from: number, to: number, payload: P): void {
    const link = from * this.nodeCount + to;
    if (this.inFlight[link]! >= this.options.linkInFlightMax) {
      this.stats.overflowed++;
      return;
    }
    this.inFlight[link]!++;
    const delay = 1 + this.prng.exponential(this.options.delayMeanTicks - 1, this.options.delayMaxTicks - 1);
    this.queue.push({ at: now + delay, seq: this.seq++, from, to, payload });
  }

  /**
   * Removes and returns the next message due at or before `now`, or undefined. Messages
   * on links blocked meanwhile are dropped here (counted as partitioned).
   */
  next(now: number): Packet<P> | undefined {
    for (;;) {
      const top = this.queue.peek();
      if (top === undefined || top.at > now) return undefined;
      this.queue.pop();
      const link = top.from * this.nodeCount + top.to;
      this.inFlight[link]!--;
      if (this.blocked[link] === 1) {
        this.stats.partitioned++;
        continue;
      }
      this.stats.delivered++;
      if (this.options.replayProbability > 0) {
        let buffer = this.replayBuffers[link];
        if (buffer === undefined) this.replayBuffers[link] = buffer = [];
        if (buffer.length >= replayBufferPerLinkMax) buffer[this.prng.int(replayBufferPerLinkMax)] = top;
        else buffer.push(top);
      }
      return top;
    }
  }

  /** Drops every message in flight to `node` (it crashed: its sockets are gone). */
  dropTo(node: number): void {
    const removed = this.queue.removeWhere((packet) => {
      if (packet.to !== node) return false;
      this.inFlight[packet.from * this.nodeCount + packet.to]!--;
      return true;
    });
    // Replay buffers are kept: an old message reaching a restarted node is a fault worth having.
    this.stats.droppedDown += removed;
  }
}
