import { test } from "node:test";
import assert from "node:assert/strict";
import { MetricsRegistry } from "../src/api/metrics.ts";

/** A strict reader of the Prometheus text format 0.0.4: every line must parse. */
function parse(text: string) {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m !== null) continue;
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m !== null) {
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `sample line parses: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[3] !== undefined) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let consumed = 0;
      for (const lm of m[3].matchAll(re)) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
        consumed += lm[0].length;
      }
      assert.equal(consumed, m[3].length, `labels parse: ${m[3]}`);
    }
    const value = m[4] === "+Inf" ? Infinity : Number(m[4]);
    assert.ok(!Number.isNaN(value), `value is a number: ${m[4]}`);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, "");
    assert.ok(types.has(m[1]!) || types.get(family) === "histogram", `sample ${m[1]} follows its TYPE line`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { types, samples };
}

test("counters, gauges, histograms and collected values render as valid Prometheus text", () => {
  const registry = new MetricsRegistry();
  const commits = registry.counter("chronon_commits_total", "Ops committed.");
  const views = registry.counter("chronon_view_changes_total", "View changes.", ["reason"]);
  const lag = registry.gauge("chronon_peer_lag_ops", "Ops behind.", ["replica"]);
  const fsync = registry.histogram("chronon_fsync_duration_seconds", "fsync time.", [0.001, 0.01, 0.1]);
  registry.collect("chronon_bus_frames_in_total", "Frames in.", "counter", () => 42);
  registry.collect("chronon_bus_dropped_total", "Dropped.", "counter", () => [[{ reason: "bad_mac" }, 1], [{ reason: 'we"ird\\\n' }, 2]]);
  commits.inc();
  commits.inc({}, 4);
  views.inc({ reason: "timeout" });
  lag.set(3, { replica: "1" });
  lag.add(-1, { replica: "1" });
  for (const seconds of [0.0005, 0.002, 0.002, 0.05, 3]) fsync.observe(seconds);
  const { types, samples } = parse(registry.render());
  assert.equal(types.get("chronon_fsync_duration_seconds"), "histogram");
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
  assert.equal(value("chronon_commits_total"), 5);
  assert.equal(value("chronon_view_changes_total", { reason: "timeout" }), 1);
  assert.equal(value("chronon_peer_lag_ops", { replica: "1" }), 2);
  assert.equal(value("chronon_bus_frames_in_total"), 42);
  assert.equal(value("chronon_bus_dropped_total", { reason: 'we"ird\\\n' }), 2);
  // Buckets are cumulative and +Inf equals the count.
  assert.equal(value("chronon_fsync_duration_seconds_bucket", { le: "0.001" }), 1);
  assert.equal(value("chronon_fsync_duration_seconds_bucket", { le: "0.01" }), 3);
  assert.equal(value("chronon_fsync_duration_seconds_bucket", { le: "0.1" }), 4);
  assert.equal(value("chronon_fsync_duration_seconds_bucket", { le: "+Inf" }), 5);
  assert.equal(value("chronon_fsync_duration_seconds_count"), 5);
  assert.ok(Math.abs(value("chronon_fsync_duration_seconds_sum")! - 3.0545) < 1e-9);
});

test("label sets are bounded; names are validated; a metric registers once", () => {
  const registry = new MetricsRegistry();
  const byRoute = registry.counter("chronon_x_total", "x", ["route"], 2);
  byRoute.inc({ route: "a" });
  byRoute.inc({ route: "b" });
  byRoute.inc({ route: "c" });
  byRoute.inc({ route: "a" });
  assert.equal(byRoute.seriesDropped, 1);
  assert.equal(byRoute.get({ route: "a" }), 2);
  assert.equal(byRoute.get({ route: "c" }), 0);
  assert.throws(() => registry.counter("chronon_x_total", "again"));
  assert.throws(() => registry.counter("bad name", "x"));
  assert.throws(() => registry.histogram("h", "x", [1, 1]));
  assert.throws(() => byRoute.inc({ other: "x" }));
});
