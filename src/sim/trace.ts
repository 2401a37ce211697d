/**
 * The trace of a run: every event (deliver, drop, crash, restart, partition, commit, …)
 * is folded into a 64-bit hash, and printed as a line when tracing is on. Two runs with
 * the same seed produce the same trace hash; a change in behaviour anywhere shows up as a
 * different hash.
 * @module
 */

/** Lines kept when tracing is on (a bound on memory for very long runs). */
export const traceLinesMax = 2_000_000;

/** Folds events into a hash and, optionally, into printable lines. */
export class Trace {
  private h1 = 0x811c_9dc5;
  private h2 = 0x0132_5a7b;
  /** Events folded in. */
  eventCount = 0;
  /** Printable lines (only when constructed with `keepLines`). */
  readonly lines: string[] | null;
  /** Lines not kept because {@link traceLinesMax} was reached. */
  linesDropped = 0;

  constructor(keepLines: boolean) {
    this.lines = keepLines ? [] : null;
  }

  private mix(value: number): void {
    // Two independent FNV-style lanes over 32-bit words; not cryptographic, only a
    // fingerprint of the event sequence.
    const word = value | 0;
    this.h1 = Math.imul(this.h1 ^ word, 0x0100_0193);
    this.h2 = Math.imul(this.h2 ^ (word >>> 7) ^ (word << 11), 0x5bd1_e995) ^ (this.h2 >>> 15);
  }

  private mixNumber(value: number): void {
    this.mix(value >>> 0);
    this.mix(Math.floor(value / 0x1_0000_0000));
  }

  /**
   * Records one event at `tick`: a kind, up to three numbers and optionally bytes (a
   * message or an entry checksum) that are folded in whole.
   */
  event(tick: number, kind: string, a = 0, b = 0, c = 0, bytes?: Uint8Array, detail?: string): void {
    this.eventCount++;
    this.mixNumber(tick);
    for (let i = 0; i < kind.length; i++) this.mix(kind.charCodeAt(i));
    this.mixNumber(a);
    this.mixNumber(b);
    this.mixNumber(c);
    if (bytes !== undefined) {
      this.mix(bytes.length);
      for (let i = 0; i < bytes.length; i++) this.mix(bytes[i]!);
    }
    if (this.lines !== null) {
      if (this.lines.length >= traceLinesMax) {
        this.linesDropped++;
        return;
      }
      const extra = detail === undefined ? "" : ` ${detail}`;
      this.lines.push(`${tick} ${kind} ${a} ${b} ${c}${extra}`);
    }
  }

  /** The hash of every event so far, as 16 hex digits. */
  hash(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, "0") + (this.h2 >>> 0).toString(16).padStart(8, "0");
  }
}
