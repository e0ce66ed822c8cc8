/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). No dependency. Label sets per metric are bounded: past
 * maxSeries, new label sets are counted under {overflow="true"} instead of growing without end.
 */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabelValue(labels[k] as string)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

function keyOf(labels: Labels): string {
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );
}

interface Metric {
  readonly name: string;
  render(): string;
}

/** Most label sets per metric. */
export const DEFAULT_MAX_SERIES = 1000;

abstract class Series<T> {
  protected readonly series = new Map<string, { labels: Labels; value: T }>();
  readonly name: string;
  readonly help: string;
  readonly maxSeries: number;

  constructor(name: string, help: string, maxSeries: number) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    this.name = name;
    this.help = help;
    this.maxSeries = maxSeries;
  }

  protected slot(labels: Labels, init: () => T): { labels: Labels; value: T } {
    for (const k of Object.keys(labels)) if (!LABEL.test(k)) throw new Error(`bad label name ${k}`);
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= this.maxSeries) {
        const overflow: Labels = { overflow: 'true' };
        const ok = keyOf(overflow);
        s = this.series.get(ok);
        if (!s) {
          s = { labels: overflow, value: init() };
          this.series.set(ok, s);
        }
        return s;
      }
      s = { labels, value: init() };
      this.series.set(key, s);
    }
    return s;
  }
}

export class Counter extends Series<number> implements Metric {
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) return;
    const s = this.slot(labels, () => 0);
    s.value += by;
  }

  get(labels: Labels = {}): number {
    return this.series.get(keyOf(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} counter`];
    for (const s of this.series.values())
      lines.push(`${this.name}${labelText(s.labels)} ${formatNumber(s.value)}`);
    return lines.join('\n');
  }
}

/** A metric whose samples are read when /metrics is scraped. */
abstract class CollectedMetric implements Metric {
  readonly name: string;
  readonly help: string;
  protected abstract readonly type: 'gauge' | 'counter';
  private readonly collect: () => ReadonlyArray<readonly [Labels, number]>;

  constructor(name: string, help: string, collect: () => ReadonlyArray<readonly [Labels, number]>) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    this.name = name;
    this.help = help;
    this.collect = collect;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const [labels, v] of this.collect())
      lines.push(`${this.name}${labelText(labels)} ${formatNumber(v)}`);
    return lines.join('\n');
  }
}

/** A gauge whose samples are read when /metrics is scraped. */
export class Gauge extends CollectedMetric {
  protected readonly type = 'gauge';
}

/** A counter whose value is read when scraped (totals kept elsewhere). */
export class CounterFunc extends CollectedMetric {
  protected readonly type = 'counter';
}

interface HistogramValue {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Series<HistogramValue> implements Metric {
  readonly buckets: readonly number[];

  constructor(name: string, help: string, buckets: readonly number[], maxSeries: number) {
    super(name, help, maxSeries);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(value: number, labels: Labels = {}): void {
    if (!Number.isFinite(value)) return;
    const s = this.slot(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) s.value.counts[i] = (s.value.counts[i] as number) + 1;
    }
    s.value.sum += value;
    s.value.count += 1;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => {
        lines.push(`${this.name}_bucket${labelText(s.labels, ['le', formatNumber(b)])} ${s.value.counts[i]}`);
      });
      lines.push(`${this.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.value.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${formatNumber(s.value.sum)}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.value.count}`);
    }
    return lines.join('\n');
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  private readonly maxSeries: number;

  constructor(maxSeries = DEFAULT_MAX_SERIES) {
    this.maxSeries = maxSeries;
  }

  private add<M extends Metric>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.push(m);
    return m;
  }

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help, this.maxSeries));
  }

  counterFunc(
    name: string,
    help: string,
    collect: () => ReadonlyArray<readonly [Labels, number]>,
  ): CounterFunc {
    return this.add(new CounterFunc(name, help, collect));
  }

  gauge(name: string, help: string, collect: () => ReadonlyArray<readonly [Labels, number]>): Gauge {
    return this.add(new Gauge(name, help, collect));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets, this.maxSeries));
  }

  /** The text exposition of every metric. */
  render(): string {
    return `${this.metrics.map((m) => m.render()).join('\n')}\n`;
  }
}
