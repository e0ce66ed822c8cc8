import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardUnderTest } from '../support/guard-under-test.js';
import { expectForwarded, expectRefused } from '../support/guard-verdicts.js';
import {
  headerLines,
  METADATA_HOST,
  padding,
  request,
  TTL_HEADER,
  tokenPut,
  v1Get,
} from '../support/imds-requests.js';
import type { Header } from '../support/raw-http.js';

/**
 * (400 is the answer to padding that repeats one name: the guard refuses any repeated header,
 * rule duplicate-header, before it looks at forwarding headers.)
 *
 * Padding and header-count attacks: a forwarding header hidden behind hundreds of
 * padding headers, heads that pass a size bound counted on names and values only, many tiny headers.
 * Each case is judged by what reached the recording upstream, what the client got, and the event.
 */

const XFF: Header = ['X-Forwarded-For', '9.9.9.9'];
let g: GuardUnderTest;
let wide: GuardUnderTest;
let monitor: GuardUnderTest;

beforeAll(async () => {
  const upstream = { emulator: { settings: { tokens: 'required' as const } } };
  g = await GuardUnderTest.start({ upstream });
  // the largest head the config allows: the count bound must hold on its own
  wide = await GuardUnderTest.start({ guard: { limits: { maxHeaderBytes: 65536 } }, upstream });
  monitor = await GuardUnderTest.start({ guard: { mode: 'monitor' }, upstream });
}, 30_000);
afterAll(async () => {
  await Promise.all([g?.close(), wide?.close(), monitor?.close()]);
});

describe('a forwarding header behind padding is refused, and nothing reaches the upstream', () => {
  const counts = [20, 100, 500, 990, 997, 998, 1020, 1100, 2000];
  const pads: Array<[string, string, string]> = [
    ['TE (hop-by-hop, stripped on the way up)', 'TE', 'x'],
    ['short names', 'X-P', 'x'],
    ['empty values', 'a', ''],
    ['numbered names', 'X-Pad-', 'v'],
    ['Connection', 'Connection', 'x'],
  ];
  for (const [label, name, value] of pads) {
    it.each(counts)(
      `%i ${label} padding headers then X-Forwarded-For on a token PUT (64 KB bound)`,
      async (n) => {
        const x = await wide.exchange(tokenPut([...padding(n, name, value), XFF]));
        expectRefused(x, { status: [431, 403, 400] });
      },
    );
  }

  it.each(counts)('%i padding headers then X-Forwarded-For (default 8 KB bound)', async (n) => {
    const x = await g.exchange(tokenPut([...padding(n, 'X-P', 'x'), XFF]));
    expectRefused(x, { status: [431, 403, 400] });
  });

  it.each([
    ['first', (p: Header[]) => [XFF, ...p]],
    ['in the middle', (p: Header[]) => [...p.slice(0, 250), XFF, ...p.slice(250)]],
    ['last', (p: Header[]) => [...p, XFF]],
  ] as const)('X-Forwarded-For %s among 500 padding headers on an allowed IMDSv1 GET', async (_w, place) => {
    const x = await wide.exchange(
      v1Get('/latest/meta-data/iam/security-credentials/', place(padding(500, 'X-P', 'x'))),
    );
    expectRefused(x, { status: [431, 403, 400] });
  });

  it.each(['Forwarded', 'X-Forwarded-Host', 'x-forwarded-for', 'FORWARDED'])(
    '%s behind 997 padding headers',
    async (name) => {
      const x = await wide.exchange(tokenPut([...padding(997, 'X-P', 'x'), [name, 'for=9.9.9.9']]));
      expectRefused(x, { status: [431, 403, 400] });
    },
  );

  it('the same padded request sent one byte at a time', async () => {
    const raw = tokenPut([...padding(40, 'X-P', 'x'), XFF]);
    const x = await g.exchange(raw.split(''));
    expectRefused(x, { status: [431, 403, 400] });
  }, 30_000);
});

