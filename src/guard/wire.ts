import { hostname as osHostname } from 'node:os';
import { type AdminConfig, parseAdminListen } from '../config/admin.js';
import type { AlertsConfig } from '../config/alerts.js';
import type { EventsConfig } from '../config/events.js';
import type { ImdsguardConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { type AdminServer, startAdminServer } from './admin/server.js';
import type { AlertPipeline } from './alerts/pipeline.js';
import type { AlertSink } from './alerts/sinks/types.js';
import type { ResolverStats } from './attribution/index.js';
import { loadSockDiag } from './attribution/sock-diag.js';
import { createThreadedProcResolver } from './attribution/threaded.js';
import { noAttribution, type ProcessResolver } from './attribution/types.js';
import { identitySource, readInstanceIdentity } from './callers/identity.js';
import type { InstanceIdentity } from './callers/interval.js';
import type { CallerShipper } from './callers/ship.js';
import { createJsonlRecorder, type JsonlRecorder } from './events/jsonl.js';
import type { EventRecorder, GuardMode } from './events/types.js';
import { createGuard, type Guard } from './index.js';
import { GuardMetrics, type MetricsSources } from './metrics/guard-metrics.js';
import { planReload } from './reload.js';
import { SqliteEventStore, StoreRecorder } from './store/index.js';
import { openTokenLedger } from './tokens/persist.js';

/**
 * The one composition root of the guard: config -> policy (inside createGuard), the JSON-lines
 * recorder (stdout or events.file), the event outputs (store, alerts, metrics, admin endpoint), and
 * the process resolver. The CLI and the demo build their guard here.
 */

export interface WireOptions {
  config: ImdsguardConfig;
  /** Where JSON-lines events go when events.file is not set (the CLI passes its stdout). */
  stdout: { write(chunk: string): unknown };
  /** Operational messages (stderr). */
  log: (message: string) => void;
  hostname?: string;
  now?: () => number;
  /** Overrides the resolver built from config (tests, demo). */
  resolver?: ProcessResolver;
  /** Recorders added to the configured ones (the demo keeps its own copy of the events). */
  extraRecorders?: EventRecorder[];
}

export interface WiredGuard {
  guard: Guard;
  outputs: EventOutputs;
  jsonl: JsonlRecorder;
  /** Where the JSON lines go now: a file path or "stdout". */
  readonly eventsTarget: string;
  resolver: ProcessResolver;
  /** How callers are found, for the startup line ("off", "sockets by sock_diag ..."). */
  attribution: string;
  /**
   * Applies a new config (SIGHUP): the policy at once, events.file reopened (at its new path when it
   * changed). Throws, keeping the old policy, when it is invalid. Resolves with the changed settings
   * that take effect only after a restart (see planReload).
   */
  reload(config: ImdsguardConfig): Promise<{ needRestart: string[]; problems: string[] }>;
  /** Reopens the events file at its path (SIGHUP after logrotate); nothing when events go to stdout. */
  reopenEvents(): Promise<void>;
  close(): Promise<void>;
}

/** How often a failed read of the instance identity document is tried again, ms. */
const IDENTITY_RETRY_MS = 60_000;

/** How often the attribution counters are fetched from the worker for the metrics, ms. */
const ATTRIBUTION_STATS_MS = 5000;

interface Attribution {
  resolver: ProcessResolver;
  /** For the startup line: how callers are found. */
  description: string;
  /** The latest counters (undefined until the first fetch, or when attribution is off). */
  stats: () => ResolverStats | undefined;
  close(): Promise<void>;
}

/** Most of one lookup's search on the worker when events wait for it, ms (see workerBudgetMs). */
const LATE_LOOKUP_BUDGET_MS = 250;

/**
 * The worker's budget for one lookup: a little under the request's timeout, so that a decision gets
 * what is known; when events wait for late lookups, up to LATE_LOOKUP_BUDGET_MS (the worker takes
 * lookups one at a time: a longer search would hold the ones behind it).
 */
export function workerBudgetMs(timeoutMs: number, eventWaitMs: number): number {
  return Math.max(1, Math.floor(timeoutMs * 0.8), Math.min(eventWaitMs, LATE_LOOKUP_BUDGET_MS));
}

/** Builds the process resolver from config. */
function createAttribution(config: ImdsguardConfig, override?: ProcessResolver): Attribution {
  if (override) {
    return {
      resolver: override,
      description: 'provided by the caller',
      stats: () => undefined,
      close: () => override.close(),
    };
  }
  if (!config.guard.attribution.enabled) {
    return { resolver: noAttribution, description: 'off', stats: () => undefined, close: async () => {} };
  }
  // ---- process attribution ----
  // The resolver's own budget (workerBudgetMs) ends a little before the guard's timeout, or goes on
  // for the event when events wait for late lookups.
  // On its own thread: a busy guard's event loop would otherwise stretch every lookup's /proc reads;
  // the cheap cases (sock_diag, a known or brand-new process) are answered inline first.
  const a = config.guard.attribution;
  const threaded = createThreadedProcResolver({
    budgetMs: workerBudgetMs(a.timeoutMs, a.eventWaitMs),
    inlineBudgetMs: a.inlineBudgetMs,
    procRoot: a.procRoot,
    podsRoot: a.podsRoot,
    containerLogsRoot: a.containerLogsRoot,
    cniNetworksRoot: a.cniNetworksRoot,
    vpcCniIpamFile: a.vpcCniIpamFile,
    cgroupRoot: a.cgroupRoot,
  });
  const diag = loadSockDiag();
  const description = diag.diag
    ? `sockets by sock_diag (native addon), processes by /proc${a.inlineBudgetMs > 0 ? `, inline budget ${a.inlineBudgetMs} ms` : ''}`
    : `sockets by /proc/net/tcp (${diag.reason})`;
  let last: ResolverStats | undefined;
  const fetch = () =>
    void threaded.stats().then(
      (st) => {
        last = st;
      },
      () => {},
    );
  fetch();
  const timer = setInterval(fetch, ATTRIBUTION_STATS_MS);
  timer.unref();
  return {
    resolver: threaded,
    description,
    stats: () => last,
    close: () => {
      clearInterval(timer);
      return threaded.close();
    },
  };
  // ---- end of process attribution ----
}

/**
 * The outputs of guard events, built from config: the event store, the alert pipeline (sinks,
 * spool, noise control), the metrics and the admin endpoint.
 */
export interface EventOutputsDeps {
  hostname: string;
  /** Readiness of the guard itself, for /readyz. */
  isReady: () => boolean;
  /** Operational messages (sink failing or recovered, drops). Never given secrets. */
  log?: (message: string) => void;
  /** The attribution resolver's latest counters, for the metrics. */
  attributionStats?: () => ResolverStats | undefined;
  /** The instance's identity (caller summary records, the CloudWatch Logs stream); undefined when unknown. */
  identity?: () => Promise<InstanceIdentity | undefined>;
  /** The guard's mode, for caller summary records of quiet intervals. */
  mode?: GuardMode;
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
    // The sinks, the spool and the pipeline are loaded only when a sink is configured (start-up).
    if (alerts.webhooks.length > 0 || alerts.sinks.length > 0) {
      const [{ createSink, sinkConfigs }, { AlertPipeline }] = await Promise.all([
        import('./alerts/sinks/index.js'),
        import('./alerts/pipeline.js'),
      ]);
      const configs = sinkConfigs(alerts);
      const sinks: AlertSink[] = [];
      try {
        const identity = deps.identity;
        for (const cfg of configs)
          sinks.push(
            createSink(cfg, {
              hostname: deps.hostname,
              timeoutMs: alerts.timeoutMs,
              ...(identity ? { instanceId: async () => (await identity())?.instanceId } : {}),
            }),
          );
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

    // The caller summary: only when a sink takes its records.
    let callerShipper: CallerShipper | undefined;
    if (pipeline?.takes('callers')) {
      const p = pipeline;
      const { CallerShipper } = await import('./callers/ship.js');
      const shipper = new CallerShipper({
        intervalMs: alerts.callers.intervalMs,
        maxCallers: alerts.callers.maxCallers,
        host: deps.hostname,
        mode: deps.mode ?? 'enforce',
        identity: deps.identity ?? (async () => undefined),
        publish: (records) => p.publish(records),
      });
      callerShipper = shipper;
      // Closed before the pipeline (closers run in reverse): the last interval goes into the spool.
      closers.push(() => shipper.close());
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
    if (callerShipper) recorders.push(callerShipper);
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

export async function wireGuard(options: WireOptions): Promise<WiredGuard> {
  const { config, log } = options;
  const hostname = options.hostname ?? osHostname();
  const jsonl =
    config.events.file !== undefined
      ? createJsonlRecorder({ file: config.events.file, log })
      : createJsonlRecorder({ stream: options.stdout, log });
  const recorders: EventRecorder[] = [jsonl];
  if (config.events.file !== undefined && config.events.stdout) {
    recorders.push(createJsonlRecorder({ stream: options.stdout, log }));
  }
  const attribution = createAttribution(config, options.resolver);
  const resolver = attribution.resolver;
  let guard: Guard | undefined;
  let outputs: EventOutputs;
  const upstream = config.guard.upstream;
  const identity =
    config.guard.flavor === 'aws'
      ? identitySource(
          () => readInstanceIdentity({ upstream, timeoutMs: config.alerts.callers.identityTimeoutMs }),
          { retryMs: IDENTITY_RETRY_MS, log },
        )
      : undefined;
  try {
    outputs = await createEventOutputs(config.events, config.alerts, config.admin, {
      hostname,
      isReady: () => guard?.isReady() ?? false,
      log,
      attributionStats: attribution.stats,
      mode: config.guard.mode,
      ...(identity ? { identity: () => identity.get() } : {}),
    });
  } catch (err) {
    await Promise.all(recorders.map((r) => r.close()));
    await attribution.close();
    throw err;
  }
  recorders.push(...outputs.recorders, ...(options.extraRecorders ?? []));
  // the token ledger, kept in guard.stateDir across restarts (a bad file is a warning, never a failure)
  const ledger = await openTokenLedger({
    ...(config.guard.stateDir !== undefined ? { stateDir: config.guard.stateDir } : {}),
    maxEntries: config.guard.tokenLedger.maxEntries,
    log,
  });
  try {
    guard = createGuard({
      tokenLedger: ledger,
      config: config.guard,
      resolver,
      recorders,
      hostname,
      log,
      ...(options.now ? { now: options.now } : {}),
    });
  } catch (err) {
    await outputs.close();
    await Promise.all(recorders.map((r) => r.close()));
    await attribution.close();
    await ledger.close();
    throw err;
  }
  const g = guard;
  let closing: Promise<void> | undefined;
  return {
    guard: g,
    outputs,
    jsonl,
    get eventsTarget() {
      return jsonl.file ?? 'stdout';
    },
    resolver,
    attribution: attribution.description,
    async reload(next) {
      const plan = planReload(config, next, jsonl.file);
      g.reload(next.guard);
      const problems: string[] = [];
      try {
        await jsonl.reopen(plan.eventsFile);
      } catch (err) {
        // The policy is applied; the events keep their file, reopened (logrotate may have renamed it).
        problems.push(`${errorMessage(err)}; events still go to ${jsonl.file ?? 'stdout'}`);
        await jsonl.reopen().catch((e: unknown) => problems.push(errorMessage(e)));
      }
      return { needRestart: plan.needRestart, problems };
    },
    reopenEvents: () => jsonl.reopen(),
    close() {
      closing ??= (async () => {
        await g.close();
        await ledger.close();
        // the guard's recorders first (they flush), then the outputs (store, alerts, admin)
        await Promise.allSettled(
          recorders.filter((r) => !outputs.recorders.includes(r)).map((r) => r.close()),
        );
        await outputs.close();
        await attribution.close();
      })();
      return closing;
    },
  };
}
