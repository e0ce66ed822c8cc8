import { parseConfig } from '../../src/config/index.js';
import type { GuardConfig } from '../../src/config/schema.js';
import type { ProcessResolver } from '../../src/guard/attribution/types.js';
import type { EventRecorder, GuardEvent } from '../../src/guard/events/types.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import {
  hasResponses,
  type ParsedRequest,
  type ParsedResponse,
  parseRequests,
  parseResponses,
  RawConnection,
  type RawEnd,
} from './raw-http.js';
import {
  createRecordingUpstream,
  type RecordingUpstream,
  type RecordingUpstreamOptions,
} from './recording-upstream.js';

/**
 * The guard as an attacker meets it: a real guard (createGuard, loopback, port 0) in front of a
 * recording upstream, driven with raw bytes. Each exchange returns what the client got, what reached
 * the upstream and the events the guard recorded, all three waited for by event (the connection's
 * close, the guard going idle, the upstream's connections closing), never by sleeping.
 */

export class EventLog implements EventRecorder {
  readonly events: GuardEvent[] = [];
  record(e: GuardEvent): void {
    this.events.push(e);
  }
  async close(): Promise<void> {}
}

export interface Exchange {
  /** Every byte the client received. */
  received: Buffer;
  responses: ParsedResponse[];
  /** How the connection ended (the harness half-closes once the expected responses are in). */
  end: RawEnd;
  /** Events recorded during the exchange, in order. */
  events: GuardEvent[];
  /** Requests that reached the upstream during the exchange, in order. */
  upstream: ParsedRequest[];
  /** Bytes that reached the upstream during the exchange. */
  upstreamBytes: number;
}

export interface ExchangeOptions {
  /** Responses to wait for before half-closing (default 1). */
  responses?: number;
  /** Which responses answer a HEAD (default: read from the requests sent). */
  headRequests?: boolean[];
  /** Bound on the whole exchange (default 10 s: loopback on a loaded machine). */
  timeoutMs?: number;
  /** Keep the client's side open after the responses (default: half-close, then wait for the close). */
  keepOpen?: boolean;
}

export interface GuardUnderTestOptions {
  /** config.guard overrides (listen defaults to 127.0.0.1:0, upstream to the recorder). */
  guard?: Record<string, unknown>;
  upstream?: RecordingUpstreamOptions;
  resolver?: ProcessResolver;
  /** The guard's clock (and the emulator's, unless upstream.emulator sets its own). */
  now?: () => number;
  /** Messages the guard logs (kept for secret checks). */
  logs?: string[];
}

export class GuardUnderTest {
  readonly guard: Guard;
  readonly upstream: RecordingUpstream;
  readonly config: GuardConfig;
  /** Messages the guard logged. */
  readonly logs: string[];
  /** Every event the guard recorded. */
  readonly log: EventLog;

  private constructor(
    guard: Guard,
    upstream: RecordingUpstream,
    config: GuardConfig,
    logs: string[],
    log: EventLog,
  ) {
    this.guard = guard;
    this.upstream = upstream;
    this.config = config;
    this.logs = logs;
    this.log = log;
  }

  static async start(options: GuardUnderTestOptions = {}): Promise<GuardUnderTest> {
    const upstreamOptions = options.now
      ? { ...options.upstream, emulator: { now: options.now, ...options.upstream?.emulator } }
      : options.upstream;
    const upstream = await createRecordingUpstream(upstreamOptions);
    const config = parseConfig({
      guard: { listen: ['127.0.0.1:0'], upstream: upstream.url, ...options.guard },
    }).guard;
    const logs = options.logs ?? [];
    const recorder = new EventLog();
    const guard = createGuard({
      config,
      recorders: [recorder],
      hostname: 'adversary-host',
      log: (m) => logs.push(m),
      ...(options.resolver ? { resolver: options.resolver } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
    try {
      await guard.start();
    } catch (err) {
      await upstream.close();
      throw err;
    }
    return new GuardUnderTest(guard, upstream, config, logs, recorder);
  }

  /** The guard's address, as a socket connects to it (no IPv6 brackets). */
  get host(): string {
    return new URL(this.guard.url).hostname.replace(/^\[|\]$/g, '');
  }
  get port(): number {
    return Number(new URL(this.guard.url).port);
  }
  /** host:port of the guard, as a Host header would name it. */
  get authority(): string {
    return new URL(this.guard.url).host;
  }

  /** Resolves when the guard has no request in flight and no event pending, and the upstream is settled. */
  async idle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.guard.stats();
      if (s.inFlight === 0 && s.pendingEvents === 0 && s.upstreamActive === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`guard not idle after ${timeoutMs} ms: ${JSON.stringify(s)}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.upstream.settled(Math.max(1, deadline - Date.now()));
  }

  /** Opens a raw connection to the guard (for multi-step cases). */
  connect(): Promise<RawConnection> {
    return RawConnection.open(this.host, this.port);
  }

  /**
   * Sends `data` (string parts are latin1: one byte per char) on a new connection, parts written in
   * order, and returns what happened.
   */
  async exchange(
    data: string | Buffer | Array<string | Buffer>,
    opts: ExchangeOptions = {},
  ): Promise<Exchange> {
    const n = opts.responses ?? 1;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const parts = Array.isArray(data) ? data : [data];
    // answers to HEAD have no body: know which ones they are from the bytes sent
    const headRequests =
      opts.headRequests ??
      parseRequests(
        Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))),
      ).map((r) => r.method === 'HEAD');
    const eventsBefore = this.log.events.length;
    this.upstream.clear();
    const c = await this.connect();
    try {
      for (const part of parts) await c.write(part);
      await c.until((b) => hasResponses(b, n, headRequests), timeoutMs, `${n} response(s)`);
      if (!opts.keepOpen) {
        c.finish();
        await c.untilClosed(timeoutMs);
      }
      await this.idle(timeoutMs);
    } finally {
      if (!opts.keepOpen) c.destroy();
    }
    const received = c.received();
    return {
      received,
      responses: parseResponses(received, { headRequests, closed: c.end !== 'open' }),
      end: c.end,
      events: this.log.events.slice(eventsBefore),
      upstream: this.upstream.requests(),
      upstreamBytes: this.upstream.bytesReceived(),
    };
  }

  async close(): Promise<void> {
    await this.guard.close();
    await this.upstream.close();
  }
}

/** A compact description of an exchange for failure messages. */
export function describeExchange(x: Exchange): string {
  return JSON.stringify(
    {
      client: x.responses.map((r) => `${r.startLine} (${r.body.length} body bytes)`),
      end: x.end,
      events: x.events.map((e) => `${e.decision}/${e.action}/${e.rule}/${e.status}: ${e.reason}`),
      upstream: x.upstream.map(
        (r) =>
          `${r.startLine} [${r.headers
            .map(([k, v]) => `${k}: ${v.slice(0, 40)}`)
            .join(' | ')
            .slice(0, 400)}]`,
      ),
    },
    null,
    1,
  );
}