describe('many headers', () => {
  it('1,500 tiny headers (a:) within 8 KB', async () => {
    const x = await g.exchange(tokenPut(padding(1500, 'a', '')));
    expectRefused(x, { status: 431 });
  });

  it('in monitor mode too: a header-count refusal is a protocol limit, or at least flagged', async () => {
    const x = await monitor.exchange(tokenPut([...padding(100, 'X-Pad-', 'x'), XFF]));
    expect(x.events.length).toBe(1);
    const e = x.events[0]!;
    expect(e.decision).toBe('deny');
    if (e.action === 'flagged') {
      // forwarded as sent: the upstream saw the X-Forwarded-For too, and refused it as IMDS does
      expect(x.upstream[0]?.headers).toContainEqual(XFF);
      expect(x.responses[0]?.status).toBe(403);
    } else expectRefused(x, { status: 431 });
  });

  it('a realistic SDK request with 14 headers is forwarded untouched', async () => {
    const headers: Header[] = [
      ['Host', METADATA_HOST],
      ['User-Agent', 'aws-sdk-java/2.20.0 Linux/6.1 OpenJDK_64-Bit_Server_VM/17'],
      TTL_HEADER,
      ['Accept', '*/*'],
      ['Accept-Encoding', 'gzip, deflate'],
      ['amz-sdk-invocation-id', '2d3c6f0e-8d5a-4a57-9e4e-2c6b8a0e1f11'],
      ['amz-sdk-request', 'attempt=1; max=1'],
      ['X-Amzn-Trace-Id', 'Root=1-5759e988-bd862e3fe1be46a994272793'],
      ['Accept-Language', 'en'],
      ['Cache-Control', 'no-cache'],
      ['Pragma', 'no-cache'],
      ['Content-Length', '0'],
      ['X-Request-Id', 'abc'],
      ['Referer', 'http://localhost/'],
    ];
    const raw = request('PUT', '/latest/api/token', headers);
    const x = await g.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw), method: 'PUT', target: '/latest/api/token' });
    expect(x.responses[0]?.status).toBe(200);
  });
});

describe('the head size bound counts the whole head', () => {
  it('a 10 KB head of 300 medium headers against the 8 KB bound', async () => {
    const x = await g.exchange(tokenPut(padding(300, 'X-Pad-', 'v'.repeat(24))));
    expectRefused(x, { status: 431 });
  });

  it('one 10 KB header', async () => {
    const x = await g.exchange(tokenPut([['X-Big', 'b'.repeat(10_240)]]));
    expectRefused(x, { status: 431 });
  });

  it('a 9 KB request target', async () => {
    const x = await g.exchange(v1Get(`/latest/meta-data/${'a'.repeat(9_216)}`));
    expectRefused(x, { status: [431, 414, 400] });
  });

  it('a 7 KB head is within the bound and forwarded as sent', async () => {
    const raw = v1Get('/latest/meta-data/instance-id', [['X-Big', 'b'.repeat(7_000)]]);
    const x = await g.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw), target: '/latest/meta-data/instance-id' });
  });
});

// ---- findings the adversarial review reported, each fixed ----

describe('a request with more headers than IMDS clients send gets 431 and is recorded', () => {
  it.each([64, 100, 300, 997])('%i padding headers on an otherwise valid token PUT', async (n) => {
    const x = await wide.exchange(tokenPut(padding(n, 'X-Pad-', 'x')));
    expectRefused(x, { status: 431 });
  });

  it.each([64, 100, 300])('%i padding headers on an allowed IMDSv1 GET', async (n) => {
    const x = await wide.exchange(v1Get('/latest/meta-data/', padding(n, 'X-Pad-', 'x')));
    expectRefused(x, { status: 431 });
  });
});

describe('the head size bound counts the whole head, not only names and values', () => {
  it('600 headers of 17 bytes (10 KB head, 7.8 KB of names and values) against the 8 KB bound', async () => {
    const x = await g.exchange(
      tokenPut(padding(600, 'X-Pad-1', 'abcd').map(([, v], i) => [`X-Pad-${100 + (i % 900)}`, v] as const)),
    );
    expectRefused(x, { status: 431 });
  });
});
