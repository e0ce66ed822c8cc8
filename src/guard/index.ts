import type { Server } from 'node:http';
import { type GuardConfig, remoteListenProblem } from '../config/schema.js';
import { errorMessage, ImdsguardError } from '../errors.js';
import { formatListen, type ListenAddress } from '../net/listen.js';
import { noAttribution, type ProcessResolver } from './attribution/types.js';
import { EventIds } from './events/build.js';
import type { EventRecorder, GuardMode } from './events/types.js';
import { compilePolicy } from './policy/compile.js';
import { CallerLookup } from './proxy/caller-lookup.js';
import { Connections } from './proxy/connections.js';
import type { GuardState, ProxyContext } from './proxy/context.js';
import { Forwarder } from './proxy/forward.js';
import { createRequestHandlers } from './proxy/handler.js';
import { UpstreamLimiter } from './proxy/limiter.js';
import { LocalAddresses } from './proxy/local-addresses.js';
import { applyLimits, bindAll, createProxyServer } from './proxy/server.js';
import { createClientErrorHandler, createSpecialHandler } from './proxy/socket-refusals.js';
import { TokenGuard } from './tokens/guard.js';
import { memoryLedger, type OpenLedger } from './tokens/persist.js';
import { GuardRedaction } from './tokens/redact-event.js';
import { LazyTrap } from './trap/lazy.js';

/**
 * The guard: a policy-enforcing reverse proxy in front of the metadata service. createGuard builds
 * it; the caller starts and closes it. It owns its servers only: the resolver and the recorders are
 * the caller's to close (wire.ts does it).
 */

export interface GuardOptions {
  /** The normalized, frozen guard config (config.guard). */
  config: GuardConfig;
  /** Finds the calling process. Default: noAttribution (caller rules then fail to compile). */
  resolver?: ProcessResolver;
  /** Every event goes to each; record() must not block, and a throwing recorder is skipped. */
  recorders?: EventRecorder[];
  /** Host name in events. */
  hostname: string;
  /** Clock, ms since the epoch (events' time). Default Date.now. */
  now?: () => number;
  /** Operational messages for a person (stderr). Never given secrets. */
  log?: (message: string) => void;
  /** Time close() waits for in-flight requests before cutting connections, ms. Default 5000. */
  drainTimeoutMs?: number;
  /**
   * The token ledger (wire.ts opens it in guard.stateDir). Default: one in memory. The guard does
   * not close it: its opener does.
   */
  tokenLedger?: OpenLedger;
}

export interface GuardStats {
  requests: number;
  inFlight: number;
  /** Events waiting for attribution before they are recorded. */
  pendingEvents: number;
  upstreamActive: number;
  upstreamQueued: number;
}

export interface Guard {
  /**
   * Binds every listen address. Throws IMDSGUARD_E_LISTEN with the address and the reason, and
   * IMDSGUARD_E_CONFIG for a non-loopback address the mode may not use (guard.allowRemoteListen).
   */
  start(): Promise<void>;
  /** The addresses actually bound (after start). */
  readonly addresses: ListenAddress[];
  /** http://HOST:PORT of the first bound address. */
  readonly url: string;
  readonly mode: GuardMode;
  /**
   * Recompiles the policy from a new config and swaps it in atomically; requests in flight finish
   * with the old one, connections stay open. Listen addresses do not change (restart for that).
   * Throws (keeping the old config) when the new one does not compile.
   */
  reload(config: GuardConfig): void;
  /** Stops accepting, lets requests in flight finish (bounded), then closes every connection. */
  close(): Promise<void>;
  isReady(): boolean;
  stats(): GuardStats;
}

/**
 * Refuses a mode that may not run on these addresses (enforce or monitor on a non-loopback address
 * without guard.allowRemoteListen). The config schema refuses such a config already; this also holds
 * for the addresses actually bound when a reload changes the mode or the option but not the listener.
 */
function checkListeners(config: GuardConfig, addrs: readonly ListenAddress[]): void {
  for (const addr of addrs) {
    const problem = remoteListenProblem(config.mode, addr, config.allowRemoteListen);
    if (problem !== undefined) {
      throw new ImdsguardError('IMDSGUARD_E_CONFIG', `guard.listen: ${problem}`);
    }
  }
}

