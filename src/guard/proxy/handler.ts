import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type ImdsAnswer, writeImdsAnswer } from '../../imds/answer.js';
import { type ClassifiedRequest, classifyRequest } from '../../imds/classify.js';
import { imdsRefusal } from '../../imds/errors.js';
import type { Caller } from '../attribution/types.js';
import { buildEvent, emitEvent, type RequestRecord } from '../events/build.js';
import type { Action, GuardEvent } from '../events/types.js';
import { applyMode, protocolDeny } from '../policy/mode.js';
import type { Decision } from '../policy/types.js';
import type { IssuedToken, SeenToken } from '../tokens/guard.js';
import { otherCallerDecision, tokenDecision } from '../tokens/verdict.js';
import type { Trap } from '../trap/index.js';
import type { GuardState, ProxyContext } from './context.js';
import type { UpstreamAnswer } from './forward.js';
import { isRemoteClient } from './local-addresses.js';

/**
 * The request path of the guard, orchestration only: classify -> find the caller (when a rule needs
 * it) -> decide -> apply the mode -> forward, refuse or trap -> one event when the request is over.
 * The policy decides (policy/), forward.ts does the upstream I/O, caller-lookup.ts the attribution,
 * connections.ts keeps pipelined requests in order, events/build.ts builds the event.
 */

export type { GuardState } from './context.js';

/** What is known about a request while it is served; becomes its event when the request is over. */
interface Pending {
  t0: number;
  decision: Decision | undefined;
  action: Action;
  alert: boolean;
  caller?: Caller;
  attributionMs?: number;
  upstream?: GuardEvent['upstream'];
  /** The token the request carried (hashed), and the one its answer issued. */
  token?: SeenToken;
  issued?: IssuedToken;
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

/** A header's value in raw pairs (name, value, ...), by lower-case name. */
function headerOf(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === name) return raw[i + 1];
  return undefined;
}

/** Status of an event whose request got no answer: the client or the connection went first. */
export const NO_ANSWER = 499;

const CLIENT_GONE = protocolDeny(
  'client-gone',
  'the client closed the connection before a decision',
  NO_ANSWER,
);
const NOT_SERVED_REASON = 'not served: pipelined after an answer that closed the connection';

export interface RequestHandlers {
  /** node's 'request' event. */
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  /** node's 'checkExpectation' event: an Expect other than 100-continue (refused, 417). */
  onExpectation(req: IncomingMessage, res: ServerResponse): void;
}

/** Creates the request handlers of the guard's HTTP servers. */
export function createRequestHandlers(ctx: ProxyContext): RequestHandlers {
  const guarded = (req: IncomingMessage, res: ServerResponse, forced?: Decision): void => {
    try {
      handle(ctx, req, res, forced);
    } catch (err) {
      // a bug must cost one request, never the guard
      ctx.log(`guard: internal error on a request: ${(err as Error)?.message ?? String(err)}`);
      if (!res.headersSent) writeImdsAnswer(res, imdsRefusal(ctx.state().config.flavor, 500));
      else res.destroy();
    }
  };
  return {
    onRequest: (req, res) => guarded(req, res),
    onExpectation: (req, res) =>
      guarded(
        req,
        res,
        protocolDeny(
          'expect',
          `Expect: ${String(req.headers.expect ?? '').slice(0, 40)} is not supported`,
          417,
        ),
      ),
  };
}

