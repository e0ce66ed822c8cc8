import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardUnderTest } from '../support/guard-under-test.js';
import { expectRefused } from '../support/guard-verdicts.js';
import { METADATA_HOST, request, TTL_HEADER } from '../support/imds-requests.js';
import type { Header } from '../support/raw-http.js';

/**
 * A header that must appear once, sent twice: Host, the token, the TTL, the guard's
 * secret, Content-Length and Transfer-Encoding, in different casings and positions. The policy reads
 * one copy and the upstream may read the other, so every such request is refused, in enforce and
 * monitor alike (monitor at least flags it), and nothing reaches the upstream in enforce.
 */

const SECRET = 'guard-secret-8a1d2f77c0';
let g: GuardUnderTest;
let monitor: GuardUnderTest;

beforeAll(async () => {
  const upstream = { emulator: { settings: { tokens: 'optional' as const } } };
  g = await GuardUnderTest.start({ guard: { authSecret: SECRET }, upstream });
  monitor = await GuardUnderTest.start({ guard: { mode: 'monitor', authSecret: SECRET }, upstream });
}, 30_000);
afterAll(async () => {
  await Promise.all([g?.close(), monitor?.close()]);
});

interface DupCase {
  header: string;
  /** The two values sent. */
  values: [string, string];
  /** Builds the request around the two header lines (already placed). */
  build: (headers: Header[]) => string;
  /** Headers of the request without the duplicated one. */
  base: Header[];
}

const FILLER: Header[] = [
  ['Accept', '*/*'],
  ['User-Agent', 'aws-sdk-go/1.44'],
  ['X-Trace', '1'],
];

const GET = (h: Header[]) => request('GET', '/latest/meta-data/iam/security-credentials/', h);
const PUT = (h: Header[]) => request('PUT', '/latest/api/token', h);

const cases: DupCase[] = [
  ...(
    [
      ['21600', '21600'],
      ['21600', '0'],
      ['0', '21600'],
      ['1', '99999'],
    ] as const
  ).map(
    (values): DupCase => ({
      header: TTL_HEADER[0],
      values: [...values],
      build: PUT,
      base: [['Host', METADATA_HOST]],
    }),
  ),
  ...(
    [
      [SECRET, SECRET],
      [SECRET, 'wrong-secret-value'],
      ['wrong-secret-value', SECRET],
    ] as const
  ).map(
    (values): DupCase => ({
      header: 'X-Meta-Auth',
      values: [...values],
      // tokenless, no allowed User-Agent: only the secret could allow it
      build: (h) => GET(h.filter(([k]) => k !== 'User-Agent')),
      base: [['Host', METADATA_HOST]],
    }),
  ),
  ...(
    [
      ['0', '0'],
      ['0', '5'],
      ['5', '0'],
    ] as const
  ).map(
    (values): DupCase => ({
      header: 'Content-Length',
      values: [...values],
      build: (h) => `${PUT(h)}hello`,
      base: [['Host', METADATA_HOST], TTL_HEADER],
    }),
  ),
  ...(
    [
      ['chunked', 'chunked'],
      ['chunked', 'identity'],
      ['identity', 'chunked'],
    ] as const
  ).map(
    (values): DupCase => ({
      header: 'Transfer-Encoding',
      values: [...values],
      build: (h) => `${PUT(h)}0\r\n\r\n`,
      base: [['Host', METADATA_HOST], TTL_HEADER],
    }),
  ),
];

const casings: Array<[string, (n: string) => string, (n: string) => string]> = [
  ['same casing', (n) => n, (n) => n],
  ['second lower-case', (n) => n, (n) => n.toLowerCase()],
  ['first upper-case', (n) => n.toUpperCase(), (n) => n],
];

const placements: Array<[string, (base: Header[], a: Header, b: Header) => Header[]]> = [
  ['adjacent', (base, a, b) => [...base, a, b, ...FILLER]],
  ['apart', (base, a, b) => [a, ...base, ...FILLER, b]],
];

function variants(list: readonly DupCase[]) {
  const out: Array<[string, string]> = [];
  for (const c of list) {
    for (const [cn, first, second] of casings) {
      for (const [pn, place] of placements) {
        const a: Header = [first(c.header), c.values[0]];
        const b: Header = [second(c.header), c.values[1]];
        out.push([
          `${c.header}: ${JSON.stringify(c.values[0].slice(0, 20))} then ${JSON.stringify(c.values[1].slice(0, 20))}, ${cn}, ${pn}`,
          c.build(place(c.base, a, b)),
        ]);
      }
    }
  }
  return out;
}

describe('enforce: a repeated single-valued header is refused, nothing reaches the upstream', () => {
  it.each(variants(cases))('%s', async (_name, raw) => {
    const x = await g.exchange(raw);
    expectRefused(x, { status: [400, 403] });
  });
});

describe('monitor: a repeated single-valued header is never recorded as allowed', () => {
  it.each(variants(cases).filter((_, i) => i % 3 === 0))('%s', async (_name, raw) => {
    const x = await monitor.exchange(raw);
    expect(x.events.length, JSON.stringify(x.events)).toBe(1);
    expect(x.events[0]?.decision).toBe('deny');
  });
});

// ---- findings the adversarial review reported, each fixed ----

import { TOKEN_HEADER_NAME } from '../support/imds-requests.js';

const TOKEN = 'AQAEAJ7pmcUWq7yKjCZsgHgtGGl5jRxxCTG4hUEpypp5ebfT4dcNBw==';

/** A repeated Host or token header: node keeps one Host in req.headers, and forwards both tokens. */
const openCases: DupCase[] = [
  ...(
    [
      [METADATA_HOST, METADATA_HOST],
      [METADATA_HOST, 'attacker.example'],
      ['attacker.example', METADATA_HOST],
      [METADATA_HOST, `${METADATA_HOST}:80`],
      [METADATA_HOST, ''],
    ] as const
  ).map(
    (values): DupCase => ({
      header: 'Host',
      values: [...values],
      build: GET,
      base: [[TOKEN_HEADER_NAME, TOKEN]],
    }),
  ),
  ...(
    [
      [TOKEN, TOKEN],
      [TOKEN, ''],
      ['', TOKEN],
      [TOKEN, 'AQAEAOtherTokenValue0000000000000000000000000000000000=='],
    ] as const
  ).map(
    (values): DupCase => ({
      header: TOKEN_HEADER_NAME,
      values: [...values],
      build: GET,
      base: [['Host', METADATA_HOST]],
    }),
  ),
];

describe('enforce: a repeated Host or token header is refused, nothing reaches the upstream', () => {
  it.each(variants(openCases))('%s', async (_name, raw) => {
    const x = await g.exchange(raw);
    expectRefused(x, { status: [400, 403] });
  });
});

describe('monitor: a repeated Host or token header is never recorded as allowed', () => {
  it.each(variants(openCases).filter((_, i) => i % 3 === 0))('%s', async (_name, raw) => {
    const x = await monitor.exchange(raw);
    expect(x.events.length, JSON.stringify(x.events)).toBe(1);
    expect(x.events[0]?.decision).toBe('deny');
  });
});
