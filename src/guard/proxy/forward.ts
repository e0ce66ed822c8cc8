import {
  Agent,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { performance } from 'node:perf_hooks';
import type { GuardConfig } from '../../config/schema.js';
import type { ClassifiedRequest } from '../../imds/classify.js';
import { FLAVOR_SPECS } from '../../imds/flavors.js';
import type { GuardEvent } from '../events/types.js';
import { protocolDeny } from '../policy/mode.js';
import type { Decision } from '../policy/types.js';
import type { UpstreamLimiter } from './limiter.js';

/**
 * Forwarding: the I/O of an allowed (or flagged) request. One upstream connection per request
 * (the metadata service closes every connection), bounded by the guard's limiter; the request is
 * sent with exactly the headers the policy judged, minus hop-by-hop headers, the guard's secret
 * header and Host (rewritten); the answer streams back with its own headers.
 */

/** Request headers never forwarded (hop-by-hop, RFC 9110 7.6.1). Connection-listed names are not honoured. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export type UpstreamOutcome = NonNullable<GuardEvent['upstream']>;

export interface ForwardRequest {
  req: IncomingMessage;
  res: ServerResponse;
  cls: ClassifiedRequest;
  config: GuardConfig;
  hasBody: boolean;
  /** Response headers added to the upstream's answer (name, value, ...). */
  extraHeaders: readonly string[];
}

export interface ForwardListener {
  /** What happened upstream: its status and latency, or the error. Called once, or not at all. */
  upstream(outcome: UpstreamOutcome): void;
  /**
   * The request could not be served (no upstream slot, upstream down or slow): answer `status`.
   * `close`: close the client connection after the answer whatever the request was.
   */
  fail(status: number, what: string, close?: boolean): void;
  /** The request cannot be forwarded at all (a header node will not send, a body over the limit). */
  refuse(decision: Decision): void;
}

/** The headers sent upstream: the judged raw list minus hop-by-hop, the secret and Host; Host set. */
export function upstreamHeaders(cls: ClassifiedRequest, raw: readonly string[], config: GuardConfig) {
  const headers: OutgoingHttpHeaders = {};
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
      : config.upstream.authority;
  headers['Connection'] = 'close';
  return headers;
}

export class Forwarder {
  /**
   * This guard's agent for every upstream request. The metadata service closes every connection, so
   * there is nothing to keep alive; concurrency is bounded by the limiter, not by the agent.
   */
  readonly #agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  readonly #limiter: UpstreamLimiter;

  constructor(limiter: UpstreamLimiter) {
    this.#limiter = limiter;
  }

  forward(f: ForwardRequest, on: ForwardListener): void {
    const limits = f.config.limits;
    const cancel = this.#limiter.acquire(
      () => this.#send(f, on),
      () => on.fail(503, `no upstream connection became free within ${limits.upstreamTimeoutMs} ms`),
    );
    if (cancel === false) {
      on.fail(
        503,
        `upstream queue full (${limits.maxUpstreamConnections} connections, ${limits.maxQueuedRequests} waiting)`,
      );
      return;
    }
    f.res.once('close', cancel);
  }

  #send(f: ForwardRequest, on: ForwardListener): void {
    const { req, res, cls, config } = f;
    const limits = config.limits;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.#limiter.release();
      }
    };
    if (res.destroyed) {
      release();
      return;
    }
    let reported = false;
    const report = (u: UpstreamOutcome) => {
      if (!reported) {
        reported = true;
        on.upstream(u);
      }
    };
    const tu = performance.now();
    let upReq: ReturnType<typeof httpRequest>;
    try {
      upReq = httpRequest({
        host: config.upstream.host,
        port: config.upstream.port,
        method: cls.method,
        path: cls.forwardPath,
        headers: upstreamHeaders(cls, req.rawHeaders, config),
        agent: this.#agent,
        setHost: false,
        timeout: limits.upstreamTimeoutMs,
      });
    } catch (err) {
      // node refuses to send a header it considers invalid: refuse the request, stay up
      release();
      on.refuse(
        protocolDeny(
          'malformed-request',
          `request cannot be forwarded: ${(err as NodeJS.ErrnoException).code ?? 'invalid header'}`,
          400,
        ),
      );
      return;
    }
    let timedOut = false;
    upReq.on('timeout', () => {
      timedOut = true;
      report({ error: 'timeout', latencyMs: Math.round(performance.now() - tu) });
      upReq.destroy(new Error('upstream timeout'));
    });
    upReq.on('error', (err: NodeJS.ErrnoException) => {
      release();
      report({
        error: err.code === 'ECONNRESET' ? 'reset' : 'unreachable',
        latencyMs: Math.round(performance.now() - tu),
      });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (timedOut) {
        on.fail(504, `the metadata service did not answer within ${limits.upstreamTimeoutMs} ms`);
      } else {
        on.fail(502, `the metadata service is unreachable (${err.code ?? 'error'})`);
      }
    });
    upReq.on('response', (upRes) => {
      const status = upRes.statusCode ?? 502;
      report({ status, latencyMs: Math.round((performance.now() - tu) * 1000) / 1000 });
      const out: string[] = [];
      const rh = upRes.rawHeaders;
      for (let i = 0; i < rh.length; i += 2) {
        const lower = (rh[i] as string).toLowerCase();
        if (HOP_BY_HOP.has(lower)) continue;
        out.push(rh[i] as string, rh[i + 1] as string);
      }
      out.push(...f.extraHeaders);
      try {
        res.writeHead(status, upRes.statusMessage, out);
      } catch {
        // an upstream header node will not repeat: fail this request, not the guard
        upRes.destroy();
        on.fail(502, 'the metadata service sent an invalid response header', true);
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
    if (!f.hasBody) {
      upReq.end();
      return;
    }
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
      if (bodyBytes > limits.maxBodyBytes) {
        req.unpipe(upReq);
        upReq.destroy();
        release();
        if (!res.headersSent) {
          on.refuse(protocolDeny('body-too-large', `request body exceeds ${limits.maxBodyBytes} bytes`, 413));
        } else res.destroy();
      }
    });
    req.pipe(upReq);
  }
}
