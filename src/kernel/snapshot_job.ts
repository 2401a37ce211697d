/**
 * A snapshot taken at one op and encoded over several event-loop turns, while the
 * executor goes on applying later ops: {@link Executor.beginSnapshot} returns one.
 *
 * Copy on write: the job is the state guard's write watch during every apply until it is
 * done. Before apply first writes a container, the job keeps the container's pre-image
 * (snapshot_preimage.ts), and the encoder (snapshot_encoder.ts) writes each container
 * from its pre-image when it has one, else as it is (unwritten since the op). So the bytes
 * are those `snapshot()` would have returned at the op, on every replica, however the
 * steps fall between the applies.
 *
 * Writes the guard cannot see are made impossible rather than guessed at: the moment an
 * apply is handed a state object raw (a Uint8Array, a frozen object, an object Map key,
 * a method bound to a raw Map), the job finishes encoding there and then, before apply
 * can write into it (one pause, as a synchronous snapshot would have). Shapes the
 * incremental encoder leaves to the reference encoder are encoded at once from a copy of
 * the state as it was at the op (`materialize`).
 * @module
 */
import { encodeValue } from "../app/value_codec.ts";
import { assert } from "../assert.ts";
import { SnapshotEncoder } from "./snapshot_encoder.ts";
import type { Preimage } from "./snapshot_preimage.ts";
import { absent, capturePreimage, entriesAtOp, materialize } from "./snapshot_preimage.ts";
import type { WriteWatch } from "./state_guard.ts";
import { unwatchDescriptors, watchDescriptors } from "./state_guard.ts";

/** A snapshot being encoded; see the module comment. */
export interface SnapshotJob {
  /** The op the snapshot covers (the executor's op when it began). */
  readonly op: number;
  /** True once the bytes are complete (then {@link result} returns them). */
  readonly done: boolean;
  /**
   * Encodes about `budgetBytes` more (at least one entry; small values are never split)
   * and returns {@link done}. Throws what `snapshot()` would have thrown for the state (an
   * unencodable value), and after {@link abort}.
   */
  step(budgetBytes: number): boolean;
  /** The snapshot bytes: `snapshot()` at {@link op}, byte for byte. Only once done. */
  result(): Uint8Array;
  /** Stops encoding and releases the pre-images; the job cannot be stepped again. */
  abort(): void;
}

/** The kernel's part of a snapshot, copied when the job began (the app part stays live). */
export interface SnapshotFields {
  readonly format: number;
  readonly schemaVersion: number;
  readonly op: number;
  readonly timestampMs: number;
  /** The app image: `app.snapshot`'s bytes, or the state itself, encoded in place. */
  readonly app: unknown;
  readonly outbox: unknown[];
  readonly channels: unknown[];
  readonly schedule: unknown[];
  readonly counters: object;
}

type JobStatus = "running" | "done" | "failed" | "aborted";

/** The executor's side of a job: see {@link SnapshotJob}. */
export class IncrementalSnapshot implements SnapshotJob, WriteWatch {
  readonly op: number;
  readonly #preimages = new Map<object, Preimage>();
  #encoder: SnapshotEncoder | null;
  #fields: SnapshotFields | null;
  /** The live app state, when it is encoded in place (for the fallback). */
  readonly #appState: unknown;
  readonly #appInPlace: boolean;
  readonly #onEnd: (job: IncrementalSnapshot, bytes: Uint8Array | null) => void;
  #status: JobStatus = "running";
  #bytes: Uint8Array | null = null;
  #error: unknown = null;

