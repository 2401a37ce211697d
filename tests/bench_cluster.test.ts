import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { bench, LatencyHistogram, residentBytes } from "../src/cli/commands/bench_cluster.ts";
import { UsageError } from "../src/cli/command.ts";
import process from "node:process";

describe("bench cluster latency histogram", () => {
  test("quantiles fall within 1% of the recorded latencies", () => {
    const histogram = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) histogram.record(i / 100); // 0.01 .. 10 ms
    assert.equal(histogram.count, 1000);
    const near = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) / expected < 0.012, `${actual} ≈ ${expected}`);
    near(histogram.quantileMs(0.5), 5);
    near(histogram.quantileMs(0.99), 9.9);
    near(histogram.quantileMs(0.999), 9.99);
    near(histogram.quantileMs(1), 10);
  });

  test("merging sparse histograms equals recording everything in one", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    const all = new LatencyHistogram();
    for (let i = 0; i < 500; i++) {
      const ms = 0.2 + (i % 37) * 0.7;
      (i % 2 === 0 ? a : b).record(ms);
      all.record(ms);
    }
    const merged = new LatencyHistogram();
    merged.merge(a.toJSON());
    merged.merge(b.toJSON());
    assert.deepEqual(merged.toJSON(), all.toJSON());
    assert.equal(merged.quantileMs(0.99), all.quantileMs(0.99));
  });

  test("an empty histogram answers 0 and sub-microsecond latencies land in the first bucket", () => {
    const histogram = new LatencyHistogram();
    assert.equal(histogram.quantileMs(0.5), 0);
    histogram.record(0);
    assert.ok(histogram.quantileMs(0.5) < 0.0011);
    assert.throws(() => histogram.merge([1]));
  });
});

describe("bench cluster command line", () => {
  test("bad options are usage errors, before any process starts", async () => {
    await assert.rejects(bench.run(["--clients", "0"]), UsageError);
    await assert.rejects(bench.run(["--clients", "1,x"]), UsageError);
    await assert.rejects(bench.run(["--protocol", "smtp"]), UsageError);
    await assert.rejects(bench.run(["--duration", "-1"]), UsageError);
    await assert.rejects(bench.run(["--bogus"]), UsageError);
    await assert.rejects(bench.run(["--worker", "--clients", "1"]), UsageError);
  });

  test("resident memory of this process is read from /proc", () => {
    const resident = residentBytes(process.pid);
    if (resident === null) return; // no /proc (not Linux)
    assert.ok(resident.rss > 1_000_000 && resident.hwm >= resident.rss, JSON.stringify(resident));
    assert.equal(residentBytes(2 ** 30), null);
  });
});
