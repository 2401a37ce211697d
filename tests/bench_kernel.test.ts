import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { applyTrial, effectsTrial } from "../src/cli/commands/bench_kernel.ts";

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
});
