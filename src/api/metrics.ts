/**
 * A small metrics registry (counters, gauges, histograms, and values read at scrape time)
 * rendered in the Prometheus text exposition format 0.0.4. The node, the bus and the API
 * fill it; `GET /metrics` renders it.
 *
 * Every metric has a bound on its label sets (`seriesMax`): an observation that would add
 * a series past it is not recorded and is counted in the metric's `seriesDropped`, so a
 * bug or an attacker choosing label values cannot grow memory without limit.
 * @example
 * const metrics = new MetricsRegistry();
 * const commits = metrics.counter("chronon_commits_total", "Ops committed.");
 * commits.inc();
 * metrics.render(); // "# HELP chronon_commits_total Ops committed.\n# TYPE ..."
 * @module
 */
import { assert } from "../assert.ts";

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

/** Series kept per metric before new label sets are dropped (and counted). */
export const seriesMaxDefault = 256;

/** Buckets (seconds) for request latencies: 100 µs to 10 s. */
export const latencySecondsBuckets: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Buckets (seconds) for fsync durations: 50 µs to 1 s. */
export const fsyncSecondsBuckets: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelRe = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type Kind = "counter" | "gauge" | "histogram";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(labelNames: readonly string[], labels: Labels, extra?: [string, string]): string {
  const parts = labelNames.map((name) => `${name}="${escapeLabel(labels[name] ?? "")}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

abstract class Metric<Series> {
  protected readonly series = new Map<string, { labels: Labels; value: Series }>();
  /** Observations dropped because the label set would exceed `seriesMax`. */
  seriesDropped = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: Kind,
    readonly labelNames: readonly string[],
    private readonly seriesMax: number,
  ) {
    assert(nameRe.test(name), `metric name ${name} is valid`);
    for (const label of labelNames) assert(labelRe.test(label) && label !== "le", `label name ${label} is valid`);
    assert(new Set(labelNames).size === labelNames.length, "label names are distinct");
    assert(Number.isSafeInteger(seriesMax) && seriesMax >= 1, "seriesMax is positive");
  }

  protected slot(labels: Labels, fresh: () => Series): { labels: Labels; value: Series } | null {
    for (const key of Object.keys(labels)) assert(this.labelNames.includes(key), `label ${key} is declared on ${this.name}`);
    const key = this.labelNames.map((name) => labels[name] ?? "").join("\u0000");
    let slot = this.series.get(key);
    if (slot === undefined) {
      if (this.series.size >= this.seriesMax) {
        this.seriesDropped += 1;
        return null;
      }
      slot = { labels: { ...labels }, value: fresh() };
      this.series.set(key, slot);
    }
    return slot;
  }

  /** Lines of the exposition format for this metric. */
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.kind}`);
    for (const { labels, value } of this.series.values()) this.renderSeries(out, labels, value);
  }

  protected abstract renderSeries(out: string[], labels: Labels, value: Series): void;
}

