/**
 * Carries out the replica's storage actions on a real data dir: entries go to the
 * journal, metadata to the superblock, checkpoints to checkpoint files.
 *
 * Ordering: the replica lists its actions in the order they must take effect. Consecutive
 * appends are handed to the journal at once, so its group commit coalesces them into one
 * write and one barrier; every other action waits for everything before it to be durable
 * and runs alone (truncate, repair, reads, superblock and checkpoint writes are rare next
 * to appends), and appends handed over after it wait for it. Completions are reported in
 * the order the actions were handed over; the appends of one journal batch complete
 * together (one promise and one timing per batch, not per entry).
 *
 * A failed write or sync is fatal: after a failed fdatasync the kernel may have dropped
 * dirty pages, so the only safe way on is to stop and recover from disk on restart.
 * @module
 */
import { assert } from "../assert.ts";
import { checksumEqual } from "../codec/checksum.ts";
import type { CheckpointStore } from "../storage/checkpoint_store.ts";
import type { DataDir } from "../storage/data_dir.ts";
import type { StorageAction, StorageResult } from "../vsr/replica_api.ts";

/** Receives the completion of one action. */
export type StorageCompletion = (id: number, result: StorageResult) => void;

/** Durations of synced writes, for the fsync histogram. */
export type StorageTimer = (kind: StorageAction["kind"], ms: number) => void;

/** The result of every action that succeeded without a read (one object, never changed). */
const resultOk: StorageResult = Object.freeze({ ok: true });

/**
 * Appends handed to the journal that share one journal batch (the journal resolves every
 * entry of a batch with the same promise): completed together, timed once.
 */
interface AppendGroup {
  readonly done: Promise<void>;
  readonly ids: number[];
  readonly startedMs: number;
}

/** Runs storage actions in order against one data dir. */
export class StorageDriver {
  readonly #dataDir: DataDir;
  readonly #checkpoints: CheckpointStore;
  readonly #done: StorageCompletion;
  readonly #fatal: (error: unknown) => void;
  readonly #timer: StorageTimer;
  readonly #now: () => number;
  /** Resolves when every action handed over so far has finished. */
  #barrier: Promise<void> = Promise.resolve();
  /** True while a serial action (or what waits for it) has not finished: appends wait for it. */
  #serialPending = false;
  /** Appends waiting for the serial action in front of them, in op order. */
  #appendsWaiting: Extract<StorageAction, { kind: "write_entry" }>[] = [];
  /**
   * The journal batch the latest appends joined. The journal writes its batches in order,
   * so once the latest has settled every earlier append has too: nothing else is kept.
   */
  #lastGroup: AppendGroup | null = null;
  /** Head op once every queued action has run (appends advance it at hand-over). */
  #queuedHead: number;
  #failed = false;

  /** A driver for `dataDir`; `fatal` is called once on the first I/O failure. */
  constructor(options: {
    readonly dataDir: DataDir;
    readonly checkpoints: CheckpointStore;
    readonly done: StorageCompletion;
    readonly fatal: (error: unknown) => void;
    readonly timer?: StorageTimer;
    readonly now?: () => number;
  }) {
    this.#dataDir = options.dataDir;
    this.#checkpoints = options.checkpoints;
    this.#done = options.done;
    this.#fatal = options.fatal;
    this.#timer = options.timer ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    this.#queuedHead = options.dataDir.journal.opHead;
  }

