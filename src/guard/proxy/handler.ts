import {
  Agent,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { GuardConfig } from '../../config/schema.js';
import { type ClassifiedRequest, classifyRequest } from '../../imds/classify.js';
import { FLAVOR_SPECS } from '../../imds/flavors.js';
import { type Caller, connectionInfo, type ProcessResolver } from '../attribution/types.js';
import type { Action, EventRecorder, GuardEvent, ImdsVersion } from '../events/types.js';
import type { Decision, Policy } from '../policy/types.js';
import type { Trap } from '../trap/index.js';
import type { UpstreamLimiter } from './limiter.js';
import { LocalAddresses } from './local-addresses.js';
import { errorAnswer, rawErrorResponse } from './responses.js';

/**
 * The request path of the guard: classify -> (attribution if needed) -> decide -> forward, refuse
 * or trap -> one event. Everything the path needs per request was compiled before (policy, trap,
 * error pages); the event is recorded synchronously into recorders that buffer it.
 */

/** What a request sees of the guard's current configuration; swapped atomically on reload. */
export interface GuardState {
  readonly config: GuardConfig;
  readonly policy: Policy;
  readonly trap: Trap;
  /** Whether attribution runs (a resolver exists and guard.attribution.enabled). */
  readonly attribution: boolean;
}

export interface HandlerDeps {
  state(): GuardState;
  resolver: ProcessResolver;
  recorders: readonly EventRecorder[];
  limiter: UpstreamLimiter;
  hostname: string;
  now: () => number;
  log: (message: string) => void;
  counters: { requests: number; inFlight: number; pendingEvents: number };
}

/** Request headers never forwarded (hop-by-hop, RFC 9110 7.6.1). Connection-listed names are not honoured. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * One agent for every upstream request. The metadata service closes every connection, so there is
 * nothing to keep alive; concurrency is bounded by the guard's own limiter, not by the agent.
 */
const upstreamAgent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });

let seq = 0;
const procTag = Math.floor(Math.random() * 0xffff)
  .toString(16)
  .padStart(4, '0');

/** Time-ordered unique event id. */
export function eventId(nowMs: number): string {
  seq = (seq + 1) % 0x1000000;
  return `${nowMs.toString(36).padStart(9, '0')}-${procTag}-${seq.toString(36).padStart(5, '0')}`;
}

/**
 * Per connection: the lookup and when it started. When a rule needs the caller, a lookup that found
 * nothing is retried after 1 s; for events alone it is never retried (the event already says why).
 */
const callerCache = new WeakMap<Socket, { p: Promise<Caller>; at: number; none: boolean }>();
const RETRY_NONE_AFTER_MS = 1000;

async function resolveCaller(
  deps: HandlerDeps,
  socket: Socket,
  timeoutMs: number,
  retryNone: boolean,
): Promise<Caller> {
  const now = performance.now();
  const cached = callerCache.get(socket);
  if (cached !== undefined && !(retryNone && cached.none && now - cached.at > RETRY_NONE_AFTER_MS))
    return cached.p;
  const entry = { p: undefined as unknown as Promise<Caller>, at: now, none: false };
  entry.p = (async () => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Caller>((resolve) => {
      timer = setTimeout(
        () => resolve({ resolved: 'none', error: `attribution timed out after ${timeoutMs} ms` }),
        timeoutMs,
      );
    });
    try {
      const c = await Promise.race([
        deps.resolver.resolve(connectionInfo(socket)).catch(
          (err: unknown): Caller => ({
            resolved: 'none',
            error: `attribution failed: ${(err as Error)?.message ?? String(err)}`,
          }),
        ),
        timeout,
      ]);
      entry.none = c.resolved === 'none';
      return c;
    } finally {
      clearTimeout(timer);
    }
  })();
  // One lookup per connection: a process does not change under its socket. A lookup that found
  // nothing is retried at most once a second, never on every request of a busy connection.
  callerCache.set(socket, entry);
  return entry.p;
}

interface Pending {
  start: number;
  t0: number;
  cls: ClassifiedRequest | undefined;
  method: string;
  decision: Decision;
  action: Action;
  caller?: Caller;
  attributionMs?: number;
  upstream?: GuardEvent['upstream'];
  mode: GuardConfig['mode'];
  flavor: string;
  alert: boolean;
}

