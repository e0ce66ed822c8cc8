import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { METADATA_HOST, request, TTL_HEADER, tokenPut, v2Get } from '../support/imds-requests.js';
import {
  type Header,
  headerValue,
  type ParsedResponse,
  parseResponses,
  RawConnection,
} from '../support/raw-http.js';

/**
 * An attacker probes before stealing: the guard's refusals and the trap's answers
 * must look like the metadata service's own, byte for byte in structure: the status line, header
 * names with their casing and order, Connection: close, Accept-Ranges: none, no Keep-Alive, the same
 * body, and tokens in standard base64. The reference is the project's emulator, asked the same bytes.
 */

let enforce: GuardUnderTest;
let trap: GuardUnderTest;
let emuPort = 0;

beforeAll(async () => {
  enforce = await GuardUnderTest.start({ upstream: { emulator: { settings: { tokens: 'required' } } } });
  trap = await GuardUnderTest.start({
    guard: { mode: 'trap' },
    upstream: { emulator: { settings: { tokens: 'optional' } } },
  });
  emuPort = Number(new URL(enforce.upstream.emulator!.url).port);
}, 30_000);
afterAll(async () => {
  await Promise.all([enforce?.close(), trap?.close()]);
});

/** What the emulator answers to exactly these bytes (tokens required: `port` picks which one). */
async function emulator(raw: string, port = emuPort): Promise<ParsedResponse> {
  const c = await RawConnection.open('127.0.0.1', port);
  await c.write(raw);
  await c.untilClosed(10_000);
  const [r] = parseResponses(c.received(), { closed: true });
  if (!r) throw new Error('the emulator did not answer');
  return r;
}

/** Header names in order, with their casing; values too except the ones that vary per answer. */
function shape(headers: readonly Header[]): string[] {
  return headers.map(([k, v]) => {
    const n = k.toLowerCase();
    if (n === 'date' || n === 'content-length' || n === 'x-aws-ec2-metadata-token-ttl-seconds') return k;
    return `${k}: ${v}`;
  });
}

function expectSameShape(got: ParsedResponse, want: ParsedResponse, why: string): void {
  expect(got.startLine, why).toBe(want.startLine);
  expect(shape(got.headers), why).toEqual(shape(want.headers));
  expect(headerValue(got.headers, 'keep-alive'), why).toBeUndefined();
  expect(headerValue(got.headers, 'connection')?.toLowerCase(), why).toBe('close');
  expect(headerValue(got.headers, 'accept-ranges'), why).toBe('none');
}

describe('the trap answers like IMDS', () => {
  const optionalPort = () => Number(new URL(trap.upstream.emulator!.url).port);

  it('a token PUT: same head, a standard base64 token of the same length', async () => {
    const raw = tokenPut();
    const x = await trap.exchange(raw);
    const got = x.responses[0]!;
    const want = await emulator(raw, optionalPort());
    expectSameShape(
      got,
      want,
      `${describeExchange(x)}\ntrap: ${got.head.toString('latin1')}\nIMDS: ${want.head.toString('latin1')}`,
    );
    const token = got.body.toString('latin1');
    expect(token).toMatch(/^AQAEA[A-Za-z0-9+/]+={0,2}$/);
    expect(token.length).toBe(want.body.length);
    expect(Buffer.from(token, 'base64').toString('base64')).toBe(token);
  });

  it('listings, leaves, 404s and bad tokens: the same heads as IMDS', async () => {
    const tokenRaw = tokenPut();
    const trapToken = (await trap.exchange(tokenRaw)).responses[0]!.body.toString('latin1');
    const emuToken = (await emulator(tokenRaw, optionalPort())).body.toString('latin1');
    const paths: Array<[string, (t: string) => string]> = [
      ['listing', (t) => v2Get('/latest/meta-data/', t)],
      ['leaf', (t) => v2Get('/latest/meta-data/instance-id', t)],
      ['unknown path', (t) => v2Get('/latest/meta-data/no-such-thing', t)],
      [
        'forged token',
        () => v2Get('/latest/meta-data/', 'AQAEAforgedforgedforgedforgedforgedforgedforgedforged00='),
      ],
      ['tokenless listing', () => request('GET', '/latest/meta-data/', [['Host', METADATA_HOST]])],
      ['GET on the token path', () => request('GET', '/latest/api/token', [['Host', METADATA_HOST]])],
      [
        'PUT on a data path',
        () => request('PUT', '/latest/meta-data/', [['Host', METADATA_HOST], TTL_HEADER]),
      ],
      ['token PUT with X-Forwarded-For', () => tokenPut([['X-Forwarded-For', '9.9.9.9']])],
    ];
    for (const [name, build] of paths) {
      const x = await trap.exchange(build(trapToken));
      const got = x.responses[0]!;
      const want = await emulator(build(emuToken), optionalPort());
      expectSameShape(
        got,
        want,
        `${name}\n${describeExchange(x)}\ntrap: ${got.head.toString('latin1')}\nIMDS: ${want.head.toString('latin1')}`,
      );
      expect(x.upstreamBytes).toBe(0);
    }
  });
});