function handle(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, forced?: Decision): void {
  const t0 = performance.now();
  const start = ctx.now();
  const state: GuardState = ctx.state();
  const { config, policy } = state;
  const socket = req.socket;
  ctx.counters.requests++;
  ctx.counters.inFlight++;
  const hostClient = ctx.localAddresses.has(socket.remoteAddress ?? '');
  const cls = classifyRequest(
    {
      method: req.method ?? '',
      target: req.url ?? '',
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      clientNetns: hostClient ? 'host' : 'other',
      remote: isRemoteClient(socket.localAddress ?? '', hostClient),
    },
    config.flavor,
    config.authHeader,
  );
  const p: Pending = { t0, decision: undefined, action: 'forwarded', alert: false };
  const tokenScheme = cls.spec.token;
  if (cls.version === 'v2' && tokenScheme !== undefined) {
    const seen = ctx.tokens.seen(headerView(req.rawHeaders)[tokenScheme.tokenHeader], start);
    if (seen) p.token = seen;
  }
  let eventCaller: Promise<void> | undefined;
  let over = false;
  // The token's verdict (settleToken). Declared before anything that can finish the request: a
  // request dropped on entry (pipelined behind a closing answer) is finished synchronously.
  let token: GuardEvent['token'];

  /** The request is over: its one event (after the event-only attribution, bounded). */
  const finish = (status: number): void => {
    if (over) return;
    over = true;
    ctx.counters.inFlight--;
    // The client may leave while attribution is still pending, before any decision exists.
    if (p.decision === undefined) {
      p.decision = CLIENT_GONE;
      p.action = 'error';
    }
    const record = (): void => {
      settleToken();
      emitEvent(ctx.recorders, buildEvent(recordOf(status)), ctx.log);
    };
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
  };

  ctx.connections.enter(socket, serve, () => {
    // Pipelined behind an answer that closed the connection (as the service closes it after every
    // answer): judged and recorded on its own, never served, never forwarded.
    const d = forced ?? policy.decide(cls);
    p.decision = { ...d, reason: `${d.reason}; ${NOT_SERVED_REASON}` };
    p.action = d.decision === 'deny' ? 'refused' : 'error';
    p.alert = true;
    finish(NO_ANSWER);
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

  /** The token's verdict with the final caller: another caller than its holder raises an alert. */
  function settleToken(): void {
    token = ctx.tokens.settle(p.token, p.issued, p.caller, start);
    if (token?.status === 'other-caller' && p.decision !== undefined && p.decision.decision === 'allow') {
      p.decision = otherCallerDecision(p.decision, token.why ?? 'another process');
      p.alert = true;
    }
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
    if (token) r.token = token;
    if (p.attributionMs !== undefined) r.attributionMs = p.attributionMs;
    return r;
  }

  function serve(): void {
    res.once('close', () => {
      if (!res.writableFinished && p.action === 'forwarded' && p.upstream === undefined) {
        p.upstream = { error: 'reset' };
      }
      finish(res.headersSent ? res.statusCode : NO_ANSWER);
      // node ends the socket after an answer that closes the connection (its shouldKeepAlive is
      // not updated for a Connection: close the answer itself set)
      ctx.connections.leave(socket, !socket.writableEnded && !socket.destroyed);
    });
    if (forced !== undefined) {
      // decided before classification mattered (an unsupported Expect): refused in every mode
      p.decision = forced;
      refuse(forced);
      return;
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
  }

  function proceed(): void {
    if (res.destroyed || socket.destroyed) {
      p.decision = CLIENT_GONE;
      p.action = 'error';
      res.destroy();
      return;
    }
    const policyDecision = policy.decide(cls, state.attribution ? p.caller : undefined);
    // a token this guard never issued: guard.unknownToken (allow, flag or deny)
    const decision = p.token
      ? tokenDecision(policyDecision, p.token.status, config.unknownToken)
      : policyDecision;
    p.decision = decision;
    // Protocol limits apply in every mode: bodies are bounded before anything is forwarded.
    const cl = cls.contentLength;
    if (cl !== undefined && Number(cl) > config.limits.maxBodyBytes) {
      ctx.connections.closing(socket);
      answerLater(() =>
        refuse(
          protocolDeny(
            'body-too-large',
            `request body of ${cl.slice(0, 20)} bytes exceeds ${config.limits.maxBodyBytes}`,
            413,
          ),
        ),
      );
      return;
    }
    const outcome = applyMode(decision, config.mode);
    switch (outcome.action) {
      case 'trapped':
        ctx.connections.closing(socket);
        answerLater(trap);
        return;
      case 'refused':
        ctx.connections.closing(socket);
        answerLater(() => refuse(decision));
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
            hasBody: cls.hasBody,
            extraHeaders:
              config.revealRule && outcome.action === 'flagged' ? ['x-imdsguard-rule', decision.rule] : [],
          },
          {
            upstream: (u) => {
              p.upstream = u;
            },
            answer: (a) => answerLater(() => deliver(a)),
            fail,
            refuse,
          },
        );
    }
  }

  /**
   * Every answer closes the connection (as the service's do), and a client exits as soon as it has
   * its answer: when attribution for the event is still running, answer once it is done (bounded by
   * attribution.timeoutMs), so that the socket is still there to name the caller. The lookup started
   * when the request arrived, so this costs nothing when it is faster than the upstream.
   */
  function answerLater(answer: () => void): void {
    if (eventCaller === undefined) {
      answer();
      return;
    }
    const go = () => {
      if (res.destroyed || socket.destroyed) res.destroy();
      else answer();
    };
    eventCaller.then(go, go);
  }

  /** Sends the service's answer to the client. */
  function deliver(a: UpstreamAnswer): void {
    if (res.headersSent || res.destroyed) return;
    try {
      res.writeHead(a.status, a.statusMessage, a.headers);
    } catch {
      // an upstream header node will not repeat: fail this request, not the guard
      fail(502, 'the metadata service sent an invalid response header');
      return;
    }
    res.end(a.body);
    if (cls.version === 'token' && a.status === 200 && tokenScheme !== undefined) {
      // the token the service issued goes into the ledger (by keyed hash), with its holder
      p.issued = ctx.tokens.issued(
        a.body,
        headerOf(a.headers, tokenScheme.ttlHeader),
        cls.ttl,
        p.caller,
        ctx.now(),
      );
    }
  }

  function trap(): void {
    p.action = 'trapped';
    p.alert = true;
    ctx.connections.closing(socket);
    const q = cls.forwardPath.indexOf('?');
    const query = new URLSearchParams(q === -1 ? '' : cls.forwardPath.slice(q + 1));
    const answer = (t: Trap) => {
      if (res.headersSent || res.destroyed) return;
      writeImdsAnswer(
        res,
        t.answer({ method: cls.method, path: cls.path, query, headers: headerView(req.rawHeaders) }),
      );
    };
    const lazy = state.trap;
    if (lazy?.value !== undefined) answer(lazy.value);
    // built once its module loaded (the first trap after a reload into trap mode)
    else if (lazy !== undefined) lazy.ready.then(answer, () => fail(500, 'the trap could not be built'));
    else fail(500, 'no trap in this mode');
  }

  function refuse(decision: Decision): void {
    p.decision = decision;
    p.action = 'refused';
    p.alert = true;
    send(refusal(cls, decision.status, config.flavor, config.revealRule ? decision.rule : undefined));
  }

  /** The request was allowed (or flagged) but could not be served: keep the verdict, say what failed. */
  function fail(status: number, what: string): void {
    if (res.headersSent || res.destroyed) return;
    const d = p.decision as Decision;
    p.action = 'error';
    p.alert = true;
    p.decision = { ...d, reason: `${d.reason}; not served: ${what}` };
    send(refusal(cls, status, config.flavor));
  }

  function send(a: ImdsAnswer): void {
    if (res.headersSent || res.destroyed) return;
    ctx.connections.closing(socket);
    writeImdsAnswer(res, a);
  }
}

/** The flavour's own error answer, with the rule in a header when guard.revealRule is on. */
function refusal(
  cls: ClassifiedRequest,
  status: number,
  flavor: GuardState['config']['flavor'],
  rule?: string,
): ImdsAnswer {
  const a = imdsRefusal(flavor, status, { tokenPath: cls.tokenPath });
  if (rule !== undefined) a.headers['x-imdsguard-rule'] = rule;
  return a;
}