function buildEvent(deps: HandlerDeps, p: Pending, socket: Socket | null, status: number): GuardEvent {
  const cls = p.cls;
  const request: GuardEvent['request'] = {
    method: p.method,
    path: cls?.path || '-',
    version: (cls?.version ?? 'unknown') as ImdsVersion,
    flavor: p.flavor,
    client: { address: socket?.remoteAddress ?? '', port: socket?.remotePort ?? 0 },
  };
  if (cls?.userAgent !== undefined) request.userAgent = cls.userAgent.slice(0, 512);
  if (cls?.host !== undefined) request.hostHeader = cls.host.slice(0, 256);
  const e: GuardEvent = {
    v: 1,
    id: eventId(p.start),
    time: new Date(p.start).toISOString(),
    host: deps.hostname,
    mode: p.mode,
    decision: p.decision.decision,
    action: p.action,
    rule: p.decision.rule,
    reason: p.decision.reason,
    request,
    status,
    alert: p.alert,
    durationMs: Math.round((performance.now() - p.t0) * 1000) / 1000,
  };
  if (p.upstream) e.upstream = p.upstream;
  if (p.caller) {
    // the socket knows whether the client shares the guard's network namespace
    e.caller =
      p.caller.netns === undefined && cls?.clientNetns !== undefined
        ? { ...p.caller, netns: cls.clientNetns }
        : p.caller;
  }
  if (p.attributionMs !== undefined) e.attributionMs = p.attributionMs;
  return e;
}