// ---- findings the adversarial review reported, each fixed ----

describe('the guard refuses with exactly the answer IMDS would give', () => {
  const cases: Array<[string, string]> = [
    [
      'a tokenless read (401)',
      request('GET', '/latest/meta-data/iam/security-credentials/', [['Host', METADATA_HOST]]),
    ],
    ['a token PUT with X-Forwarded-For (403)', tokenPut([['X-Forwarded-For', '9.9.9.9']])],
    [
      'a token GET with X-Forwarded-For (403)',
      v2Get('/latest/meta-data/', 'AQAEAtoken==', [['X-Forwarded-For', '9.9.9.9']]),
    ],
    ['a token PUT without TTL (400)', request('PUT', '/latest/api/token', [['Host', METADATA_HOST]])],
    [
      'a token PUT with TTL 0 (400)',
      request('PUT', '/latest/api/token', [
        ['Host', METADATA_HOST],
        [TTL_HEADER[0], '0'],
      ]),
    ],
    [
      'a PUT on a data path (405)',
      request('PUT', '/latest/meta-data/', [['Host', METADATA_HOST], TTL_HEADER]),
    ],
    [
      'a POST (405)',
      request('POST', '/latest/meta-data/', [
        ['Host', METADATA_HOST],
        ['Content-Length', '0'],
      ]),
    ],
  ];
  it.each(cases)('%s', async (_n, raw) => {
    const x = await enforce.exchange(raw);
    const why = describeExchange(x);
    expect(x.upstreamBytes, why).toBe(0);
    const want = await emulator(raw);
    const got = x.responses[0]!;
    expectSameShape(
      got,
      want,
      `${why}\nIMDS: ${want.head.toString('latin1')}\nguard: ${got.head.toString('latin1')}`,
    );
    expect(got.body.toString('latin1')).toBe(want.body.toString('latin1'));
  });

  it('a forwarded answer keeps the upstream shape too (Connection: close, no Keep-Alive)', async () => {
    const raw = tokenPut();
    const x = await enforce.exchange(raw);
    const got = x.responses[0]!;
    const want = await emulator(raw);
    expectSameShape(
      got,
      want,
      `${describeExchange(x)}\nIMDS: ${want.head.toString('latin1')}\nguard: ${got.head.toString('latin1')}`,
    );
  });

  it('parser-level refusals (a 431, a malformed request) carry the same headers as IMDS errors', async () => {
    const ref = await emulator(request('GET', '/latest/meta-data/', [['Host', METADATA_HOST]]));
    for (const raw of [tokenPut([['X-Big', 'b'.repeat(20_000)]]), 'GARBAGE\r\n\r\n']) {
      const x = await enforce.exchange(raw);
      const got = x.responses[0]!;
      const why = `${describeExchange(x)}\nguard: ${got.head.toString('latin1')}`;
      expect(
        got.headers.map(([k]) => k).filter((k) => k !== 'Allow'),
        why,
      ).toEqual(ref.headers.map(([k]) => k));
      expect(headerValue(got.headers, 'connection'), why).toBe('close');
    }
  });
});
