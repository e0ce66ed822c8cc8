import { hostname as osHostname } from 'node:os';
import type { ImdsguardConfig } from '../config/schema.js';
import type { ResolverStats } from './attribution/index.js';
import { loadSockDiag } from './attribution/sock-diag.js';
import { createThreadedProcResolver } from './attribution/threaded.js';
import { noAttribution, type ProcessResolver } from './attribution/types.js';
import { createJsonlRecorder, type JsonlRecorder } from './events/jsonl.js';
import { createEventOutputs, type EventOutputs } from './events/outputs.js';
import type { EventRecorder } from './events/types.js';
import { createGuard, type Guard } from './index.js';

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
  /** Where the JSON lines go: a file path or "stdout". */
  eventsTarget: string;
  resolver: ProcessResolver;
  /** How callers are found, for the startup line ("off", "sockets by sock_diag ..."). */
  attribution: string;
  /** Reloads the policy from a new config (SIGHUP). Throws, keeping the old one, when it is invalid. */
  reload(config: ImdsguardConfig): void;
  close(): Promise<void>;
}

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
  // ---- process attribution (issue 4) ----
  // The resolver's own budget ends a little before the guard's timeout, so it returns what it knows.
  // On its own thread: a busy guard's event loop would otherwise stretch every lookup's /proc reads;
  // the cheap cases (sock_diag, a known or brand-new process) are answered inline first.
  const a = config.guard.attribution;
  const threaded = createThreadedProcResolver({
    budgetMs: Math.max(1, Math.floor(a.timeoutMs * 0.8)),
    inlineBudgetMs: a.inlineBudgetMs,
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

export async function wireGuard(options: WireOptions): Promise<WiredGuard> {
  const { config, log } = options;
  const hostname = options.hostname ?? osHostname();
  const eventsTarget = config.events.file ?? 'stdout';
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
  try {
    outputs = await createEventOutputs(config.events, config.alerts, config.admin, {
      hostname,
      isReady: () => guard?.isReady() ?? false,
      log,
      attributionStats: attribution.stats,
    });
  } catch (err) {
    await Promise.all(recorders.map((r) => r.close()));
    await attribution.close();
    throw err;
  }
  recorders.push(...outputs.recorders, ...(options.extraRecorders ?? []));
  try {
    guard = createGuard({
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
    throw err;
  }
  const g = guard;
  let closing: Promise<void> | undefined;
  return {
    guard: g,
    outputs,
    jsonl,
    eventsTarget,
    resolver,
    attribution: attribution.description,
    reload(next) {
      g.reload(next.guard);
    },
    close() {
      closing ??= (async () => {
        await g.close();
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