  /**
   * `fields.app` is a `NestedEncoding` of the live state when `appInPlace`, else the app's
   * own bytes. `onEnd` is called once, when the job completes, fails or is aborted.
   * `reuse`: an encoder buffer nobody reads any more, encoded into when large enough.
   */
  constructor(
    fields: SnapshotFields,
    appState: unknown,
    appInPlace: boolean,
    sizeHint: number,
    onEnd: (job: IncrementalSnapshot, bytes: Uint8Array | null) => void,
    reuse: Uint8Array | null = null,
  ) {
    assert(Number.isSafeInteger(fields.op) && fields.op >= 0, "a snapshot covers an op");
    this.op = fields.op;
    this.#fields = fields;
    this.#appState = appState;
    this.#appInPlace = appInPlace;
    this.#onEnd = onEnd;
    this.#encoder = new SnapshotEncoder(fields, this.#preimages, sizeHint, reuse);
    watchDescriptors();
  }

  /** True when the app state is encoded in place, so its writes must be watched. */
  get watchesState(): boolean {
    return this.#appInPlace && this.#status === "running";
  }

  get done(): boolean {
    return this.#status === "done";
  }

  /** Containers whose pre-image is kept (for tests and status). */
  get preimageCount(): number {
    return this.#preimages.size;
  }

  beforeWrite(target: object): void {
    if (this.#status !== "running") return;
    const preimage = this.#preimages.get(target);
    if (preimage === undefined) this.#preimages.set(target, capturePreimage(target));
    // A delete or a clear: from here on the live Map no longer holds every key of the op.
    else if (preimage.kind === "map_changes") this.#preimages.set(target, entriesAtOp(target as Map<unknown, unknown>, preimage));
  }

  beforeMapSet(target: Map<unknown, unknown>, key: unknown, had: boolean, old: unknown): void {
    if (this.#status !== "running") return;
    let preimage = this.#preimages.get(target);
    if (preimage === undefined) {
      // Unwritten since the op, so its size now is its size then.
      preimage = { kind: "map_changes", size: target.size, changes: new Map() };
      this.#preimages.set(target, preimage);
    }
    if (preimage.kind !== "map_changes") return;
    const changes = preimage.changes;
    if (!changes.has(key)) changes.set(key, had ? old : absent);
  }

  exposed(): void {
    if (this.#status !== "running") return;
    // Inside an apply: a failure is kept for the next step(), never thrown into the app
    // (whether a replica was encoding at that moment must not change what apply sees).
    try {
      this.#run(Infinity);
    } catch {
      // #run recorded it.
    }
  }

  step(budgetBytes: number): boolean {
    if (this.#status === "aborted") throw new Error(`the snapshot job of op ${this.op} was aborted`);
    if (this.#status === "failed") throw this.#error;
    if (this.#status === "done") return true;
    assert(budgetBytes > 0, "a step has a budget");
    this.#run(budgetBytes);
    return this.done;
  }

  result(): Uint8Array {
    if (this.#status === "failed") throw this.#error;
    assert(this.#status === "done" && this.#bytes !== null, "a snapshot job's result is read once it is done");
    return this.#bytes;
  }

  abort(): void {
    if (this.#status !== "running") return;
    this.#end("aborted", null);
  }

  #run(budgetBytes: number): void {
    const encoder = this.#encoder!;
    try {
      const outcome = encoder.step(budgetBytes);
      if (outcome === "more") return;
      const bytes = outcome === "done" ? encoder.result() : this.#encodeReference();
      this.#end("done", bytes);
    } catch (error) {
      this.#error = error;
      this.#end("failed", null);
      throw error;
    }
  }

  /**
   * The bytes `snapshot()` writes when the fast path gives up: the app image encoded on
   * its own (from a copy of the state at the op), then the fields around it.
   */
  #encodeReference(): Uint8Array {
    const fields = this.#fields!;
    const app = this.#appInPlace ? encodeValue(materialize(this.#appState, this.#preimages)) : fields.app;
    return encodeValue({ ...fields, app });
  }

  #end(status: JobStatus, bytes: Uint8Array | null): void {
    this.#status = status;
    this.#bytes = bytes;
    this.#encoder = null;
    this.#fields = null;
    this.#preimages.clear();
    unwatchDescriptors();
    this.#onEnd(this, bytes);
  }
}
