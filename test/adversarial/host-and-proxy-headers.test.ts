import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { expectForwarded, expectRefused } from '../support/guard-verdicts.js';
import {
  headerLines,
  METADATA_HOST,
  request,
  TOKEN_HEADER_NAME,
  tokenPut,
  v1Get,
  v2Get,
} from '../support/imds-requests.js';
import type { Header } from '../support/raw-http.js';

/**
 * The forms of Host (DNS rebinding, IP spellings, userinfo, ports, absence under HTTP/1.1 and 1.0)
 * and every header a proxy, a load balancer or a CDN in an SSRF path adds.
 */

let g: GuardUnderTest;
let monitor: GuardUnderTest;
let TOKEN = '';

beforeAll(async () => {
  const upstream = { emulator: { settings: { tokens: 'required' as const } } };
  g = await GuardUnderTest.start({ upstream });
  monitor = await GuardUnderTest.start({ guard: { mode: 'monitor' }, upstream });
  TOKEN = (await g.exchange(tokenPut())).responses[0]?.body.toString('latin1') ?? '';
  expect(TOKEN.length).toBeGreaterThan(20);
}, 30_000);
afterAll(async () => {
  await Promise.all([g?.close(), monitor?.close()]);
});

describe('Host', () => {
  const allowed = [
    METADATA_HOST,
    `${METADATA_HOST}:80`,
    '[fd00:ec2::254]',
    '[fd00:ec2::254]:80',
    'instance-data',
    'INSTANCE-DATA',
    'instance-data.ec2.internal',
    `${METADATA_HOST}.`,
  ];
  it.each(allowed)('Host: %s is a metadata address and is forwarded', async (host) => {
    const raw = v2Get('/latest/meta-data/instance-id', TOKEN, [], host);
    const x = await g.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw) });
    expect(x.responses[0]?.status).toBe(200);
  });

  it("the guard's own address and port are a valid Host", async () => {
    for (const host of [g.authority, `localhost:${g.port}`]) {
      const raw = v2Get('/latest/meta-data/instance-id', TOKEN, [], host);
      expectForwarded(await g.exchange(raw), { clientHeaders: headerLines(raw) });
    }
  });

  const refused = [
    'attacker.example',
    'attacker.example:80',
    `${METADATA_HOST}.attacker.example`,
    `${METADATA_HOST}.nip.io`,
    'metadata.google.internal',
    'localhost',
    '127.0.0.1',
    `${METADATA_HOST}:8080`,
    `${METADATA_HOST}:80:80`,
    `${METADATA_HOST}:`,
    `${METADATA_HOST}:0080`,
    `user@${METADATA_HOST}`,
    `user:pass@${METADATA_HOST}`,
    `${METADATA_HOST}@attacker.example`,
    `${METADATA_HOST}/x`,
    `${METADATA_HOST}?x`,
    `${METADATA_HOST}#x`,
    `${METADATA_HOST}%00`,
    `${METADATA_HOST}..`,
    '2852039166',
    '0xa9fea9fe',
    '0251.0376.0251.0376',
    '169.254.43518',
    '169.0xfe.169.254',
    '[::ffff:169.254.169.254]',
    '[::ffff:a9fe:a9fe]',
    'fd00:ec2::254',
    '[fd00:ec2:0::254]',
    '[FD00:EC2::254]:8080',
    '[fd00:ec2::254%eth0]',
    '169.254.169.254 attacker.example',
    '',
    ' ',
    '*',
  ];
  it.each(refused)('Host: "%s" is refused', async (host) => {
    const x = await g.exchange(
      request('GET', '/latest/meta-data/', [
        ['Host', host],
        [TOKEN_HEADER_NAME, TOKEN],
      ]),
    );
    expectRefused(x, { status: [400, 403] });
  });

  it('no Host under HTTP/1.1 is refused', async () => {
    const x = await g.exchange(request('GET', '/latest/meta-data/', [[TOKEN_HEADER_NAME, TOKEN]]));
    expectRefused(x, { status: [400, 403] });
  });

  it('no Host under HTTP/1.0 is refused', async () => {
    const x = await g.exchange(`GET /latest/meta-data/ HTTP/1.0\r\n${TOKEN_HEADER_NAME}: ${TOKEN}\r\n\r\n`);
    expectRefused(x, { status: [400, 403] });
  });

  it('a metadata Host under HTTP/1.0 is forwarded (as HTTP/1.1, one request, connection closed)', async () => {
    const raw = `GET /latest/meta-data/instance-id HTTP/1.0\r\nHost: ${METADATA_HOST}\r\n${TOKEN_HEADER_NAME}: ${TOKEN}\r\n\r\n`;
    const x = await g.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw) });
    expect(x.end).toBe('closed');
  });

  it('a rebinding Host on a token PUT is refused', async () => {
    expectRefused(await g.exchange(tokenPut([], 'attacker.example')), { status: [400, 403] });
  });

  it('a rebinding Host on an allowed IMDSv1 read is refused', async () => {
    expectRefused(
      await g.exchange(v1Get('/latest/meta-data/iam/security-credentials/', [], 'attacker.example')),
      {
        status: [400, 403],
      },
    );
  });
});

