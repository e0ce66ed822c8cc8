import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { expectRefused } from '../support/guard-verdicts.js';
import { METADATA_HOST, request, TTL_HEADER, tokenPut, v1Get, v2Get } from '../support/imds-requests.js';

/**
 * What holds in every mode (guard.md: "Protocol refusals ... apply in every mode"), what trap mode
 * promises (it forwards nothing, ever), and request bodies, which IMDS requests never have and which
 * are bounded before anything is forwarded.
 */

let monitor: GuardUnderTest;
let trap: GuardUnderTest;
let enforce: GuardUnderTest;

beforeAll(async () => {
  const upstream = { emulator: { settings: { tokens: 'required' as const } } };
  monitor = await GuardUnderTest.start({ guard: { mode: 'monitor' }, upstream });
  trap = await GuardUnderTest.start({ guard: { mode: 'trap' }, upstream });
  enforce = await GuardUnderTest.start({ guard: { limits: { maxBodyBytes: 1024 } }, upstream });
}, 30_000);
afterAll(async () => {
  await Promise.all([monitor?.close(), trap?.close(), enforce?.close()]);
});

const PROTOCOL: Array<[string, string]> = [
  [
    'Content-Length with Transfer-Encoding',
    request(
      'PUT',
      '/latest/api/token',
      [['Host', METADATA_HOST], TTL_HEADER, ['Content-Length', '5'], ['Transfer-Encoding', 'chunked']],
      '0\r\n\r\n',
    ),
  ],
  [
    'two Content-Length',
    request(
      'PUT',
      '/latest/api/token',
      [['Host', METADATA_HOST], TTL_HEADER, ['Content-Length', '0'], ['Content-Length', '5']],
      'hello',
    ),
  ],
  ['CONNECT', `CONNECT ${METADATA_HOST}:80 HTTP/1.1\r\nHost: ${METADATA_HOST}:80\r\n\r\n`],
  [
    'an h2c upgrade',
    request('GET', '/latest/meta-data/', [
      ['Host', METADATA_HOST],
      ['Connection', 'Upgrade, HTTP2-Settings'],
      ['Upgrade', 'h2c'],
      ['HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA'],
    ]),
  ],
  ['a NUL in the path', v2Get('/latest/meta-data/%00', 'AQAEAtoken==')],
  ['a malformed escape in the path', v2Get('/latest/meta-data/%zz', 'AQAEAtoken==')],
  ['a 20 KB head', tokenPut([['X-Big', 'b'.repeat(20_000)]])],
  ['garbage', 'GARBAGE\r\n\r\n'],
  [
    'a body over maxBodyBytes (Content-Length)',
    request(
      'PUT',
      '/latest/api/token',
      [['Host', METADATA_HOST], TTL_HEADER, ['Content-Length', '100000']],
      'x'.repeat(2000),
    ),
  ],
];

describe('protocol refusals hold in monitor mode: nothing reaches the upstream', () => {
  it.each(PROTOCOL)('%s', async (_n, raw) => {
    const x = await monitor.exchange(raw);
    expectRefused(x, { status: [400, 405, 413, 431] });
  });
});

