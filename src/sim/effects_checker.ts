/**
 * The effects checker: effectively-once effects, as DESIGN.md states them.
 *
 * | rule | checked |
 * |---|---|
 * | no effect of an event that never committed is executed | each sink delivery names an id some replica recorded in its outbox when it applied the event |
 * | an id names one effect | every replica that applies the event records the same effect bytes under the id, and the sink receives that effect's body |
 * | acknowledged exactly once | every replica that applies an acknowledgement of an id applies it at the same op (one committed ack per id) |
 * | applied exactly once at an idempotent sink | the sink applies an id at most once, and by the end every committed effect was applied |
 * | executed at least once, acknowledged | by the end every committed effect was delivered and acknowledged, none dead-lettered |
 *
 * Fed by the bank workload (bank_workload.ts: outbox and acknowledgement records, from
 * every replica's executor) and the simulated sink (effect_sink.ts: deliveries and
 * applications). Every rule has a test that feeds it a violation
 * (tests/sim_bank.test.ts).
 * @module
 */
import { decodeValue } from "../app/value_codec.ts";
import { Violation } from "./checkers.ts";

interface CommittedEffect {
  readonly op: number;
  readonly bytes: Uint8Array;
  /** JSON of the effect's body, what the sink must receive. */
  readonly bodyJson: string;
}

/** Counters of the effects checker. */
export interface EffectsCounts {
  readonly committed: number;
  readonly acknowledged: number;
  readonly deliveries: number;
  readonly applications: number;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Records outbox effects, acknowledgements and sink deliveries; throws a Violation on a broken rule. */
export class EffectsChecker {
  readonly #committed = new Map<string, CommittedEffect>();
  readonly #acks = new Map<string, number>();
  readonly #deliveries = new Map<string, number>();
  readonly #applications = new Map<string, number>();

  /** `replica` applied the event at `op`, which put outbox effect `id` (its CBOR `bytes`) in its outbox. */
  recordEffect(replica: number, id: string, op: number, bytes: Uint8Array): void {
    const known = this.#committed.get(id);
    if (known !== undefined) {
      if (known.op !== op || !bytesEqual(known.bytes, bytes)) {
        throw new Violation("effects", `effect ${id}: replica ${replica} recorded it at op ${op} with other content than at op ${known.op}`);
      }
      return;
    }
    const effect = decodeValue(bytes) as { body?: unknown };
    this.#committed.set(id, { op, bytes, bodyJson: JSON.stringify(effect.body ?? null) });
  }

  /** `replica` applied an op-17 entry at `op` that acknowledged effect `id`. */
  recordAck(replica: number, id: string, op: number): void {
    if (!this.#committed.has(id)) throw new Violation("effects", `replica ${replica} acknowledged effect ${id} at op ${op}, an effect no committed event created`);
    const known = this.#acks.get(id);
    if (known !== undefined && known !== op) {
      throw new Violation("effects", `effect ${id} acknowledged twice: at op ${known} and (replica ${replica}) at op ${op}`);
    }
    this.#acks.set(id, op);
  }

  /** `replica` applied an op-17 entry at `op` that dead-lettered effect `id` (the sink never fails for good). */
  recordDeadLetter(replica: number, id: string, op: number, error: string | null): void {
    throw new Violation("effects", `effect ${id} dead-lettered at op ${op} on replica ${replica} (${error ?? "no error"}); the simulated sink never refuses a current primary for good`);
  }

  /** The sink received an attempt of effect `id`. */
  recordDelivery(id: string, view: number): void {
    if (!this.#committed.has(id)) {
      throw new Violation("effects", `the sink received effect ${id} (view ${view}), but no replica applied an event that created it: an uncommitted effect was executed`);
    }
    this.#deliveries.set(id, (this.#deliveries.get(id) ?? 0) + 1);
  }

  /** The sink applied effect `id` (its first accepted delivery) with `bodyJson`. */
  recordApplication(id: string, bodyJson: string): void {
    const committed = this.#committed.get(id);
    if (committed === undefined) throw new Violation("effects", `the sink applied effect ${id}, which no committed event created`);
    const count = (this.#applications.get(id) ?? 0) + 1;
    this.#applications.set(id, count);
    if (count > 1) throw new Violation("effects", `the sink applied effect ${id} ${count} times`);
    if (bodyJson !== committed.bodyJson) {
      throw new Violation("effects", `effect ${id} reached the sink with body ${bodyJson}, the committed effect has ${committed.bodyJson}`);
    }
  }

  /** Outbox effects of committed events not yet acknowledged (for the convergence wait). */
  unacknowledged(): number {
    return this.#committed.size - this.#acks.size;
  }

  /** At the end of a run: every committed effect executed, acknowledged once and applied once. */
  final(): void {
    for (const [id, effect] of this.#committed) {
      if ((this.#deliveries.get(id) ?? 0) === 0) throw new Violation("effects", `effect ${id} of op ${effect.op} was never executed`);
      if (!this.#acks.has(id)) throw new Violation("effects", `effect ${id} of op ${effect.op} was never acknowledged`);
      const applied = this.#applications.get(id) ?? 0;
      if (applied !== 1) throw new Violation("effects", `effect ${id} of op ${effect.op} was applied ${applied} times at the sink`);
    }
  }

  /** Counters for the run summary. */
  counts(): EffectsCounts {
    let deliveries = 0;
    for (const n of this.#deliveries.values()) deliveries += n;
    return { committed: this.#committed.size, acknowledged: this.#acks.size, deliveries, applications: this.#applications.size };
  }
}
