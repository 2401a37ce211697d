import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { applyTrial, effectsTrial } from "../src/cli/commands/bench_kernel.ts";
import { KvLoad, kvCheckpointTrial, kvPutTrial } from "../src/cli/commands/bench_kernel_kv.ts";

// The benchmark's own trials, small: they must measure real work (every effect delivered
// exactly once to the runtime's sink, events applied), not just return a number.
describe("bench kernel trials", () => {
  test("the effects trial delivers every effect to the sink exactly once and acknowledges it", async () => {
    const result = await effectsTrial(300);
    assert.equal(result.deliveredTwice, 0);
    assert.ok(result.ackEntries >= 1, "acknowledgements were committed through the executor");
    assert.ok(result.perSecond > 0 && Number.isFinite(result.perSecond));
  });

  test("the apply trial applies every bank event it times (more events than distinct bodies)", () => {
    // applyTrial throws unless every event was applied and none rejected.
    const rate = applyTrial(5000, 1);
    assert.ok(rate > 0 && Number.isFinite(rate));
  });

  test("the kv trials apply every put they time, and the stepped checkpoint is snapshot() byte for byte", () => {
    const load = new KvLoad(4);
    assert.equal(load.put(load.keys), load.keys);
    const micros = kvPutTrial(load, 2000);
    assert.ok(micros > 0 && Number.isFinite(micros));
    const checkpoint = kvCheckpointTrial(load, 4096, 8);
    assert.equal(checkpoint.identical, true);
    assert.ok(checkpoint.steps > 10, `${checkpoint.steps} steps`);
  });
});