describe('trap mode forwards nothing, whatever it is sent, and alerts on everything', () => {
  const corpus: Array<[string, string]> = [
    ...PROTOCOL,
    ['a token PUT', tokenPut()],
    ['a token PUT with X-Forwarded-For', tokenPut([['X-Forwarded-For', '9.9.9.9']])],
    ['a tokenless read of the credentials', v1Get('/latest/meta-data/iam/security-credentials/')],
    ['a token read of user-data', v2Get('/latest/user-data', 'AQAEAtoken==')],
    [
      'absolute-form',
      `GET http://${METADATA_HOST}/latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`,
    ],
    ['a rebinding Host', v2Get('/latest/meta-data/', 'AQAEAtoken==', [], 'attacker.example')],
    [
      'two Host headers',
      request('GET', '/latest/meta-data/', [
        ['Host', METADATA_HOST],
        ['Host', 'attacker.example'],
      ]),
    ],
    [
      'POST',
      request('POST', '/latest/meta-data/', [
        ['Host', METADATA_HOST],
        ['Content-Length', '0'],
      ]),
    ],
    ['a path trick', v2Get('/latest/meta-data/iam/info/%2e%2e/security-credentials/', 'AQAEAtoken==')],
    ['HEAD', request('HEAD', '/latest/meta-data/', [['Host', METADATA_HOST]])],
  ];
  it.each(corpus)('%s', async (_n, raw) => {
    const x = await trap.exchange(raw);
    const why = describeExchange(x);
    expect(x.upstreamBytes, why).toBe(0);
    expect(x.events.length, why).toBeGreaterThanOrEqual(1);
    for (const e of x.events) {
      expect(['trapped', 'refused'], why).toContain(e.action);
      expect(e.alert, why).toBe(true);
    }
    for (const r of x.responses.filter((r) => r.status >= 200)) {
      // never a constant 200 for everything: refusals, 404s and 401s come out as IMDS would say them
      expect(r.status, why).not.toBe(0);
    }
  });

  it('the trap answers differ by request (never a constant 200)', async () => {
    const statuses = new Set<number>();
    for (const raw of [
      tokenPut(),
      v2Get('/latest/meta-data/no-such-thing', 'x'),
      request('PUT', '/latest/meta-data/', [['Host', METADATA_HOST]]),
      tokenPut([['X-Forwarded-For', '1.1.1.1']]),
    ]) {
      statuses.add((await trap.exchange(raw)).responses[0]?.status ?? 0);
    }
    expect(statuses.size).toBeGreaterThanOrEqual(3);
  });
});

describe('bodies are bounded before anything is forwarded', () => {
  it('a Content-Length over the bound gets 413 and nothing upstream', async () => {
    const x = await enforce.exchange(
      request(
        'PUT',
        '/latest/api/token',
        [['Host', METADATA_HOST], TTL_HEADER, ['Content-Length', '2000']],
        'x'.repeat(2000),
      ),
    );
    expectRefused(x, { status: 413 });
  });

  it('a body within the bound is forwarded whole', async () => {
    const x = await enforce.exchange(
      request(
        'PUT',
        '/latest/api/token',
        [['Host', METADATA_HOST], TTL_HEADER, ['Content-Length', '1000']],
        'x'.repeat(1000),
      ),
    );
    expect(x.upstream[0]?.body.length, describeExchange(x)).toBe(1000);
  });
});

describe('a chunked body over the bound is refused before any byte of it reaches the upstream', () => {
  const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
  it.each([
    ['one 2 KB chunk', `${chunk('x'.repeat(2000))}0\r\n\r\n`],
    ['a small chunk, then a 2 KB one', `${chunk('abc')}${chunk('x'.repeat(2000))}0\r\n\r\n`],
    ['forty 50-byte chunks', `${chunk('y'.repeat(50)).repeat(40)}0\r\n\r\n`],
  ])('%s on a token PUT', async (_n, body) => {
    const x = await enforce.exchange(
      request(
        'PUT',
        '/latest/api/token',
        [['Host', METADATA_HOST], TTL_HEADER, ['Transfer-Encoding', 'chunked']],
        body,
      ),
    );
    expectRefused(x, { status: 413 });
  });
});

// ---- findings the adversarial review reported, each fixed ----

describe('an unsupported Transfer-Encoding gets one answer and one event', () => {
  const raw = request(
    'PUT',
    '/latest/api/token',
    [['Host', METADATA_HOST], TTL_HEADER, ['Transfer-Encoding', 'identity']],
    '',
  );
  it('in monitor mode', async () => {
    expectRefused(await monitor.exchange(raw), { status: 400 });
  });
  it('in enforce mode', async () => {
    expectRefused(await enforce.exchange(raw), { status: 400 });
  });
});

describe('a request pipelined behind a trap answer (Connection: close) leaves nothing in flight', () => {
  let own: GuardUnderTest;
  beforeAll(async () => {
    own = await GuardUnderTest.start({ guard: { mode: 'trap' } });
  }, 30_000);
  afterAll(() => own?.close());
  it('a token PUT, then two reads, on one connection', async () => {
    const x = await own.exchange(
      tokenPut() + v1Get('/latest/meta-data/') + v2Get('/latest/meta-data/', 'x'),
      { responses: 3 },
    );
    const why = describeExchange(x);
    expect(x.upstreamBytes, why).toBe(0);
    expect(own.guard.stats().inFlight, why).toBe(0);
    expect(x.events.length, why).toBe(own.guard.stats().requests);
  });
});
