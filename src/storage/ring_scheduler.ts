/**
 * Runs chains of io_uring entries for the uring Disk backend: admits a chain when the ring
 * has room (else queues it, bounded), submits it in one system call, and reaps completions
 * without holding the event loop longer than a short, bounded window per turn.
 *
 * How completions are awaited: for up to `pollMicros` after the last submission or
 * completion, by a blocking wait in the kernel (io_uring_enter with a timeout, through
 * {@link Ring.waitMicros}) that ends the moment a completion is posted or the window
 * closes, at most once per event-loop turn (between two such waits the loop serves
 * everything else, and within one turn it falls back to looking at the completion queue
 * once per `setImmediate` hop); after the window, by waiting on the ring's eventfd. The
 * eventfd is read through the runtime's thread pool (bun:ffi and koffi have no other
 * non-blocking wait): the kernel wakes a pool thread, which wakes the event loop, and that
 * costs about as much again as a fast fdatasync (measured on Node: ring write+fdatasync
 * awaited through the eventfd ~0.55 × a blocking pwrite + fdatasync). The blocking wait
 * replaced spinning on the completion queue: a spin took the CPU that the io-wq worker
 * running the fdatasync needed on a 2-core machine, and the wait costs no CPU while it
 * waits. It holds the event loop for at most the window (a fast flush: 0.2–0.4 ms on the
 * SSDs measured), once a turn; `pollMicros` 0 turns it off (the replica's default, see
 * `ioPollMicros`), leaving only the eventfd. A kernel without timed waits (before 5.11)
 * falls back to looking once per turn.
 *
 * The window adapts to how long completions take (a moving average of the time from
 * submission to completion): twice that average (at least 250 µs), at most `pollMicros`,
 * and no waiting on the event-loop thread at all while it is above
 * {@link pollLatencyMicrosMax}. On a machine whose CPUs
 * are oversubscribed, completions are slow and the looking itself takes CPU time from the
 * io-wq worker and the file system's journal thread that the flush waits for: measured
 * with a load average of 17–22 on 2 cores, one appender made 229 appends/s polling 2 ms
 * and 1,185/s waiting on the eventfd alone (raw write+fdatasync 104–1,976/s in the same
 * run). On an idle machine a flush takes 0.2–0.4 ms and waiting on the loop wins.
 * @module
 */
import { assert } from "../assert.ts";
import type { Ring } from "../../ffi/native_io.ts";

/** One entry of a chain. `bytes` must lie in native memory that lives until the chain settles. */
export type RingEntry =
  | { readonly kind: "write"; readonly fd: number; readonly bytes: Uint8Array; readonly position: number }
  | { readonly kind: "read"; readonly fd: number; readonly bytes: Uint8Array; readonly position: number }
  | { readonly kind: "fsync"; readonly fd: number; readonly dataOnly: boolean };

/** Chains waiting for room in the ring, at most (callers beyond it are a bug: unbounded fan-out). */
export const chainsWaitingMax = 65536;

/** Entries one chain may hold; a write+fsync is 2. */
export const chainEntriesMax = 16;

/**
 * Default time the reaper waits on the event-loop thread (blocking in the kernel, or
 * polling) before waiting on the eventfd: a few fast fdatasyncs (0.2–0.4 ms on the SSDs
 * measured), so most flushes are reaped without a thread-pool hop.
 */
export const pollMicrosDefault = 2000;

/** Largest polling window accepted (µs). */
export const pollMicrosMax = 100_000;

/**
 * Above this average completion time (µs) the reaper does not poll: completions that slow
 * mean a busy disk or oversubscribed CPUs, where polling costs more than the eventfd's
 * extra wake-up.
 */
export const pollLatencyMicrosMax = 1000;

/** Shortest polling window (µs) while polling is on: a fast fdatasync, 0.2–0.4 ms. */
export const pollWindowMicrosMin = 250;

/** Weight of the newest completion time in the moving average (1/8). */
const latencyWeight = 0.125;

/** Options for {@link RingScheduler}. */
export interface RingSchedulerOptions {
  /**
   * Wait on the event-loop thread (a blocking wait in the kernel, once a turn, else
   * polling) this long (µs) before waiting on the eventfd; 0: never.
   */
  readonly pollMicros?: number;
}

const nowMicros = (): number => performance.now() * 1000;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Chain {
  readonly entries: readonly RingEntry[];
  /** When it was submitted (µs), for the completion-time average. */
  submittedAt: number;
  readonly results: number[];
  pending: number;
  readonly resolve: (results: number[]) => void;
  readonly reject: (error: unknown) => void;
}

/** Schedules linked chains on one ring. */
export class RingScheduler {
  readonly #ring: Ring;
  readonly #pollMicros: number;
  /** When the reaper last saw progress (a submission or a completion), in µs. */
  #progressAt = 0;
  /** Moving average of the time from a chain's submission to its completion (µs). */
  #latencyMicros = 300;
  /** Tag → the chain and the index of its entry. Holds exactly the in-flight entries. */
  readonly #inflight = new Map<number, { chain: Chain; index: number }>();
  readonly #waiting: Chain[] = [];
  #tagNext = 0;
  #chainsSubmitted = 0;
  #reaping = false;
  #failure: unknown = null;
  /** False once the ring said it has no timed wait (then the window is spent polling). */
  #canBlock = true;
  /** True from a blocking wait until the event loop's next turn: at most one wait a turn. */
  #blockedThisTurn = false;

  constructor(ring: Ring, options: RingSchedulerOptions = {}) {
    const pollMicros = options.pollMicros ?? pollMicrosDefault;
    assert(Number.isSafeInteger(pollMicros) && pollMicros >= 0 && pollMicros <= pollMicrosMax, `pollMicros ${pollMicros} out of range`);
    this.#ring = ring;
    this.#pollMicros = pollMicros;
  }