/** The headers a proxy in an SSRF path adds that the guard has always refused (DESIGN.md policy 1). */
const FORWARDING = ['X-Forwarded-For', 'Forwarded', 'X-Forwarded-Host'];
/** The ones nginx, HAProxy or a CDN add besides. */
const PROXY = [
  'X-Forwarded-Proto',
  'X-Forwarded-Port',
  'Via',
  'X-Real-IP',
  'True-Client-IP',
  'X-Client-IP',
  'X-Original-Forwarded-For',
  'CF-Connecting-IP',
];
const values: Record<string, string> = {
  Forwarded: 'for=198.51.100.7;proto=http;by=203.0.113.43',
  Via: '1.1 squid-proxy (squid/5.7)',
  'X-Forwarded-Proto': 'http',
  'X-Forwarded-Port': '80',
  'X-Forwarded-Host': 'app.example.com',
};
const kinds: Array<[string, (extra: Header[]) => string]> = [
  ['token PUT', (extra) => tokenPut(extra)],
  ['token-bearing GET', (extra) => v2Get('/latest/meta-data/iam/security-credentials/', TOKEN, extra)],
  ['allowed IMDSv1 GET', (extra) => v1Get('/latest/meta-data/iam/security-credentials/', extra)],
];
const casing: Array<[string, (n: string) => string]> = [
  ['as written', (n) => n],
  ['lower-case', (n) => n.toLowerCase()],
  ['upper-case', (n) => n.toUpperCase()],
];

/** Every (header, casing, request kind) case, plus an empty value and a header before Host (built when run: the token is issued in beforeAll). */
function caseList(names: readonly string[]): Array<[string, () => string]> {
  const cases: Array<[string, () => string]> = [];
  for (const name of names) {
    for (const [kind, build] of kinds) {
      for (const [cn, cf] of casing) {
        cases.push([
          `${name} (${cn}) on a ${kind}`,
          () => build([[cf(name), values[name] ?? '198.51.100.7']]),
        ]);
      }
    }
    cases.push([`${name} with an empty value on a token PUT`, () => tokenPut([[name, '']])]);
    cases.push([
      `${name} first, before Host`,
      () =>
        request('PUT', '/latest/api/token', [
          [name, '10.0.0.1'],
          ['Host', METADATA_HOST],
          ['X-aws-ec2-metadata-token-ttl-seconds', '21600'],
        ]),
    ]);
  }
  return cases;
}

describe('forwarding headers', () => {
  it.each(caseList(FORWARDING))('enforce refuses %s, and nothing reaches the upstream', async (_n, build) => {
    const x = await g.exchange(build());
    expectRefused(x, { status: 403 });
  });

  it.each(FORWARDING)('monitor forwards %s as sent, and flags it', async (name) => {
    const raw = tokenPut([[name, values[name] ?? '198.51.100.7']]);
    const x = await monitor.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw), decision: 'deny', action: 'flagged' });
    expect(x.events[0]?.alert).toBe(true);
  });

  it('the guard adds no proxy header of its own to what it forwards', async () => {
    const raw = tokenPut([['User-Agent', 'aws-sdk-js/3.600.0']]);
    const x = await g.exchange(raw);
    const up = expectForwarded(x, { clientHeaders: headerLines(raw) });
    const lower = up.headers.map(([k]) => k.toLowerCase());
    for (const n of [...FORWARDING, ...PROXY])
      expect(lower, describeExchange(x)).not.toContain(n.toLowerCase());
  });
});

// ---- findings the adversarial review reported, each fixed ----

describe('the other proxy headers are refused as forwarding headers', () => {
  it.each(caseList(PROXY))('enforce refuses %s, and nothing reaches the upstream', async (_n, build) => {
    const x = await g.exchange(build());
    expectRefused(x, { status: 403 });
  });

  it.each(PROXY)('monitor forwards %s as sent, and flags it', async (name) => {
    const raw = tokenPut([[name, values[name] ?? '198.51.100.7']]);
    const x = await monitor.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw), decision: 'deny', action: 'flagged' });
    expect(x.events[0]?.alert).toBe(true);
  });
});