  /** Hands over actions in the order they must take effect. */
  run(actions: readonly StorageAction[]): void {
    for (const action of actions) {
      if (this.#failed) return;
      if (action.kind === "write_entry" && action.op === this.#queuedHead + 1) this.#append(action);
      else this.#serial(action);
    }
  }

  /** Resolves once everything handed over has finished (for a clean shutdown). */
  async drain(): Promise<void> {
    // Appends waiting behind a serial action reach the journal only once it is done: wait
    // again until a round hands nothing new over.
    for (;;) {
      const barrier = this.#barrier;
      const group = this.#lastGroup;
      await Promise.allSettled([barrier, group?.done]);
      if (this.#failed) return;
      const settled = this.#lastGroup === null || this.#lastGroup === group;
      if (barrier === this.#barrier && this.#appendsWaiting.length === 0 && settled) return;
    }
  }

  #append(action: Extract<StorageAction, { kind: "write_entry" }>): void {
    this.#queuedHead = action.op;
    if (this.#serialPending) this.#appendsWaiting.push(action);
    else this.#toJournal(action);
  }

  /** Hands one append to the journal now (nothing serial is in front of it). */
  #toJournal(action: Extract<StorageAction, { kind: "write_entry" }>): void {
    const done = this.#dataDir.journal.append(action.header, action.body);
    const group = this.#lastGroup;
    if (group !== null && group.done === done) {
      group.ids.push(action.id);
      return;
    }
    const fresh: AppendGroup = { done, ids: [action.id], startedMs: this.#now() };
    this.#lastGroup = fresh;
    done.then(
      () => {
        if (this.#lastGroup === fresh) this.#lastGroup = null;
        this.#timer(action.kind, this.#now() - fresh.startedMs);
        for (const id of fresh.ids) this.#done(id, resultOk);
      },
      (error: unknown) => this.#fail(error),
    );
  }

  #serial(action: StorageAction): void {
    // Everything handed over before this action must be done first: the serial action in
    // front (if any), then the appends queued behind it (handed to the journal once it is
    // done), then the latest journal batch.
    const waiting = this.#appendsWaiting;
    this.#appendsWaiting = [];
    const before = this.#serialPending
      ? this.#barrier.then(() => {
        for (const append of waiting) if (!this.#failed) this.#toJournal(append);
        return this.#lastGroup?.done;
      })
      : Promise.all([this.#barrier, this.#lastGroup?.done]);
    assert(this.#serialPending || waiting.length === 0, "appends wait only behind a serial action");
    if (action.kind === "truncate") this.#queuedHead = Math.min(this.#queuedHead, action.op);
    if (action.kind === "write_entry") this.#queuedHead = action.op;
    this.#serialPending = true;
    const barrier: Promise<void> = before.then(() => this.#execute(action)).then(
      (result) => {
        this.#done(action.id, result);
        if (this.#barrier !== barrier) return; // a later serial action takes what waits
        // The last serial action so far is done: the appends behind it go to the journal.
        this.#serialPending = false;
        const behind = this.#appendsWaiting;
        this.#appendsWaiting = [];
        for (const append of behind) if (!this.#failed) this.#toJournal(append);
      },
      (error: unknown) => this.#fail(error),
    );
    this.#barrier = barrier;
  }

  async #execute(action: StorageAction): Promise<StorageResult> {
    const journal = this.#dataDir.journal;
    const started = this.#now();
    switch (action.kind) {
      case "write_entry": {
        // Not the next op: the replica replaces an entry it already holds. Keep it when it
        // is the same entry (same checksum), otherwise discard from there on and append.
        if (action.op <= journal.opHead) {
          const held = await journal.headerAt(action.op);
          if (held !== null && checksumEqual(held.subarray(0, 16), action.header.subarray(0, 16))) {
            await journal.truncateAfter(action.op);
            return resultOk;
          }
          await journal.truncateAfter(action.op - 1);
        }
        if (action.op > journal.opHead + 1) {
          // After a state transfer the log continues from the checkpoint: the journal
          // restarts at this op, chained from the parent the entry names.
          await journal.resetAfterCheckpoint(action.op - 1, action.header.slice(32, 48));
        }
        assert(action.op === journal.opHead + 1, `write_entry op ${action.op} leaves a gap after ${journal.opHead}`);
        await journal.append(action.header, action.body);
        this.#timer(action.kind, this.#now() - started);
        return resultOk;
      }
      case "repair_entry":
        await journal.repair(action.op, action.header, action.body);
        return resultOk;
      case "truncate":
        await journal.truncateAfter(action.op);
        return resultOk;
      case "read_entry": {
        if (action.op < journal.opMin || action.op > journal.opHead) return { ok: true, entry: null };
        const read = await journal.read(action.op);
        return { ok: true, entry: read.ok ? { header: read.header, body: read.body } : null };
      }
      case "write_superblock": {
        const superblock = this.#dataDir.superblock;
        await superblock.write({ ...superblock.state, ...action.superblock });
        this.#timer(action.kind, this.#now() - started);
        return resultOk;
      }
      case "write_checkpoint":
        await this.#checkpoints.write(action.op, action.checkpoint);
        this.#timer(action.kind, this.#now() - started);
        return resultOk;
      case "release":
        await journal.releaseBefore(action.op);
        return resultOk;
    }
  }

  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#fatal(error);
  }
}