/** A monotonically increasing count. */
export class Counter extends Metric<{ n: number }> {
  /** Adds `amount` (≥ 0) to the series of `labels`. */
  inc(labels: Labels = {}, amount = 1): void {
    assert(amount >= 0 && Number.isFinite(amount), "counters only go up");
    const slot = this.slot(labels, () => ({ n: 0 }));
    if (slot !== null) slot.value.n += amount;
  }
  /** The current value of a series (0 when never incremented). */
  get(labels: Labels = {}): number {
    const key = this.labelNames.map((name) => labels[name] ?? "").join("\u0000");
    return this.series.get(key)?.value.n ?? 0;
  }
  protected renderSeries(out: string[], labels: Labels, value: { n: number }): void {
    out.push(`${this.name}${labelText(this.labelNames, labels)} ${formatValue(value.n)}`);
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric<{ n: number }> {
  /** Sets the series of `labels` to `value`. */
  set(value: number, labels: Labels = {}): void {
    const slot = this.slot(labels, () => ({ n: 0 }));
    if (slot !== null) slot.value.n = value;
  }
  /** Adds `amount` (may be negative). */
  add(amount: number, labels: Labels = {}): void {
    const slot = this.slot(labels, () => ({ n: 0 }));
    if (slot !== null) slot.value.n += amount;
  }
  protected renderSeries(out: string[], labels: Labels, value: { n: number }): void {
    out.push(`${this.name}${labelText(this.labelNames, labels)} ${formatValue(value.n)}`);
  }
}

interface HistogramSeries {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets (upper bounds, inclusive). */
export class Histogram extends Metric<HistogramSeries> {
  constructor(name: string, help: string, readonly buckets: readonly number[], labelNames: readonly string[], seriesMax: number) {
    super(name, help, "histogram", labelNames, seriesMax);
    assert(buckets.length >= 1, "at least one bucket");
    for (let i = 1; i < buckets.length; i++) assert(buckets[i - 1]! < buckets[i]!, "buckets strictly increase");
  }
  /** Records one observation. */
  observe(value: number, labels: Labels = {}): void {
    const slot = this.slot(labels, () => ({ counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    if (slot === null) return;
    const series = slot.value;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]!) {
        series.counts[i]! += 1;
        break;
      }
    }
    series.sum += value;
    series.count += 1;
  }
  protected renderSeries(out: string[], labels: Labels, value: HistogramSeries): void {
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += value.counts[i]!;
      out.push(`${this.name}_bucket${labelText(this.labelNames, labels, ["le", formatValue(this.buckets[i]!)])} ${cumulative}`);
    }
    out.push(`${this.name}_bucket${labelText(this.labelNames, labels, ["le", "+Inf"])} ${value.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, labels)} ${formatValue(value.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, labels)} ${value.count}`);
  }
}

/** Values read when the registry renders (bus counters, replica status). */
class Collected extends Metric<never> {
  constructor(name: string, help: string, kind: "counter" | "gauge", private readonly read: () => number | readonly (readonly [Labels, number])[]) {
    super(name, help, kind, [], 1);
  }
  override render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.kind}`);
    const values = this.read();
    if (typeof values === "number") {
      out.push(`${this.name} ${formatValue(values)}`);
      return;
    }
    for (const [labels, value] of values) {
      for (const label of Object.keys(labels)) assert(labelRe.test(label) && label !== "le", `label name ${label} is valid`);
      out.push(`${this.name}${labelText(Object.keys(labels), labels)} ${formatValue(value)}`);
    }
  }
  protected renderSeries(): void {
    assert(false, "collected metrics render directly");
  }
}

/** The set of metrics one process exports. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric<unknown>>();

  private add<M extends Metric<unknown>>(metric: M): M {
    assert(!this.metrics.has(metric.name), `metric ${metric.name} registered once`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  /** Registers a counter (names end in `_total` by convention). */
  counter(name: string, help: string, labelNames: readonly string[] = [], seriesMax = seriesMaxDefault): Counter {
    return this.add(new Counter(name, help, "counter", labelNames, seriesMax));
  }

  /** Registers a gauge. */
  gauge(name: string, help: string, labelNames: readonly string[] = [], seriesMax = seriesMaxDefault): Gauge {
    return this.add(new Gauge(name, help, "gauge", labelNames, seriesMax));
  }

  /** Registers a histogram with the given bucket upper bounds. */
  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = [], seriesMax = seriesMaxDefault): Histogram {
    return this.add(new Histogram(name, help, buckets, labelNames, seriesMax));
  }

  /**
   * Registers a counter or gauge whose value is read at render time, e.g.
   * `registry.collect("chronon_bus_frames_in_total", "…", "counter", () => bus.counters.framesIn)`
   * or, with labels, `() => reasons.map((r) => [{ reason: r }, dropped[r]])`.
   */
  collect(name: string, help: string, kind: "counter" | "gauge", read: () => number | readonly (readonly [Labels, number])[]): void {
    this.add(new Collected(name, help, kind, read) as Metric<unknown>);
  }

  /** The whole registry in Prometheus text format (ends with a newline). */
  render(): string {
    const out: string[] = [];
    for (const metric of this.metrics.values()) metric.render(out);
    return out.join("\n") + "\n";
  }
}

/** Content type of {@link MetricsRegistry.render}'s output. */
export const metricsContentType = "text/plain; version=0.0.4; charset=utf-8";
