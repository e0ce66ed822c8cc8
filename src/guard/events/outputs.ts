import { type AdminServer, startAdminServer } from '../admin/server.js';
import type { ResolverStats } from '../attribution/index.js';
import { GuardMetrics, type MetricsSources } from '../metrics/guard-metrics.js';
import { type AdminConfig, type AlertsConfig, type EventsConfig, parseAdminListen } from './config.js';
import { AlertPipeline } from './pipeline.js';
import { createSink, sinkConfigs } from './sinks/index.js';
import type { AlertSink } from './sinks/types.js';
import { SqliteEventStore, StoreRecorder } from './store.js';
import type { EventRecorder } from './types.js';

/**
 * Builds every output of guard events from config: the event store, the alert pipeline (sinks,
 * spool, noise control), the metrics and the admin endpoint. The guard's wiring calls this once at
 * start-up.
 */
export interface EventOutputsDeps {
  hostname: string;
  /** Readiness of the guard itself, for /readyz. */
  isReady: () => boolean;
  /** Operational messages (sink failing or recovered, drops). Never given secrets. */
  log?: (message: string) => void;
  /** The attribution resolver's latest counters, for the metrics. */
  attributionStats?: () => ResolverStats | undefined;
}

export interface EventOutputs {
  recorders: EventRecorder[];
  /** The admin endpoint's URL when one is listening. */
  adminUrl?: string;
  /** The metrics (also served on /metrics). */
  metrics: GuardMetrics;
  /** The alert pipeline, when at least one sink is configured. */
  alerts?: AlertPipeline;
  close(): Promise<void>;
}

/** Where the spool goes when alerts.spool.path is not set: beside the event store, else in memory. */
export function spoolPathFor(events: EventsConfig, alerts: AlertsConfig): string {
  if (alerts.spool.path !== undefined) return alerts.spool.path;
  if (events.db !== undefined && events.db !== ':memory:') return `${events.db}-alerts`;
  return ':memory:';
}

export async function createEventOutputs(
  events: EventsConfig,
  alerts: AlertsConfig,
  admin: AdminConfig,
  deps: EventOutputsDeps,
): Promise<EventOutputs> {
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  try {
    let storeRecorder: StoreRecorder | undefined;
    if (events.db !== undefined) {
      const store = new SqliteEventStore({ path: events.db, retention: events.retention });
      storeRecorder = new StoreRecorder(store, {
        maxBuffered: events.bufferSize,
        flushMs: 200,
        batchSize: 500,
        pruneEveryMs: 60_000,
        ...(deps.log ? { log: deps.log } : {}),
      });
      const sr = storeRecorder;
      closers.push(() => sr.close());
    }

    let pipeline: AlertPipeline | undefined;
    const configs = sinkConfigs(alerts);
    if (configs.length > 0) {
      const sinks: AlertSink[] = [];
      try {
        for (const cfg of configs)
          sinks.push(createSink(cfg, { hostname: deps.hostname, timeoutMs: alerts.timeoutMs }));
      } catch (err) {
        await Promise.allSettled(sinks.map((s) => s.close()));
        throw err;
      }
      try {
        pipeline = new AlertPipeline({
          sinks,
          spool: { path: spoolPathFor(events, alerts), maxBytes: alerts.spool.maxBytes },
          quiet: alerts.quiet,
          queueSize: alerts.queueSize,
          noise: alerts.noise,
          retry: alerts.retry,
          drainTimeoutMs: alerts.drainTimeoutMs,
          ...(deps.log ? { log: deps.log } : {}),
        });
      } catch (err) {
        await Promise.allSettled(sinks.map((s) => s.close()));
        throw err;
      }
      const p = pipeline;
      closers.push(() => p.close());
    }

    const sources: MetricsSources = {};
    if (deps.attributionStats) sources.attribution = deps.attributionStats;
    if (pipeline) {
      const p = pipeline;
      sources.alerts = () => p.stats();
    }
    if (storeRecorder) {
      const s = storeRecorder;
      sources.store = () => ({ depth: s.depth, dropped: s.dropped, inserted: s.inserted, failed: s.failed });
    }
    const metrics = new GuardMetrics(sources);

    let server: AdminServer | undefined;
    if (admin.listen !== undefined) {
      const addr = parseAdminListen(admin.listen);
      if (!addr) throw new Error(`admin.listen: bad address ${admin.listen}`);
      const p = pipeline;
      server = await startAdminServer({
        host: addr.host,
        port: addr.port,
        metrics: () => metrics.render(),
        checks: {
          guard: deps.isReady,
          ...(p ? { spool: () => p.isWritable() } : {}),
        },
      });
      const s = server;
      closers.push(() => s.close());
    }

    const recorders: EventRecorder[] = [metrics];
    if (storeRecorder) recorders.push(storeRecorder);
    if (pipeline) recorders.push(pipeline);
    let closing: Promise<void> | undefined;
    const out: EventOutputs = {
      recorders,
      metrics,
      close: () => {
        closing ??= closeAll();
        return closing;
      },
    };
    if (server) out.adminUrl = server.url;
    if (pipeline) out.alerts = pipeline;
    return out;
  } catch (err) {
    await closeAll();
    throw err;
  }
}
