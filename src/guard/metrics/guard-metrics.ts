import type { PipelineStats } from '../alerts/pipeline.js';
import type { ResolverStats } from '../attribution/index.js';
import type { EventRecorder, GuardEvent } from '../events/types.js';
import { Registry } from './registry.js';

/** Latency buckets, seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Attribution is usually well under a millisecond. */
export const ATTRIBUTION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/** What the metrics read of the rest of the event outputs when scraped. */
export interface MetricsSources {
  /** The attribution resolver's counters (refreshed by the caller every few seconds). */
  attribution?: () => ResolverStats | undefined;
  alerts?: () => PipelineStats;
  store?: () => { depth: number; dropped: number; inserted: number; failed: number };
}

/** Reads a source once per scrape: the value is reused until the next turn of the event loop. */
function perScrape<T>(read: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => {
    if (cached) return cached.value;
    cached = { value: read() };
    setImmediate(() => {
      cached = undefined;
    });
    return cached.value;
  };
}

/**
 * The guard's metrics: derived from each event (record() is a few map updates, no I/O) and from the
 * pipeline's state, read at scrape time. docs/metrics.md lists every metric.
 */
export class GuardMetrics implements EventRecorder {
  readonly registry = new Registry();
  private readonly requests;
  private readonly upstream;
  private readonly attribution;
  private readonly upstreamErrors;
  private readonly alertEvents;

  constructor(sources: MetricsSources = {}) {
    const r = this.registry;
    this.requests = r.counter(
      'imdsguard_requests_total',
      'Requests seen by the guard, by decision, action, rule and IMDS version.',
    );
    this.upstream = r.histogram(
      'imdsguard_upstream_latency_seconds',
      'Time the upstream metadata service took to answer forwarded requests, seconds.',
      LATENCY_BUCKETS,
    );
    this.upstreamErrors = r.counter(
      'imdsguard_upstream_errors_total',
      'Forwarded requests that failed upstream, by error.',
    );
    this.attribution = r.histogram(
      'imdsguard_attribution_latency_seconds',
      'Time spent finding the calling process, seconds.',
      ATTRIBUTION_BUCKETS,
    );
    this.alertEvents = r.counter(
      'imdsguard_alert_events_total',
      'Events marked as alerts (before noise control), by rule.',
    );
    const attribution = sources.attribution ? perScrape(sources.attribution) : undefined;
    r.gauge(
      'imdsguard_attribution_sock_diag',
      '1 when client sockets are found by sock_diag (the native addon), 0 when by /proc/net/tcp.',
      () => {
        const st = attribution?.();
        return st ? [[{}, st.socketSource === 'sock_diag' ? 1 : 0]] : [];
      },
    );
    r.counterFunc(
      'imdsguard_attribution_lookups_total',
      'Caller lookups by tier (inline on the guard thread, worker) and result (found, not_found; deferred: the inline tier passed it to the worker).',
      () => {
        const st = attribution?.();
        if (!st) return [];
        const out: Array<readonly [Record<string, string>, number]> = [
          [{ tier: 'worker', result: 'found' }, st.lookups - st.unresolved],
          [{ tier: 'worker', result: 'not_found' }, st.unresolved],
        ];
        if (st.inline) {
          out.push([{ tier: 'inline', result: 'found' }, st.inline.lookups - st.inline.unresolved]);
          out.push([{ tier: 'inline', result: 'deferred' }, st.inline.unresolved]);
        }
        return out;
      },
    );
    r.counterFunc(
      'imdsguard_attribution_socket_lookups_total',
      'How client sockets were found: sock_diag answers, and reads of a /proc/net/tcp table.',
      () => {
        const st = attribution?.();
        if (!st) return [];
        return [
          [{ via: 'sock_diag' }, st.diagHits + (st.inline?.diagHits ?? 0)],
          [{ via: 'proc_table' }, st.tableReads],
        ] as const;
      },
    );
    const alerts = sources.alerts ? perScrape(sources.alerts) : undefined;
    r.gauge('imdsguard_alert_queue_depth', 'Alerts in the in-memory queue before the spool.', () =>
      alerts ? [[{}, alerts().queueDepth]] : [],
    );
    r.gauge(
      'imdsguard_alert_sink_backlog',
      'Alerts in the spool a sink has not accepted yet, by sink.',
      () => (alerts ? alerts().sinks.map((s) => [{ sink: s.name }, s.backlog] as const) : []),
    );
    r.gauge(
      'imdsguard_alert_sink_up',
      '1 when the last delivery to the sink succeeded (or none failed yet), by sink.',
      () =>
        alerts
          ? alerts().sinks.map((s) => [{ sink: s.name }, s.lastError === undefined ? 1 : 0] as const)
          : [],
    );
    r.gauge('imdsguard_alert_spool_bytes', 'Bytes of alerts held in the spool.', () =>
      alerts ? [[{}, alerts().spool.bytes]] : [],
    );
    r.gauge('imdsguard_alert_spool_alerts', 'Alerts held in the spool.', () =>
      alerts ? [[{}, alerts().spool.alerts]] : [],
    );
    r.counterFunc('imdsguard_alerts_delivered_total', 'Alerts a sink accepted, by sink.', () =>
      alerts ? alerts().sinks.map((s) => [{ sink: s.name }, s.delivered] as const) : [],
    );
    r.counterFunc('imdsguard_alert_delivery_failures_total', 'Failed delivery attempts, by sink.', () =>
      alerts ? alerts().sinks.map((s) => [{ sink: s.name }, s.failures] as const) : [],
    );
    r.counterFunc(
      'imdsguard_alerts_suppressed_total',
      'Alerts folded into summaries by dedup and rate limits.',
      () => (alerts ? [[{}, alerts().suppressed]] : []),
    );
    const store = sources.store ? perScrape(sources.store) : undefined;
    r.counterFunc('imdsguard_dropped_total', 'Events or alerts dropped, by where and why.', () => {
      const out: Array<readonly [Record<string, string>, number]> = [];
      if (alerts) {
        const s = alerts();
        out.push([{ stage: 'alert_queue', reason: 'full' }, s.queueDropped]);
        out.push([{ stage: 'alert_spool', reason: 'full' }, s.spool.dropped]);
      }
      if (store) {
        const s = store();
        out.push([{ stage: 'store_buffer', reason: 'full' }, s.dropped]);
        out.push([{ stage: 'store', reason: 'error' }, s.failed]);
      }
      return out;
    });
    r.gauge('imdsguard_store_queue_depth', 'Events waiting to be written to the event store.', () =>
      store ? [[{}, store().depth]] : [],
    );
  }

  record(event: GuardEvent): void {
    this.requests.inc({
      decision: event.decision,
      action: event.action,
      rule: event.rule,
      version: event.request.version,
    });
    if (event.upstream?.latencyMs !== undefined) this.upstream.observe(event.upstream.latencyMs / 1000);
    if (event.upstream?.error !== undefined) this.upstreamErrors.inc({ error: event.upstream.error });
    if (event.attributionMs !== undefined) this.attribution.observe(event.attributionMs / 1000);
    if (event.alert) this.alertEvents.inc({ rule: event.rule });
  }

  render(): string {
    return this.registry.render();
  }

  async close(): Promise<void> {}
}
