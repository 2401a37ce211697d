/** Helpers for kernel tests: committed entries as a replica would hand them over. */
import { checksum } from "../src/codec/checksum.ts";
import type { CommittedEntry } from "../src/vsr/state_machine.ts";
import { encodeEvent, operationEvent } from "../src/app/wire.ts";

/** A source of committed entries with increasing ops, deterministic checksums and timestamps. */
export class EntryLog {
  op = 0;
  timestampMs: number;
  view = 1;
  readonly entries: CommittedEntry[] = [];
  readonly client = new Uint8Array(16).fill(7);
  request = 0;

  constructor(readonly seed = 1, startMs = 1_700_000_000_000) {
    this.timestampMs = startMs;
  }

  /** The next entry for `operation` with `body`; `internal` uses the all-zero client. */
  next(operation: number, body: Uint8Array, options: { internal?: boolean; advanceMs?: number } = {}): CommittedEntry {
    this.op++;
    this.timestampMs += options.advanceMs ?? 1;
    const opBytes = new Uint8Array(12);
    new DataView(opBytes.buffer).setUint32(0, this.seed);
    new DataView(opBytes.buffer).setFloat64(4, this.op);
    const entry: CommittedEntry = {
      op: this.op,
      view: this.view,
      timestamp: this.timestampMs,
      client: options.internal === true ? new Uint8Array(16) : this.client,
      request: options.internal === true ? 0 : ++this.request,
      operation,
      body,
      checksum: checksum(opBytes, body),
    };
    this.entries.push(entry);
    return entry;
  }

  /** The next client event carrying `payload`. */
  event(payload: unknown, advanceMs?: number): CommittedEntry {
    return this.next(operationEvent, encodeEvent(payload), advanceMs === undefined ? {} : { advanceMs });
  }
}
