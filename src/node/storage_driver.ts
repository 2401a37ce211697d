/**
 * Carries out the replica's storage actions on a real data dir: entries go to the
 * journal, metadata to the superblock, checkpoints to checkpoint files.
 *
 * Ordering: the replica lists its actions in the order they must take effect. Consecutive
 * appends are handed to the journal at once, so its group commit coalesces them into one
 * write and one barrier; every other action waits for everything before it to be durable
 * and runs alone (truncate, repair, reads, superblock and checkpoint writes are rare next
 * to appends). Completions are reported as each action finishes.
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
  /** Appends handed to the journal since the last barrier. */
  #appends: Promise<void>[] = [];
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
    await Promise.allSettled([this.#barrier, ...this.#appends]);
  }

  #append(action: Extract<StorageAction, { kind: "write_entry" }>): void {
    this.#queuedHead = action.op;
    const journal = this.#dataDir.journal;
    const started = this.#now();
    const appended = this.#barrier.then(() => journal.append(action.header, action.body)).then(
      () => {
        this.#timer(action.kind, this.#now() - started);
        this.#done(action.id, { ok: true });
      },
      (error: unknown) => this.#fail(error),
    );
    this.#appends.push(appended);
  }

  #serial(action: StorageAction): void {
    const before = Promise.all([this.#barrier, ...this.#appends]);
    this.#appends = [];
    if (action.kind === "truncate") this.#queuedHead = Math.min(this.#queuedHead, action.op);
    if (action.kind === "write_entry") this.#queuedHead = action.op;
    this.#barrier = before.then(() => this.#execute(action)).then(
      (result) => this.#done(action.id, result),
      (error: unknown) => this.#fail(error),
    );
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
            return { ok: true };
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
        return { ok: true };
      }
      case "repair_entry":
        await journal.repair(action.op, action.header, action.body);
        return { ok: true };
      case "truncate":
        await journal.truncateAfter(action.op);
        return { ok: true };
      case "read_entry": {
        if (action.op < journal.opMin || action.op > journal.opHead) return { ok: true, entry: null };
        const read = await journal.read(action.op);
        return { ok: true, entry: read.ok ? { header: read.header, body: read.body } : null };
      }
      case "write_superblock": {
        const superblock = this.#dataDir.superblock;
        await superblock.write({ ...superblock.state, ...action.superblock });
        this.#timer(action.kind, this.#now() - started);
        return { ok: true };
      }
      case "write_checkpoint":
        await this.#checkpoints.write(action.op, action.checkpoint);
        this.#timer(action.kind, this.#now() - started);
        return { ok: true };
      case "release":
        await journal.releaseBefore(action.op);
        return { ok: true };
    }
  }

  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#fatal(error);
  }
}