function emit(deps: HandlerDeps, event: GuardEvent): void {
  for (const r of deps.recorders) {
    try {
      r.record(event);
    } catch (err) {
      deps.log(`events: a recorder threw and was skipped: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

function protocolDecision(rule: string, reason: string, status: number): Decision {
  return { decision: 'deny', rule, reason, status, alert: true };
}

/** Creates the 'request' handler of the guard's HTTP servers. */
export function createRequestHandler(deps: HandlerDeps) {
  const localAddresses = new LocalAddresses();
  return function onRequest(req: IncomingMessage, res: ServerResponse): void {
    try {
      handle(req, res);
    } catch (err) {
      // a bug must cost one request, never the guard
      deps.log(`guard: internal error on a request: ${(err as Error)?.message ?? String(err)}`);
      if (!res.headersSent) {
        const a = errorAnswer(deps.state().config.flavor, 500);
        res.writeHead(500, { ...a.headers, connection: 'close' });
        res.end(a.body);
      } else res.destroy();
    }
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    const start = deps.now();
    const state = deps.state();
    const config = state.config;
    const socket = req.socket;
    deps.counters.requests++;
    deps.counters.inFlight++;
    const cls = classifyRequest(
      {
        method: req.method ?? '',
        target: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
        clientNetns: localAddresses.has(socket.remoteAddress ?? '') ? 'host' : 'other',
      },
      config.flavor,
      config.authHeader,
    );
    const p: Pending = {
      start,
      t0,
      cls,
      method: cls.method.slice(0, 16),
      decision: undefined as unknown as Decision,
      action: 'forwarded',
      mode: config.mode,
      flavor: config.flavor,
      alert: false,
    };
    let recorded = false;
    res.once('close', () => {
      deps.counters.inFlight--;
      if (recorded) return;
      recorded = true;
      // The client may leave while attribution is still pending, before any decision exists.
      if (p.decision === undefined) {
        p.decision = protocolDecision(
          'client-gone',
          'the client closed the connection before a decision',
          499,
        );
        p.action = 'error';
      }
      const status = res.headersSent ? res.statusCode : 499;
      if (!res.writableFinished && p.action === 'forwarded' && p.upstream === undefined) {
        p.upstream = { error: 'reset' };
      }
      if (eventCaller === undefined) {
        emit(deps, buildEvent(deps, p, socket, status));
        return;
      }
      // Attribution for the event only: it ran beside the request; the event waits for it (bounded
      // by attribution.timeoutMs), the client never did.
      deps.counters.pendingEvents++;
      eventCaller.then(
        () => {
          deps.counters.pendingEvents--;
          emit(deps, buildEvent(deps, p, socket, status));
        },
        () => {
          deps.counters.pendingEvents--;
          emit(deps, buildEvent(deps, p, socket, status));
        },
      );
    });

    const startAttribution = (forPolicy: boolean): Promise<void> => {
      const ta = performance.now();
      return resolveCaller(deps, socket, config.attribution.timeoutMs, forPolicy).then((caller) => {
        p.caller = caller;
        p.attributionMs = Math.round((performance.now() - ta) * 1000) / 1000;
      });
    };
    let eventCaller: Promise<void> | undefined;
    if (state.attribution && state.policy.needsCaller(cls)) {
      // a rule depends on the caller: the decision waits (bounded by attribution.timeoutMs)
      startAttribution(true).then(proceed, proceed);
    } else if (state.attribution && config.attribution.forEvents) {
      const attributed = startAttribution(false);
      if (config.attribution.holdV1 && cls.version === 'v1') {
        // A tokenless caller is what `imdsguard callers` must name before IMDSv2 is enforced, and
        // short-lived ones (curl, scripts) exit before a lookup that runs beside the request can
        // read their socket: hold the response until the caller is known (bounded by timeoutMs).
        attributed.then(proceed, proceed);
      } else {
        eventCaller = attributed;
        proceed();
      }
    } else {
      proceed();
    }

    function proceed(): void {
      if (res.destroyed || socket.destroyed) {
        p.decision = protocolDecision(
          'client-gone',
          'the client closed the connection before a decision',
          499,
        );
        p.action = 'error';
        res.destroy();
        return;
      }
      const decision = state.policy.decide(cls, state.attribution ? p.caller : undefined);
      p.decision = decision;
      // Protocol limits apply in every mode: bodies are bounded before anything is forwarded.
      const cl = req.headers['content-length'];
      const te = req.headers['transfer-encoding'];
      const hasBody = (cl !== undefined && cl !== '0') || te !== undefined;
      if (cl !== undefined && Number(cl) > config.limits.maxBodyBytes) {
        refuse(
          protocolDecision(
            'body-too-large',
            `request body of ${cl} bytes exceeds ${config.limits.maxBodyBytes}`,
            413,
          ),
          true,
        );
        return;
      }
      const protocolDeny =
        decision.decision === 'deny' &&
        (decision.rule === 'connect' || decision.rule === 'smuggling' || decision.rule === 'malformed-path');
      if (config.mode === 'trap' && !protocolDeny) {
        p.action = 'trapped';
        p.alert = true;
        const spec = FLAVOR_SPECS[config.flavor];
        const tokenHeader = spec.token ? req.headers[spec.token.tokenHeader] : undefined;
        const a = state.trap.answer(cls, Array.isArray(tokenHeader) ? tokenHeader[0] : tokenHeader);
        if (hasBody) res.setHeader('connection', 'close');
        res.writeHead(a.status, a.headers);
        res.end(cls.method === 'HEAD' ? undefined : a.body);
        return;
      }
      if (decision.decision === 'deny' && (config.mode === 'enforce' || protocolDeny)) {
        refuse(decision, hasBody || protocolDeny || decision.rule === 'absolute-form');
        return;
      }
      if (decision.decision === 'deny') {
        p.action = 'flagged';
        p.alert = true;
      } else {
        p.alert = decision.alert;
      }
      forward(hasBody);
    }

    function refuse(decision: Decision, closeConnection: boolean): void {
      p.decision = decision;
      p.action = 'refused';
      p.alert = true;
      const a = errorAnswer(config.flavor, decision.status);
      if (config.revealRule) res.setHeader('x-imdsguard-rule', decision.rule);
      if (closeConnection) res.setHeader('connection', 'close');
      res.writeHead(a.status, a.headers);
      res.end(cls.method === 'HEAD' ? undefined : a.body);
    }

    /** The request was allowed (or flagged) but could not be served: keep the verdict, say what failed. */
    function fail(status: number, what: string, closeConnection: boolean): void {
      if (res.headersSent || res.destroyed) return;
      p.action = 'error';
      p.alert = true;
      p.decision = { ...p.decision, reason: `${p.decision.reason}; not served: ${what}` };
      const a = errorAnswer(config.flavor, status);
      if (closeConnection) res.setHeader('connection', 'close');
      res.writeHead(a.status, a.headers);
      res.end(cls.method === 'HEAD' ? undefined : a.body);
    }

    function forward(hasBody: boolean): void {
      const up = config.upstream;
      const limits = config.limits;
      const cancel = deps.limiter.acquire(
        () => send(),
        () => fail(503, `no upstream connection became free within ${limits.upstreamTimeoutMs} ms`, hasBody),
      );
      if (cancel === false) {
        fail(
          503,
          `upstream queue full (${limits.maxUpstreamConnections} connections, ${limits.maxQueuedRequests} waiting)`,
          hasBody,
        );
        return;
      }
      res.once('close', cancel);

      function send(): void {
        let released = false;
        const release = () => {
          if (!released) {
            released = true;
            deps.limiter.release();
          }
        };
        if (res.destroyed) {
          release();
          return;
        }
        const headers: OutgoingHttpHeaders = {};
        const raw = req.rawHeaders;
        const spec = FLAVOR_SPECS[config.flavor];
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i] as string;
          const lower = name.toLowerCase();
          if (HOP_BY_HOP.has(lower) || lower === config.authHeader || lower === 'host') continue;
          const value = raw[i + 1] as string;
          const prev = headers[name];
          headers[name] =
            prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
        }
        // Keep a metadata host name (the service may look at it); otherwise name the upstream.
        const host = cls.host?.toLowerCase();
        headers['Host'] =
          host !== undefined && spec.hostnames.some((h) => host === h || host.startsWith(`${h}:`))
            ? (cls.host as string)
            : up.authority;
        headers['Connection'] = 'close';
        const tu = performance.now();
        let upReq: ReturnType<typeof httpRequest>;
        try {
          upReq = httpRequest({
            host: up.host,
            port: up.port,
            method: cls.method,
            path: cls.forwardPath,
            headers,
            agent: upstreamAgent,
            setHost: false,
            timeout: limits.upstreamTimeoutMs,
          });
        } catch (err) {
          // node refuses to send a header it considers invalid: refuse the request, stay up
          release();
          refuse(
            protocolDecision(
              'malformed-request',
              `request cannot be forwarded: ${(err as NodeJS.ErrnoException).code ?? 'invalid header'}`,
              400,
            ),
            true,
          );
          return;
        }
        let bodyBytes = 0;
        upReq.on('timeout', () => {
          p.upstream = { error: 'timeout', latencyMs: Math.round(performance.now() - tu) };
          upReq.destroy(new Error('upstream timeout'));
        });
        upReq.on('error', (err: NodeJS.ErrnoException) => {
          release();
          if (p.upstream === undefined) {
            p.upstream = {
              error: err.code === 'ECONNRESET' ? 'reset' : 'unreachable',
              latencyMs: Math.round(performance.now() - tu),
            };
          }
          if (res.headersSent) {
            res.destroy();
            return;
          }
          if (p.upstream.error === 'timeout') {
            fail(504, `the metadata service did not answer within ${limits.upstreamTimeoutMs} ms`, hasBody);
          } else {
            fail(502, `the metadata service is unreachable (${err.code ?? 'error'})`, hasBody);
          }
        });
        upReq.on('response', (upRes) => {
          const status = upRes.statusCode ?? 502;
          p.upstream = { status, latencyMs: Math.round((performance.now() - tu) * 1000) / 1000 };
          const out: string[] = [];
          const rh = upRes.rawHeaders;
          for (let i = 0; i < rh.length; i += 2) {
            const lower = (rh[i] as string).toLowerCase();
            if (HOP_BY_HOP.has(lower)) continue;
            out.push(rh[i] as string, rh[i + 1] as string);
          }
          if (config.revealRule && p.action === 'flagged') out.push('x-imdsguard-rule', p.decision.rule);
          try {
            res.writeHead(status, upRes.statusMessage, out);
          } catch {
            // an upstream header node will not repeat: fail this request, not the guard
            upRes.destroy();
            fail(502, 'the metadata service sent an invalid response header', true);
            return;
          }
          upRes.on('error', () => res.destroy());
          upRes.on('end', release);
          upRes.on('close', release);
          upRes.pipe(res);
        });
        res.once('close', () => {
          if (!upReq.destroyed && !res.writableFinished) upReq.destroy();
          release();
        });
        if (hasBody) {
          req.on('data', (chunk: Buffer) => {
            bodyBytes += chunk.length;
            if (bodyBytes > limits.maxBodyBytes) {
              req.unpipe(upReq);
              upReq.destroy();
              release();
              if (!res.headersSent) {
                refuse(
                  protocolDecision(
                    'body-too-large',
                    `request body exceeds ${limits.maxBodyBytes} bytes`,
                    413,
                  ),
                  true,
                );
              } else res.destroy();
            }
          });
          req.pipe(upReq);
        } else upReq.end();
      }
    }
  }
}

/** The event of a request refused at the socket level (before or instead of normal handling). */
function refusedOnSocket(
  deps: HandlerDeps,
  state: GuardState,
  socket: Socket,
  start: number,
  r: { rule: string; reason: string; status: number; method: string; path: string },
): GuardEvent {
  return {
    v: 1,
    id: eventId(start),
    time: new Date(start).toISOString(),
    host: deps.hostname,
    mode: state.config.mode,
    decision: 'deny',
    action: 'refused',
    rule: r.rule,
    reason: r.reason,
    request: {
      method: r.method,
      path: r.path,
      version: 'unknown',
      flavor: state.config.flavor,
      client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    },
    status: r.status,
    alert: true,
  };
}

/** Answers what the HTTP parser refused (malformed requests, absurd headers, slowloris), with an event. */
export function createClientErrorHandler(deps: HandlerDeps) {
  return function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = err.code ?? 'ERR';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const state = deps.state();
    let status = 400;
    let rule = 'malformed-request';
    let reason = `malformed HTTP request (${code})`;
    if (code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      rule = 'header-overflow';
      reason = `request head larger than ${state.config.limits.maxHeaderBytes} bytes`;
    } else if (
      code === 'ERR_HTTP_REQUEST_TIMEOUT' ||
      code === 'ERR_HTTP_HEADERS_TIMEOUT' ||
      code === 'ETIMEDOUT'
    ) {
      status = 408;
      rule = 'request-timeout';
      reason = `request not received within ${state.config.limits.headersTimeoutMs} ms (slowloris?)`;
    } else if (code === 'HPE_UNEXPECTED_CONTENT_LENGTH' || code === 'HPE_INVALID_TRANSFER_ENCODING') {
      rule = 'smuggling';
      reason = `ambiguous message framing (${code})`;
    }
    const event = refusedOnSocket(deps, state, socket, deps.now(), {
      rule,
      reason,
      status,
      method: '-',
      path: '-',
    });
    try {
      socket.end(rawErrorResponse(state.config.flavor, status));
    } catch {
      socket.destroy();
    }
    socket.destroySoon?.();
    emit(deps, event);
  };
}

/** CONNECT and Upgrade requests: refused with an event (node would otherwise drop them silently). */
export function createSpecialHandler(deps: HandlerDeps, kind: 'connect' | 'upgrade') {
  return function onSpecial(req: IncomingMessage, socket: Socket): void {
    const state = deps.state();
    const status = kind === 'connect' ? 405 : 400;
    const start = deps.now();
    const cls = classifyRequest(
      { method: req.method ?? '', target: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders },
      state.config.flavor,
      state.config.authHeader,
    );
    const event = refusedOnSocket(deps, state, socket, start, {
      rule: kind,
      reason: kind === 'connect' ? 'CONNECT requests are refused' : 'protocol upgrades are refused',
      status,
      method: (req.method ?? '-').slice(0, 16),
      path: cls.path || '-',
    });
    if (cls.userAgent !== undefined) event.request.userAgent = cls.userAgent.slice(0, 512);
    if (cls.host !== undefined) event.request.hostHeader = cls.host.slice(0, 256);
    socket.on('error', () => {});
    socket.end(rawErrorResponse(state.config.flavor, status));
    emit(deps, event);
  };
}
