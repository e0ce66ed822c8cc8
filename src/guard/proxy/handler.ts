import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { writeImdsAnswer } from '../../imds/answer.js';
import { classifyRequest } from '../../imds/classify.js';
import type { Caller } from '../attribution/types.js';
import { buildEvent, emitEvent, type RequestRecord } from '../events/build.js';
import type { Action, GuardEvent } from '../events/types.js';
import { applyMode, protocolDeny } from '../policy/mode.js';
import type { Decision } from '../policy/types.js';
import type { GuardState, ProxyContext } from './context.js';
import { errorAnswer } from './responses.js';

/**
 * The request path of the guard, orchestration only: classify -> find the caller (when a rule needs
 * it) -> decide -> apply the mode -> forward, refuse or trap -> one event when the response closes.
 * The policy decides (policy/), forward.ts does the upstream I/O, caller-lookup.ts the attribution,
 * events/build.ts the event.
 */

export type { GuardState } from './context.js';

/** What is known about a request while it is served; becomes its event when the response closes. */
interface Pending {
  t0: number;
  decision: Decision | undefined;
  action: Action;
  alert: boolean;
  caller?: Caller;
  attributionMs?: number;
  upstream?: GuardEvent['upstream'];
}

/** Lower-case header names to their first value, from the raw list the policy judged. */
function headerView(raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (out[name] === undefined) out[name] = raw[i + 1] as string;
  }
  return out;
}

const CLIENT_GONE = protocolDeny('client-gone', 'the client closed the connection before a decision', 499);

/** Creates the 'request' handler of the guard's HTTP servers. */
export function createRequestHandler(ctx: ProxyContext) {
  return function onRequest(req: IncomingMessage, res: ServerResponse): void {
    try {
      handle(ctx, req, res);
    } catch (err) {
      // a bug must cost one request, never the guard
      ctx.log(`guard: internal error on a request: ${(err as Error)?.message ?? String(err)}`);
      if (!res.headersSent) {
        const a = errorAnswer(ctx.state().config.flavor, 500);
        res.writeHead(500, { ...a.headers, connection: 'close' });
        res.end(a.body);
      } else res.destroy();
    }
  };
}

