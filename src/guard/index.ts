import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { GuardConfig } from '../config/schema.js';
import { ImdsguardError } from '../errors.js';
import { bindServer, formatListen, type ListenAddress } from '../net/listen.js';
import { noAttribution, type ProcessResolver } from './attribution/types.js';
import type { EventRecorder, GuardMode } from './events/types.js';
import { compilePolicy } from './policy/compile.js';
import {
  createClientErrorHandler,
  createRequestHandler,
  createSpecialHandler,
  type GuardState,
  type HandlerDeps,
} from './proxy/handler.js';
import { UpstreamLimiter } from './proxy/limiter.js';
import { createTrap } from './trap/index.js';

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
  /** Binds every listen address. Throws IMDSGUARD_E_LISTEN with the address and the reason. */
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
    trap: createTrap(config.trap, config.flavor, hostname, now),
    attribution,
  });
}

function applyLimits(server: Server, config: GuardConfig): void {
  const l = config.limits;
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxConnections = l.maxClientConnections;
  server.maxRequestsPerSocket = 1000;
}

export function createGuard(options: GuardOptions): Guard {
  const resolver = options.resolver ?? noAttribution;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  let state = buildState(options.config, resolver, options.hostname, now);
  const limits = options.config.limits;
  const limiter = new UpstreamLimiter(
    limits.maxUpstreamConnections,
    limits.maxQueuedRequests,
    limits.upstreamTimeoutMs,
  );
  const counters = { requests: 0, inFlight: 0, pendingEvents: 0 };
  const deps: HandlerDeps = {
    state: () => state,
    resolver,
    recorders: options.recorders ?? [],
    limiter,
    hostname: options.hostname,
    now,
    log,
    counters,
  };
  const onRequest = createRequestHandler(deps);
  const onClientError = createClientErrorHandler(deps);
  const onConnect = createSpecialHandler(deps, 'connect');
  const onUpgrade = createSpecialHandler(deps, 'upgrade');
  const servers: Server[] = [];
  let bound: ListenAddress[] = [];
  let ready = false;
  let closing = false;

  function makeServer(): Server {
    const server = createServer(
      {
        maxHeaderSize: state.config.limits.maxHeaderBytes,
        requireHostHeader: false,
        connectionsCheckingInterval: 500,
        joinDuplicateHeaders: false,
        requestTimeout: state.config.limits.requestTimeoutMs,
        headersTimeout: state.config.limits.headersTimeoutMs,
      },
      onRequest,
    );
    applyLimits(server, state.config);
    server.on('clientError', onClientError);
    server.on('connect', onConnect);
    server.on('upgrade', onUpgrade);
    return server;
  }

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
      const addrs = state.config.listen;
      const out: ListenAddress[] = [];
      for (const addr of addrs) {
        const server = makeServer();
        try {
          out.push(await bindServer(server, addr, { exclusive: true }));
          servers.push(server);
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          const v6Loopback = isIP(addr.host) === 6 && addr.host === '::1';
          if (v6Loopback && (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT') && addrs.length > 1) {
            log(`guard: IPv6 loopback is not available, not listening on ${formatListen(addr)}`);
            continue;
          }
          await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
          servers.length = 0;
          const why =
            e.code === 'EADDRINUSE'
              ? 'the address is already in use (another guard or service?)'
              : e.code === 'EACCES'
                ? 'permission denied (ports below 1024 need privileges)'
                : e.code === 'EADDRNOTAVAIL'
                  ? 'the address is not on this host'
                  : (e.message ?? String(err));
          throw new ImdsguardError(
            'IMDSGUARD_E_LISTEN',
            `guard cannot listen on ${formatListen(addr)}: ${why}`,
            {
              cause: err,
              hint: 'choose another --listen address or port',
            },
          );
        }
      }
      bound = out;
      ready = true;
    },
    reload(config) {
      const next = buildState(config, resolver, options.hostname, now);
      const old = state.config;
      if (JSON.stringify(old.listen) !== JSON.stringify(config.listen)) {
        log('guard: listen addresses changed in the config; restart the guard to apply them');
      }
      state = next;
      limiter.max = config.limits.maxUpstreamConnections;
      limiter.maxQueue = config.limits.maxQueuedRequests;
      limiter.waitMs = config.limits.upstreamTimeoutMs;
      for (const s of servers) applyLimits(s, config);
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

export type { GuardState } from './proxy/handler.js';
