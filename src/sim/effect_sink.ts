/**
 * The simulated webhook receiver: idempotent by effect id and fenced by view, as
 * DESIGN.md asks of a receiver. An attempt whose view is older than the highest view the
 * sink has seen is refused with 409 (a deposed primary's late attempt); an attempt may
 * fail with 503 (the sink is flaky); the first accepted attempt of an id applies it, later
 * ones are answered 200 without applying again. Delays and losses of requests and
 * responses are the effects driver's (effects_driver.ts), not the sink's.
 * @module
 */
import type { EffectsChecker } from "./effects_checker.ts";
import type { Prng } from "./prng.ts";

/** What the sink answers. */
export interface SinkResponse {
  readonly status: number;
  readonly body: string;
}

/** Sink counters. */
export interface SinkStats {
  deliveries: number;
  applied: number;
  duplicates: number;
  fenced: number;
  failed: number;
}

/** The simulated sink (see the module comment). */
export class EffectSink {
  readonly #checker: EffectsChecker;
  readonly #prng: Prng;
  readonly #applied = new Set<string>();
  #viewMax = 0;
  /** Probability that an accepted attempt fails with 503 (0 in the liveness phase). */
  failureProbability: number;
  readonly stats: SinkStats = { deliveries: 0, applied: 0, duplicates: 0, fenced: 0, failed: 0 };

  constructor(checker: EffectsChecker, prng: Prng, failureProbability: number) {
    this.#checker = checker;
    this.#prng = prng;
    this.failureProbability = failureProbability;
  }

  /** An attempt of effect `id` from a primary of `view`, with the effect's JSON body. */
  receive(id: string, view: number, bodyJson: string): SinkResponse {
    this.stats.deliveries++;
    this.#checker.recordDelivery(id, view);
    if (view < this.#viewMax) {
      this.stats.fenced++;
      return { status: 409, body: `fenced: view ${view} < ${this.#viewMax}` };
    }
    this.#viewMax = view;
    if (this.#prng.chance(this.failureProbability)) {
      this.stats.failed++;
      return { status: 503, body: "try later" };
    }
    if (this.#applied.has(id)) {
      this.stats.duplicates++;
      return { status: 200, body: "duplicate" };
    }
    this.#applied.add(id);
    this.stats.applied++;
    this.#checker.recordApplication(id, bodyJson);
    return { status: 200, body: "applied" };
  }
}
