import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Caller, ProcessResolver } from '../../src/guard/attribution/types.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import { guardConfig, MemoryRecorder, raw, statusOf } from '../support/guard-helpers.js';
import { waitFor } from '../support/wait.js';

/**
 * The request path judged on raw bytes (header count and size, repeated headers, forwarding headers and the attacks around them): what
 * reached a recording upstream, what the client got, and the events. Every request node hands the
 * guard ends with one event and leaves nothing in flight.
 */

const H = 'Host: 169.254.169.254\r\n';
const TOKEN = 'X-aws-ec2-metadata-token: AQAEAtoken==\r\n';
const TTL = 'X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n';

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
}
let upstream: Server;
let upstreamUrl: string;
let seen: Seen[] = [];
const guards: Guard[] = [];

beforeAll(async () => {
  // answers like IMDS: one answer per connection, Connection: close
  upstream = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
  seen = [];
});

async function start(guard: Record<string, unknown> = {}, resolver?: ProcessResolver) {
  const recorder = new MemoryRecorder();
  const g = createGuard({
    config: guardConfig({ upstream: upstreamUrl, ...guard }),
    recorders: [recorder],
    hostname: 'test-host',
    ...(resolver ? { resolver } : {}),
  });
  guards.push(g);
  await g.start();
  return { g, recorder, url: g.url };
}

/** Waits until the guard has nothing in flight and no event pending. */
async function idle(g: Guard): Promise<void> {
  const quiet = () => {
    const s = g.stats();
    return s.inFlight === 0 && s.pendingEvents === 0 && s.upstreamActive === 0;
  };
  await waitFor(quiet, 'the guard to be idle').catch(() => {
    throw new Error(`guard not idle: ${JSON.stringify(g.stats())}`);
  });
}

const pad = (n: number) => Array.from({ length: n }, (_, i) => `X-Pad-${i}: x\r\n`).join('');

describe('header count and head size', () => {
  it('more headers than limits.maxHeaderCount: 431, recorded, nothing upstream; the padding hides nothing', async () => {
    const { url, recorder, g } = await start({ limits: { maxHeaderBytes: 65536 } });
    for (const n of [40, 998, 1020, 3000]) {
      const reply = await raw(
        url,
        `PUT /latest/api/token HTTP/1.1\r\n${H}${TTL}${pad(n)}X-Forwarded-For: 9.9.9.9\r\n\r\n`,
      );
      expect(statusOf(reply), String(n)).toBe(431);
    }
    await idle(g);
    expect(seen).toHaveLength(0);
    expect(recorder.events.map((e) => [e.rule, e.status, e.action])).toEqual(
      Array.from({ length: 4 }, () => ['header-count', 431, 'refused']),
    );
  });

  it('a head larger than maxHeaderBytes counted whole (request line, separators, CRLFs) gets 431', async () => {
    const { url, recorder, g } = await start({ limits: { maxHeaderBytes: 1024, maxHeaderCount: 64 } });
    // 40 lines of 25 bytes: names and values are 21 bytes a line (840 in all), the whole head 1,099
    const lines = Array.from(
      { length: 40 },
      (_, i) => `X-P${String(i).padStart(2, '0')}: ${'a'.repeat(16)}\r\n`,
    ).join('');
    const reply = await raw(url, `GET /latest/meta-data/ HTTP/1.1\r\n${H}${TOKEN}${lines}\r\n`);
    expect(statusOf(reply)).toBe(431);
    await idle(g);
    expect(seen).toHaveLength(0);
    expect(recorder.last()).toMatchObject({
      rule: 'header-overflow',
      status: 431,
      request: { version: 'v2' },
    });
  });
});

describe('repeated headers', () => {
  for (const [label, headers] of [
    ['Host', `${H}Host: attacker.example\r\n${TOKEN}`],
    ['the token', `${H}${TOKEN}x-aws-ec2-metadata-token: AQAEAother==\r\n`],
    ['a casing variant', `${H}${TOKEN}Accept: a\r\naccept: b\r\n`],
  ] as const) {
    it(`${label} twice is refused in monitor too, and nothing goes upstream`, async () => {
      const { url, recorder, g } = await start({ mode: 'monitor' });
      const reply = await raw(url, `GET /latest/meta-data/ HTTP/1.1\r\n${headers}\r\n`);
      expect(statusOf(reply)).toBe(400);
      await idle(g);
      expect(seen).toHaveLength(0);
      expect(recorder.last()).toMatchObject({
        decision: 'deny',
        action: 'refused',
        rule: 'duplicate-header',
      });
    });
  }
});