function handle(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const t0 = performance.now();
  const start = ctx.now();
  const state: GuardState = ctx.state();
  const { config, policy } = state;
  const socket = req.socket;
  ctx.counters.requests++;
  ctx.counters.inFlight++;
  const cls = classifyRequest(
    {
      method: req.method ?? '',
      target: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      clientNetns: ctx.localAddresses.has(socket.remoteAddress ?? '') ? 'host' : 'other',
    },
    config.flavor,
    config.authHeader,
  );
  const p: Pending = { t0, decision: undefined, action: 'forwarded', alert: false };
  let eventCaller: Promise<void> | undefined;

  res.once('close', () => {
    ctx.counters.inFlight--;
    // The client may leave while attribution is still pending, before any decision exists.
    if (p.decision === undefined) {
      p.decision = CLIENT_GONE;
      p.action = 'error';
    }
    const status = res.headersSent ? res.statusCode : 499;
    if (!res.writableFinished && p.action === 'forwarded' && p.upstream === undefined) {
      p.upstream = { error: 'reset' };
    }
    const record = (): void => emitEvent(ctx.recorders, buildEvent(recordOf(status)), ctx.log);
    const late = p.caller !== undefined && ctx.callers.isPlaceholder(p.caller);
    if (eventCaller === undefined && !late) {
      record();
      return;
    }
    // Attribution for the event only ran beside the request: the event waits for it (bounded by
    // attribution.timeoutMs), the client never did. A lookup that missed that deadline (or the
    // decision's) goes on, and the event waits for it too (bounded by attribution.eventWaitMs).
    ctx.counters.pendingEvents++;
    const done = () => {
      ctx.counters.pendingEvents--;
      record();
    };
    (eventCaller ?? Promise.resolve()).then(lateCaller).then(done, done);
  });

  /** The lookup's own answer in place of a timed-out placeholder, marked late; see CallerLookup. */
  async function lateCaller(): Promise<void> {
    if (p.caller === undefined || !ctx.callers.isPlaceholder(p.caller)) return;
    const final = await ctx.callers.final(socket, config.attribution.eventWaitMs);
    if (final === undefined) {
      p.caller = {
        ...p.caller,
        error: `${p.caller.error}; the lookup did not finish within ${config.attribution.eventWaitMs} ms`,
      };
      return;
    }
    p.caller = { ...final.caller, late: true };
    p.attributionMs = final.ms;
  }

  function recordOf(status: number): RequestRecord {
    const r: RequestRecord = {
      id: ctx.ids.next(start),
      startMs: start,
      host: ctx.hostname,
      mode: config.mode,
      flavor: config.flavor,
      method: cls.method,
      cls,
      client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
      decision: p.decision as Decision,
      action: p.action,
      status,
      alert: p.alert,
      durationMs: Math.round((performance.now() - p.t0) * 1000) / 1000,
    };
    if (p.upstream) r.upstream = p.upstream;
    if (p.caller) r.caller = p.caller;
    if (p.attributionMs !== undefined) r.attributionMs = p.attributionMs;
    return r;
  }

  const attribute = (forPolicy: boolean): Promise<void> => {
    const ta = performance.now();
    return ctx.callers.lookup(socket, config.attribution.timeoutMs, forPolicy).then((caller) => {
      p.caller = caller;
      p.attributionMs = Math.round((performance.now() - ta) * 1000) / 1000;
    });
  };
  if (state.attribution && policy.needsCaller(cls)) {
    // a rule depends on the caller: the decision waits (bounded by attribution.timeoutMs)
    attribute(true).then(proceed, proceed);
  } else if (state.attribution && config.attribution.forEvents) {
    const attributed = attribute(false);
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
      p.decision = CLIENT_GONE;
      p.action = 'error';
      res.destroy();
      return;
    }
    p.decision = policy.decide(cls, state.attribution ? p.caller : undefined);
    // Protocol limits apply in every mode: bodies are bounded before anything is forwarded.
    const cl = req.headers['content-length'];
    const hasBody = (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (cl !== undefined && Number(cl) > config.limits.maxBodyBytes) {
      refuse(
        protocolDeny(
          'body-too-large',
          `request body of ${cl} bytes exceeds ${config.limits.maxBodyBytes}`,
          413,
        ),
        true,
      );
      return;
    }
    const outcome = applyMode(p.decision, config.mode);
    switch (outcome.action) {
      case 'trapped':
        trap();
        return;
      case 'refused':
        refuse(p.decision, hasBody || p.decision.by === 'protocol');
        return;
      default:
        p.action = outcome.action;
        p.alert = outcome.alert;
        ctx.forwarder.forward(
          {
            req,
            res,
            cls,
            config,
            hasBody,
            extraHeaders:
              config.revealRule && outcome.action === 'flagged' ? ['x-imdsguard-rule', p.decision.rule] : [],
          },
          {
            upstream: (u) => {
              p.upstream = u;
            },
            fail: (status, what, close) => fail(status, what, close === true || hasBody),
            refuse: (d) => refuse(d, true),
          },
        );
    }
  }

  function trap(): void {
    p.action = 'trapped';
    p.alert = true;
    const q = cls.forwardPath.indexOf('?');
    const query = new URLSearchParams(q === -1 ? '' : cls.forwardPath.slice(q + 1));
    writeImdsAnswer(
      res,
      state.trap.answer({ method: cls.method, path: cls.path, query, headers: headerView(req.rawHeaders) }),
    );
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
    const d = p.decision as Decision;
    p.action = 'error';
    p.alert = true;
    p.decision = { ...d, reason: `${d.reason}; not served: ${what}` };
    const a = errorAnswer(config.flavor, status);
    if (closeConnection) res.setHeader('connection', 'close');
    res.writeHead(a.status, a.headers);
    res.end(cls.method === 'HEAD' ? undefined : a.body);
  }
}