  /**
   * How long (µs) the reaper looks at the completion queue after the last progress before
   * it waits on the eventfd: twice the average completion time (at least
   * {@link pollWindowMicrosMin}), at most `pollMicros`; 0
   * while that average is above {@link pollLatencyMicrosMax}.
   */
  get pollWindowMicros(): number {
    if (this.#pollMicros === 0 || this.#latencyMicros > pollLatencyMicrosMax) return 0;
    return Math.min(this.#pollMicros, Math.max(pollWindowMicrosMin, 2 * this.#latencyMicros));
  }

  /** Moving average of the time from submission to completion of a chain (µs). */
  get completionMicros(): number {
    return this.#latencyMicros;
  }

  /** Chains submitted since the scheduler was made (for tests and benchmarks). */
  get chainsSubmitted(): number {
    return this.#chainsSubmitted;
  }

  /** Entries submitted and not yet completed. */
  get inflightCount(): number {
    return this.#inflight.size;
  }

  /**
   * Runs `entries` linked in order (each runs only if the one before completed in full)
   * and resolves with each entry's result: a byte count, 0, or -errno (-ECANCELED for an
   * entry skipped because an earlier one failed or came up short).
   */
  run(entries: readonly RingEntry[]): Promise<number[]> {
    assert(entries.length >= 1 && entries.length <= chainEntriesMax, `chain of ${entries.length} entries`);
    assert(entries.length <= this.#ring.entries, "chain larger than the ring");
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const chain: Chain = { entries, submittedAt: 0, results: new Array<number>(entries.length).fill(0), pending: entries.length, resolve, reject };
      if (this.#waiting.length === 0 && this.#fits(chain)) {
        this.#submit(chain);
      } else {
        assert(this.#waiting.length < chainsWaitingMax, "too many chains waiting for the ring");
        this.#waiting.push(chain);
      }
    });
  }

  /** Resolves once nothing is in flight or waiting. */
  async drain(): Promise<void> {
    while (this.#inflight.size > 0 || this.#waiting.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  #fits(chain: Chain): boolean {
    // At most `entries` in flight: the completion queue (twice as large) can never overflow.
    return this.#inflight.size + chain.entries.length <= this.#ring.entries;
  }

  #tag(): number {
    for (;;) {
      const tag = this.#tagNext;
      this.#tagNext = (this.#tagNext + 1) & 0x7fffffff;
      if (!this.#inflight.has(tag)) return tag;
    }
  }

  #submit(chain: Chain): void {
    assert(this.#ring.sqSpace() >= chain.entries.length, "submission queue has no room for an admitted chain");
    const last = chain.entries.length - 1;
    chain.entries.forEach((entry, index) => {
      const tag = this.#tag();
      const link = index < last;
      if (entry.kind === "fsync") this.#ring.prepFsync(entry.fd, entry.dataOnly, tag, link);
      else if (entry.kind === "write") this.#ring.prepWrite(entry.fd, entry.bytes, entry.position, tag, link);
      else this.#ring.prepRead(entry.fd, entry.bytes, entry.position, tag, link);
      this.#inflight.set(tag, { chain, index });
    });
    const submitted = this.#ring.submit();
    assert(submitted === chain.entries.length, `submitted ${submitted} of ${chain.entries.length} entries`);
    this.#chainsSubmitted++;
    chain.submittedAt = nowMicros();
    this.#progressAt = chain.submittedAt;
    if (!this.#reaping) void this.#reap();
  }

  /** The one reaping loop: waits on the eventfd while anything is in flight. */
  async #reap(): Promise<void> {
    this.#reaping = true;
    try {
      while (this.#inflight.size > 0) {
        // The eventfd only signals completions posted after the last wait: drain first.
        const ready = this.#ring.reap(this.#ring.entries * 2);
        if (ready.length === 0) {
          const waitedMicros = nowMicros() - this.#progressAt;
          const windowMicros = this.pollWindowMicros;
          if (waitedMicros >= windowMicros) await this.#ring.waitCompletions();
          else if (this.#canBlock && !this.#blockedThisTurn) {
            // Sleep in the kernel until the completion (or the window's end) instead of
            // spinning; then let the event loop take a turn before the next such wait.
            this.#blockedThisTurn = true;
            setImmediate(() => (this.#blockedThisTurn = false));
            if (this.#ring.waitMicros(Math.ceil(windowMicros - waitedMicros)) === null) this.#canBlock = false;
          } else await nextTurn();
          continue;
        }
        const now = nowMicros();
        this.#progressAt = now;
        for (const completion of ready) {
          const slot = this.#inflight.get(completion.tag);
          assert(slot !== undefined, `completion for unknown tag ${completion.tag}`);
          this.#inflight.delete(completion.tag);
          slot.chain.results[slot.index] = completion.result;
          slot.chain.pending -= 1;
          if (slot.chain.pending === 0) {
            this.#latencyMicros += (now - slot.chain.submittedAt - this.#latencyMicros) * latencyWeight;
            slot.chain.resolve(slot.chain.results);
          }
        }
        while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!)) this.#submit(this.#waiting.shift()!);
      }
    } catch (error) {
      // The eventfd wait itself failed: the ring is unusable, fail everything on it.
      this.#failure = error;
      for (const { chain } of this.#inflight.values()) chain.reject(error);
      for (const chain of this.#waiting) chain.reject(error);
      this.#inflight.clear();
      this.#waiting.length = 0;
    } finally {
      this.#reaping = false;
    }
  }
}
