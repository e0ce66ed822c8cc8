import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { GuardConfig } from '../../config/schema.js';
import type { ClassifiedRequest } from '../../imds/classify.js';
import { FLAVOR_SPECS } from '../../imds/flavors.js';
import { http } from '../../net/http.js';
import type { GuardEvent } from '../events/types.js';
import { protocolDeny } from '../policy/mode.js';
import type { Decision } from '../policy/types.js';
import type { UpstreamLimiter } from './limiter.js';

/**
 * Forwarding: the I/O of an allowed (or flagged) request. One upstream connection per request
 * (the metadata service closes every connection), bounded by the guard's limiter; the request is
 * sent with exactly the headers the policy judged, minus hop-by-hop headers, the guard's secret
 * header and Host (rewritten). The answer is read whole (bounded by limits.maxResponseBytes; metadata
 * answers are small) within one deadline for the whole exchange (limits.upstreamTimeoutMs), then sent
 * with the upstream's own headers: a stalled, trickling or truncated upstream gets the client an
 * IMDS-shaped 504 or 502, never a hang, a reset or half an answer.
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

/** The metadata service's whole answer, read within the deadline. */
export interface UpstreamAnswer {
  status: number;
  statusMessage: string;
  /** Headers for the client (raw pairs): the service's own, minus hop-by-hop ones. */
  headers: string[];
  body: Buffer;
}

export interface ForwardListener {
  /** What happened upstream: its status and latency, or the error. Called once, or not at all. */
  upstream(outcome: UpstreamOutcome): void;
  /** The service answered in full: the listener sends it to the client. */
  answer(a: UpstreamAnswer): void;
  /** The request could not be served (no upstream slot, upstream down or slow): answer `status`. */
  fail(status: number, what: string): void;
  /** The request cannot be forwarded at all (a header node will not send, a body over the limit). */
  refuse(decision: Decision): void;
}

/**
 * The headers sent upstream: the judged raw list, in its order and casing, minus hop-by-hop headers,
 * the guard's secret and Expect; Host keeps its place with a metadata host name or the upstream's address;
 * `Connection: close` last. The policy refused every repeated name, so each name is one line.
 */
export function upstreamHeaders(cls: ClassifiedRequest, raw: readonly string[], config: GuardConfig) {
  const headers: OutgoingHttpHeaders = {};
  const spec = FLAVOR_SPECS[config.flavor];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    // Expect: 100-continue was answered by node on the client's side (other expectations are refused)
    if (HOP_BY_HOP.has(lower) || lower === config.authHeader || lower === 'expect') continue;
    if (lower === 'host') {
      // Keep a metadata host name (the service may look at it); otherwise name the upstream.
      const host = cls.host?.toLowerCase();
      headers[name] =
        host !== undefined && spec.hostnames.some((h) => host === h || host.startsWith(`${h}:`))
          ? (cls.host as string)
          : config.upstream.authority;
      continue;
    }
    headers[name] = raw[i + 1] as string;
  }
  // HTTP/1.1 needs a Host (a request without one is only forwarded in monitor mode)
  if (cls.host === undefined) headers['Host'] = config.upstream.authority;
  headers['Connection'] = 'close';
  return headers;
}

export class Forwarder {
  /**
   * This guard's agent for every upstream request. The metadata service closes every connection, so
   * there is nothing to keep alive; concurrency is bounded by the limiter, not by the agent.
   */
  readonly #agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
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
    let settled = false;
    const tu = performance.now();
    const latency = () => Math.round((performance.now() - tu) * 1000) / 1000;
    let upReq: ClientRequest;
    try {
      upReq = http.request({
        host: config.upstream.host,
        port: config.upstream.port,
        method: cls.method,
        path: cls.forwardPath,
        headers: upstreamHeaders(cls, req.rawHeaders, config),
        agent: this.#agent,
        setHost: false,
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
    /** Ends the exchange without an answer from upstream: report, fail the client, stop everything. */
    const abort = (outcome: UpstreamOutcome, status: number, what: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      on.upstream(outcome);
      upReq.destroy();
      release();
      on.fail(status, what);
    };
    // One deadline for the whole exchange: connecting, the answer's head and its whole body. An
    // upstream that stalls after its head, or trickles, gets the client a 504, never a hang.
    const deadline = setTimeout(
      () =>
        abort(
          { error: 'timeout', latencyMs: latency() },
          504,
          `the metadata service did not answer in full within ${limits.upstreamTimeoutMs} ms`,
        ),
      limits.upstreamTimeoutMs,
    );
    upReq.on('error', (err: NodeJS.ErrnoException) =>
      abort(
        { error: err.code === 'ECONNRESET' ? 'reset' : 'unreachable', latencyMs: latency() },
        502,
        `the metadata service is unreachable (${err.code ?? 'error'})`,
      ),
    );
    upReq.on('response', (upRes) => {
      const chunks: Buffer[] = [];
      let size = 0;
      upRes.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limits.maxResponseBytes) {
          abort(
            { status: upRes.statusCode, error: 'too-large', latencyMs: latency() },
            502,
            `the metadata service's answer is larger than ${limits.maxResponseBytes} bytes`,
          );
          return;
        }
        chunks.push(c);
      });
      upRes.on('error', () => undefined);
      upRes.on('close', () => {
        if (settled) return;
        if (!upRes.complete) {
          abort(
            { status: upRes.statusCode, error: 'truncated', latencyMs: latency() },
            502,
            'the metadata service closed the connection in the middle of its answer',
          );
          return;
        }
        settled = true;
        clearTimeout(deadline);
        release();
        const status = upRes.statusCode ?? 502;
        on.upstream({ status, latencyMs: latency() });
        const body = Buffer.concat(chunks);
        on.answer({
          status,
          statusMessage: upRes.statusMessage ?? '',
          headers: answerHeaders(upRes.rawHeaders, body.length, f.extraHeaders),
          body,
        });
      });
    });
    res.once('close', () => {
      if (!settled) {
        settled = true;
        clearTimeout(deadline);
        upReq.destroy();
        release();
      }
    });
    if (!f.hasBody) {
      // node would add Content-Length: 0 (or chunked framing) to a bodiless PUT: send the head as judged
      if (cls.contentLength === undefined) upReq.removeHeader('content-length');
      upReq.removeHeader('transfer-encoding');
      upReq.end();
      return;
    }
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
      if (bodyBytes > limits.maxBodyBytes && !settled) {
        settled = true;
        clearTimeout(deadline);
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

/** Response headers never passed on (hop-by-hop); Connection passes when it says close. */
const ANSWER_HOP_BY_HOP: ReadonlySet<string> = new Set([
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The upstream's answer headers as it sent them (order, casing, its Date and Server), minus
 * hop-by-hop ones. `Connection: close` passes, so the client's connection closes as the service's
 * did; a body that came chunked gets its Content-Length (the guard read it whole).
 */
export function answerHeaders(
  raw: readonly string[],
  bodyLength: number,
  extra: readonly string[],
): string[] {
  const out: string[] = [];
  let length = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (ANSWER_HOP_BY_HOP.has(lower)) continue;
    if (lower === 'connection' && value.trim().toLowerCase() !== 'close') continue;
    if (lower === 'content-length') length = true;
    out.push(name, value);
  }
  if (!length) out.push('Content-Length', String(bodyLength));
  out.push(...extra);
  return out;
}