function buildState(
  config: GuardConfig,
  resolver: ProcessResolver,
  hostname: string,
  now: () => number,
): GuardState {
  const attribution = config.attribution.enabled && resolver !== noAttribution;
  return Object.freeze({
    config,
    policy: compilePolicy(config, { attribution }),
    trap: config.mode === 'trap' ? new LazyTrap(config.trap, config.flavor, hostname, now) : undefined,
    attribution,
  });
}

export function createGuard(options: GuardOptions): Guard {
  const resolver = options.resolver ?? noAttribution;
  const now = options.now ?? Date.now;
  const ledger = options.tokenLedger ?? memoryLedger(options.config.tokenLedger.maxEntries);
  const redaction = new GuardRedaction(ledger, options.config.authSecret, options.config.authHeader);
  // nothing the guard writes holds its secret or a token it issued
  const rawLog = options.log ?? (() => {});
  const log = (m: string) => rawLog(redaction.text(m));
  let state = buildState(options.config, resolver, options.hostname, now);
  const limits = options.config.limits;
  const limiter = new UpstreamLimiter(
    limits.maxUpstreamConnections,
    limits.maxQueuedRequests,
    limits.upstreamTimeoutMs,
  );
  const counters = { requests: 0, inFlight: 0, pendingEvents: 0 };
  const ctx: ProxyContext = {
    state: () => state,
    callers: new CallerLookup(resolver),
    connections: new Connections((err) =>
      log(`guard: internal error recording a request that was never served: ${errorMessage(err)}`),
    ),
    localAddresses: new LocalAddresses(),
    forwarder: new Forwarder(limiter),
    recorders: [redaction.recorder(options.recorders ?? [], log)],
    tokens: new TokenGuard(ledger),
    ids: new EventIds(),
    hostname: options.hostname,
    now,
    log,
    counters,
  };
  const handlers = {
    ...createRequestHandlers(ctx),
    onClientError: createClientErrorHandler(ctx),
    onConnect: createSpecialHandler(ctx, 'connect'),
    onUpgrade: createSpecialHandler(ctx, 'upgrade'),
  };
  let servers: Server[] = [];
  let bound: ListenAddress[] = [];
  let ready = false;
  let closing = false;

  return {
    get addresses() {
      return bound.map((a) => ({ ...a }));
    },
    get url() {
      const a = bound[0];
      if (!a) throw new ImdsguardError('IMDSGUARD_E_INTERNAL', 'guard.url read before start()');
      return `http://${formatListen(a)}`;
    },
    get mode() {
      return state.config.mode;
    },
    async start() {
      checkListeners(state.config, state.config.listen);
      // trap mode: the trap's module is loaded now, and a trap that cannot be built fails the start
      await state.trap?.ready;
      const r = await bindAll(
        state.config.listen,
        () => createProxyServer(state.config.limits, handlers),
        log,
      );
      servers = r.servers;
      bound = r.bound;
      ready = true;
    },
    reload(config) {
      // the listeners stay as they are: the new mode must be allowed on them
      checkListeners(config, bound);
      const next = buildState(config, resolver, options.hostname, now);
      const old = state.config;
      if (JSON.stringify(old.listen) !== JSON.stringify(config.listen)) {
        log('guard: listen addresses changed in the config; restart the guard to apply them');
      }
      state = next;
      redaction.configure(config.authSecret, config.authHeader);
      limiter.max = config.limits.maxUpstreamConnections;
      limiter.maxQueue = config.limits.maxQueuedRequests;
      limiter.waitMs = config.limits.upstreamTimeoutMs;
      for (const s of servers) applyLimits(s, config.limits);
    },
    async close() {
      if (closing) return;
      closing = true;
      ready = false;
      const drainMs = options.drainTimeoutMs ?? 5000;
      const closed = servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeIdleConnections();
          }),
      );
      const deadline = Date.now() + drainMs;
      while ((counters.inFlight > 0 || counters.pendingEvents > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        for (const s of servers) s.closeIdleConnections();
      }
      for (const s of servers) s.closeAllConnections();
      await Promise.all(closed);
    },
    isReady() {
      return ready;
    },
    stats() {
      return {
        requests: counters.requests,
        inFlight: counters.inFlight,
        pendingEvents: counters.pendingEvents,
        upstreamActive: limiter.active,
        upstreamQueued: limiter.queued,
      };
    },
  };
}

export type { GuardState } from './proxy/context.js';