describe('what is forwarded is what was judged', () => {
  it('the header list in its order and casing, Host in its place, no Content-Length added', async () => {
    const { url, g } = await start();
    await raw(
      url,
      `PUT /latest/api/token HTTP/1.1\r\nUser-Agent: aws-sdk-js/3\r\n${H}X-First: 0\r\n${TTL}x-last: 9\r\n\r\n`,
    );
    await idle(g);
    expect(seen).toHaveLength(1);
    const names = seen[0]!.rawHeaders.filter((_, i) => i % 2 === 0);
    expect(names).toEqual([
      'User-Agent',
      'Host',
      'X-First',
      'X-aws-ec2-metadata-token-ttl-seconds',
      'x-last',
      'Connection',
    ]);
  });

  it('a proxy header of the default list is refused; one left out of the configured list is forwarded', async () => {
    const a = await start();
    expect(
      statusOf(await raw(a.url, `PUT /latest/api/token HTTP/1.1\r\n${H}${TTL}Via: 1.1 squid\r\n\r\n`)),
    ).toBe(403);
    await idle(a.g);
    expect(seen).toHaveLength(0);
    expect(a.recorder.last().rule).toBe('forwarding-header');
    const b = await start({ forwardingHeaders: ['x-forwarded-for'] });
    expect(
      statusOf(await raw(b.url, `PUT /latest/api/token HTTP/1.1\r\n${H}${TTL}Via: 1.1 squid\r\n\r\n`)),
    ).toBe(200);
  });

  it('Expect: 100-continue is served once and not sent upstream; another expectation gets 417 with an event', async () => {
    const { url, recorder, g } = await start();
    const reply = await raw(
      url,
      `PUT /latest/api/token HTTP/1.1\r\n${H}${TTL}Expect: 100-continue\r\nContent-Length: 0\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(seen[0]?.rawHeaders.map((x) => x.toLowerCase())).not.toContain('expect');
    const other = await raw(url, `PUT /latest/api/token HTTP/1.1\r\n${H}${TTL}Expect: 200-ok\r\n\r\n`);
    expect(statusOf(other)).toBe(417);
    await idle(g);
    expect(seen).toHaveLength(1);
    expect(recorder.last()).toMatchObject({ rule: 'expect', status: 417, action: 'refused' });
  });

  it('a path still encoded after one decoding is refused in every mode', async () => {
    const { url, recorder, g } = await start({ mode: 'monitor' });
    const reply = await raw(
      url,
      `GET /latest/meta-data/iam/info/%252e%252e/security-credentials/ HTTP/1.1\r\n${H}${TOKEN}\r\n`,
    );
    expect(statusOf(reply)).toBe(400);
    await idle(g);
    expect(seen).toHaveLength(0);
    expect(recorder.last().rule).toBe('malformed-path');
  });
});

describe('connections', () => {
  it('a client that half-closes (FIN) after its request still gets the answer, then the close', async () => {
    const slow: ProcessResolver = {
      resolve: () => new Promise<Caller>(() => {}),
      close: async () => {},
    };
    const { url, recorder, g } = await start(
      { attribution: { timeoutMs: 300 }, allowExe: ['/opt/agent'] },
      slow,
    );
    const { connect } = await import('node:net');
    const u = new URL(url);
    const got = await new Promise<string>((resolve) => {
      let data = '';
      const s = connect(Number(u.port), u.hostname, () =>
        s.end(`GET /latest/meta-data/ HTTP/1.1\r\n${H}\r\n`),
      );
      s.on('data', (d: Buffer) => {
        data += d.toString('latin1');
      });
      s.on('close', () => resolve(data));
    });
    // decided once attribution timed out: the caller is unknown, so allowExe cannot allow it
    expect(statusOf(got)).toBe(403);
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({ status: 403, action: 'refused', rule: 'attribution-required' });
    await idle(g);
    expect(seen).toHaveLength(0);
  });

  it('a half-close in the middle of a request head gets 400 and one event; a bare FIN just closes', async () => {
    const { url, recorder, g } = await start();
    const { connect } = await import('node:net');
    const u = new URL(url);
    const exchange = (bytes: string) =>
      new Promise<string>((resolve) => {
        let data = '';
        const s = connect(Number(u.port), u.hostname, () => s.end(bytes));
        s.on('data', (d: Buffer) => {
          data += d.toString('latin1');
        });
        s.on('close', () => resolve(data));
      });
    expect(await exchange('')).toBe('');
    const cut = await exchange('GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n');
    expect(statusOf(cut)).toBe(400);
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({ status: 400, action: 'refused', rule: 'malformed-request' });
    await idle(g);
    expect(recorder.events).toHaveLength(1);
    expect(seen).toHaveLength(0);
  });

  it('a client that resets the connection before its answer is taken as gone: 499, nothing in flight', async () => {
    const slow: ProcessResolver = {
      resolve: () => new Promise<Caller>(() => {}),
      close: async () => {},
    };
    const { url, recorder, g } = await start(
      { attribution: { timeoutMs: 2000 }, allowExe: ['/opt/agent'] },
      slow,
    );
    const { connect } = await import('node:net');
    const u = new URL(url);
    const s = connect(Number(u.port), u.hostname, () =>
      s.write(`GET /latest/meta-data/ HTTP/1.1\r\n${H}\r\n`),
    );
    // gone once the guard has the request (its event is pending attribution)
    await waitFor(() => g.stats().inFlight === 1, 'the request in flight');
    // a reset, not a FIN: a FIN alone is a half-close, and the answer would still be sent
    s.resetAndDestroy();
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({ status: 499, action: 'error', rule: 'client-gone' });
    await idle(g);
    expect(seen).toHaveLength(0);
  });

  it('pipelined after a refusal: never served, never forwarded, one event each, nothing in flight', async () => {
    const { url, recorder, g } = await start();
    await raw(
      url,
      `GET /latest/meta-data/ HTTP/1.1\r\n${H}${TOKEN}\r\n` +
        `PUT /latest/api/token HTTP/1.1\r\n${H}${TTL}Forwarded: for=9.9.9.9\r\n\r\n` +
        `GET /latest/meta-data/ HTTP/1.1\r\n${H}${TOKEN}\r\n`,
    );
    await idle(g);
    // the first was answered by the upstream with Connection: close: nothing after it is served
    expect(seen).toHaveLength(1);
    expect(g.stats()).toMatchObject({ requests: 3, inFlight: 0 });
    // each judged on its own and recorded, none served
    expect(recorder.events.map((e) => [e.rule, e.action, e.status])).toEqual([
      ['imdsv2', 'forwarded', 200],
      ['forwarding-header', 'refused', 499],
      ['imdsv2', 'error', 499],
    ]);
    expect(recorder.events[1]?.reason).toContain('not served: pipelined after an answer that closed');
  });

  it('bytes that are no request, pipelined behind an allowed one, do not jump ahead of its answer', async () => {
    const { url, recorder, g } = await start();
    const reply = await raw(url, `GET /latest/meta-data/ HTTP/1.1\r\n${H}${TOKEN}\r\nNOT A REQUEST\r\n\r\n`);
    expect(statusOf(reply)).toBe(200);
    await idle(g);
    expect(seen).toHaveLength(1);
    expect(recorder.events[0]).toMatchObject({ rule: 'imdsv2', status: 200 });
  });
});

describe('a refusal waits for the caller (bounded), so the event names it', () => {
  it('a refused request on a connection that then closes still has its caller', async () => {
    const caller: Caller = { resolved: 'full', pid: 4242, exe: '/usr/bin/curl', uid: 1000 };
    let lookups = 0;
    const slow: ProcessResolver = {
      resolve: async () => {
        lookups++;
        await new Promise((r) => setTimeout(r, 100));
        return caller;
      },
      close: async () => {},
    };
    const { url, recorder, g } = await start({ attribution: { timeoutMs: 2000, holdV1: false } }, slow);
    const reply = await raw(
      url,
      `PUT /latest/api/token HTTP/1.1\r\n${H}${TTL}X-Forwarded-For: 9.9.9.9\r\n\r\n`,
    );
    expect(statusOf(reply)).toBe(403);
    await idle(g);
    expect(lookups).toBe(1);
    expect(recorder.last()).toMatchObject({
      rule: 'forwarding-header',
      caller: { pid: 4242, exe: '/usr/bin/curl' },
    });
  });
});

describe('one deadline for the whole upstream exchange', () => {
  /** An upstream speaking raw bytes: `script` writes what it likes on each connection. */
  async function rawUpstream(script: (s: import('node:net').Socket) => void) {
    const { createServer: createNet } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const server = createNet((s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.once('data', () => script(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      url,
      close: () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
    };
  }
  const HEAD =
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nConnection: close\r\n\r\n';
  const timers: NodeJS.Timeout[] = [];
  afterEach(() => {
    for (const t of timers.splice(0)) clearInterval(t);
  });

  it.each([
    ['the head, then nothing', 504, (s: import('node:net').Socket) => s.write(HEAD), 'timeout'],
    [
      'the head and part of the body, then nothing',
      504,
      (s: import('node:net').Socket) => s.write(`${HEAD}abc`),
      'timeout',
    ],
    [
      'the body one byte every 50 ms, forever',
      504,
      (s: import('node:net').Socket) => {
        s.write(HEAD);
        timers.push(setInterval(() => s.write('x'), 50));
      },
      'timeout',
    ],
    [
      'the status line one byte every 50 ms',
      504,
      (s: import('node:net').Socket) => {
        let i = 0;
        timers.push(setInterval(() => s.write(HEAD[i++ % HEAD.length] as string), 50));
      },
      'timeout',
    ],
    [
      'a close in the middle of the body',
      502,
      (s: import('node:net').Socket) => s.end(`${HEAD}abcdef`),
      'truncated',
    ],
  ] as const)(
    'upstream sends %s: the client gets %i, IMDS-shaped, and an error event',
    async (_n, status, script, error) => {
      const up = await rawUpstream(script);
      try {
        const recorder = new MemoryRecorder();
        const g = createGuard({
          config: guardConfig({ upstream: up.url, limits: { upstreamTimeoutMs: 400 } }),
          recorders: [recorder],
          hostname: 'h',
        });
        guards.push(g);
        await g.start();
        const reply = await raw(g.url, `GET /latest/meta-data/ HTTP/1.1\r\n${H}${TOKEN}\r\n`, 5000);
        expect(statusOf(reply)).toBe(status);
        expect(reply).toContain('Server: EC2ws\r\nAccept-Ranges: none\r\n');
        expect(reply).toContain('\r\nConnection: close\r\n');
        const [e] = await recorder.waitFor(1);
        expect(e).toMatchObject({ action: 'error', status, upstream: { error } });
        await idle(g);
      } finally {
        await up.close();
      }
    },
  );

  it('an answer larger than limits.maxResponseBytes gets 502; a chunked one is sent with its length', async () => {
    const big = await rawUpstream((s) =>
      s.end(`HTTP/1.1 200 OK\r\nContent-Length: 20000\r\nConnection: close\r\n\r\n${'a'.repeat(20000)}`),
    );
    const chunked = await rawUpstream((s) =>
      s.end(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      ),
    );
    try {
      const a = await start({ upstream: big.url, limits: { maxResponseBytes: 16384 } });
      expect(statusOf(await raw(a.url, `GET /latest/meta-data/ HTTP/1.1\r\n${H}${TOKEN}\r\n`))).toBe(502);
      expect((await a.recorder.waitFor(1))[0]?.upstream?.error).toBe('too-large');
      const b = await start({ upstream: chunked.url });
      const reply = await raw(b.url, `GET /latest/meta-data/ HTTP/1.1\r\n${H}${TOKEN}\r\n`);
      expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(reply).not.toMatch(/transfer-encoding/i);
      expect(reply).toContain('Content-Length: 3\r\n');
      expect(reply.endsWith('\r\n\r\nabc')).toBe(true);
    } finally {
      await big.close();
      await chunked.close();
    }
  });
});
