import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeTarget } from '../../src/imds/path.js';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { expectForwarded, expectRefused, expectRefusedOrJudgedAsSent } from '../support/guard-verdicts.js';
import {
  headerLines,
  METADATA_HOST,
  request,
  TTL_HEADER,
  tokenPut,
  v2Get,
} from '../support/imds-requests.js';
import { parseResponses } from '../support/raw-http.js';

/**
 * Encodings and path tricks, request-target forms, methods, CONNECT, upgrades and Expect. A path
 * rule guards the credentials and user-data; every trick that reaches them must meet the rule, and
 * whatever is forwarded must be exactly the path that was judged.
 */

const RULES = [
  {
    name: 'no-credentials',
    path: ['/latest/meta-data/iam/security-credentials/', '/latest/user-data'],
    action: 'deny',
  },
];
let g: GuardUnderTest;
let TOKEN = '';

beforeAll(async () => {
  g = await GuardUnderTest.start({
    guard: { rules: RULES },
    upstream: { emulator: { settings: { tokens: 'required' } } },
  });
  TOKEN = (await g.exchange(tokenPut())).responses[0]?.body.toString('latin1') ?? '';
  expect(TOKEN.length).toBeGreaterThan(20);
}, 30_000);
afterAll(() => g?.close());

/** Decodes %XX until nothing changes, then resolves dot segments and separators as a lax server would. */
function laxResolve(target: string): string {
  let p = target.split('?')[0] ?? '';
  for (let i = 0; i < 5; i++) {
    let next: string;
    try {
      next = decodeURIComponent(p);
    } catch {
      break;
    }
    if (next === p) break;
    p = next;
  }
  const n = normalizeTarget(p.replace(/\\/g, '/'));
  return (n.ok ? n.path : p).toLowerCase().replace(/\/$/, '');
}

const PROTECTED = ['/latest/meta-data/iam/security-credentials', '/latest/user-data'];

/** A trick toward a protected path is refused, or forwarded as a path nothing resolves to a protected one. */
async function expectRuleMetOrPathHarmless(target: string): Promise<void> {
  const x = await g.exchange(v2Get(target, TOKEN));
  const why = describeExchange(x);
  expect(x.events.length, why).toBe(1);
  if (x.upstream.length === 0) {
    expectRefused(x, { status: [400, 403, 404] });
    return;
  }
  // forwarded: the upstream got one canonical path, which resolves to nothing protected however
  // many times a server decodes it, and which the guard's own normalization leaves unchanged
  expect(x.upstream.length, why).toBe(1);
  const up = x.upstream[0]!.target;
  expect(PROTECTED, `${up}\n${why}`).not.toContain(laxResolve(up));
  const again = normalizeTarget(up);
  expect(again.ok && again.forwardPath, why).toBe(up);
  expect(x.events[0]?.request.path, why).toBe(again.ok ? again.path : '?');
}

describe('path tricks toward the protected paths meet the rule, or never reach them', () => {
  const tricks = [
    '/latest/meta-data/iam/security-credentials/',
    '/latest/meta-data/iam/security-credentials',
    '/latest/meta-data/iam/security-credentials/?x=1',
    '/latest/meta-data/iam/security-credentials/.',
    '/latest/meta-data/iam/security-credentials/%2e',
    '/latest/meta-data/iam/security-credentials%2f',
    '/latest/meta-data/iam/security-credentials%2F',
    '/latest/meta-data/iam/security%2Dcredentials/',
    '/latest/meta-data/iam/%73ecurity-credentials/',
    '/latest/meta-data/iam/info/../security-credentials/',
    '/latest/meta-data/iam/info/%2e%2e/security-credentials/',
    '/latest/meta-data/iam/info/%2E%2E%2Fsecurity-credentials/',
    '/latest/meta-data/iam/info/..%2fsecurity-credentials/',
    '/latest/meta-data/iam/info%2F..%2Fsecurity-credentials/',
    '/latest/meta-data/iam/info/.%2e/security-credentials/',
    '/latest/meta-data/iam\\security-credentials/',
    '/latest/meta-data/iam/info\\..\\security-credentials/',
    '/latest/meta-data/iam%5csecurity-credentials/',
    '/latest/meta-data/iam/info%5c..%5csecurity-credentials/',
    '//latest/meta-data/iam/security-credentials/',
    '/latest//meta-data//iam//security-credentials/',
    '/latest/./meta-data/./iam/./security-credentials/',
    '/./latest/meta-data/iam/security-credentials/',
    '/../latest/meta-data/iam/security-credentials/',
    '/latest/meta-data/../meta-data/iam/security-credentials/',
    '/LATEST/META-DATA/IAM/SECURITY-CREDENTIALS/',
    '/latest/meta-data/iam/Security-Credentials/',
    '/latest/meta-data/iam/info/%c0%ae%c0%ae/security-credentials/',
    '/latest/meta-data/iam/info/%e0%80%ae%e0%80%ae/security-credentials/',
    '/latest/meta-data/iam/info%c0%af..%c0%afsecurity-credentials/',
    '/latest/meta-data/iam/info/%uff0e%uff0e/security-credentials/',
    '/latest/meta-data/iam/security-credentials/%00',
    '/latest/meta-data/iam/security-credentials%00/',
    '/latest/meta-data/iam/security-credentials/%0d%0aX-Forwarded-For:%209.9.9.9',
    '/latest/meta-data/iam/security-credentials/#frag',
    '/latest/meta-data/iam/security-credentials;x=1/',
    '/latest/user-data',
    '/latest/user-data/',
    '/latest/user-data?',
    '/latest/user%2ddata',
    '/latest/meta-data/../user-data',
    '/latest/meta-data/%2e%2e/user-data',
    '/latest/meta-data/..%5cuser-data',
    '/latest/USER-DATA',
  ];
  it.each(tricks)('GET %s with a valid token', async (target) => {
    await expectRuleMetOrPathHarmless(target);
  });

  it.each([
    '/latest/meta-data/iam/info',
    '/latest/meta-data/./iam/info',
    '/latest//meta-data/iam/info',
    '/latest/meta-data/ami-id?x=%2e%2e',
    '/latest/dynamic/instance-identity/document',
  ])('an unprotected path %s is forwarded in its canonical form', async (target) => {
    const raw = v2Get(target, TOKEN);
    const x = await g.exchange(raw);
    const n = normalizeTarget(target);
    expectForwarded(x, { clientHeaders: headerLines(raw), target: n.ok ? n.forwardPath : '?' });
    expect(x.responses[0]?.status).toBe(200);
  });
});

describe('request-target forms, methods, CONNECT and upgrades are refused in front of the upstream', () => {
  const cases: Array<[string, string, number[]]> = [
    [
      'absolute-form',
      `GET http://${METADATA_HOST}/latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400],
    ],
    [
      'absolute-form, upper-case scheme',
      `GET HTTP://${METADATA_HOST}/latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400],
    ],
    [
      'absolute-form https',
      `GET https://${METADATA_HOST}/latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400],
    ],
    [
      'absolute-form token PUT',
      `PUT http://${METADATA_HOST}/latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\n\r\n`,
      [400],
    ],
    [
      'absolute-form to another host',
      `GET http://attacker.example/latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400],
    ],
    [
      'scheme-relative target',
      `GET //${METADATA_HOST}/latest/meta-data/x/../../../ HTTP/1.1\r\nHost: attacker.example\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400, 403],
    ],
    ['authority-form GET', `GET ${METADATA_HOST}:80 HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`, [400, 405]],
    ['CONNECT', `CONNECT ${METADATA_HOST}:80 HTTP/1.1\r\nHost: ${METADATA_HOST}:80\r\n\r\n`, [400, 405]],
    [
      'CONNECT with a path',
      `CONNECT /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`,
      [400, 405],
    ],
    ['asterisk-form OPTIONS', `OPTIONS * HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`, [400, 405]],
    [
      'target without a leading slash',
      `GET latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`,
      [400],
    ],
    [
      'POST',
      `POST /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nContent-Length: 0\r\n\r\n`,
      [405],
    ],
    ['DELETE', `DELETE /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`, [405]],
    ['TRACE', `TRACE /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`, [405]],
    [
      'OPTIONS on the token path',
      `OPTIONS /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`,
      [405],
    ],
    [
      'PATCH',
      `PATCH /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\n\r\n`,
      [405],
    ],
    ['PROPFIND', `PROPFIND /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`, [400, 405]],
    [
      'lower-case method',
      `get /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400, 405],
    ],
    [
      'PUT outside the token path',
      `PUT /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\n\r\n`,
      [405],
    ],
    [
      'token PUT on a versioned path',
      `PUT /2021-03-23/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\n\r\n`,
      [403, 405],
    ],
    ['token PUT without TTL', `PUT /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`, [400]],
    ...['0', '21601', '-1', '1e3', '0x10', '21600 21600', '0021600'].map(
      (ttl): [string, string, number[]] => [
        `token PUT with TTL ${JSON.stringify(ttl)}`,
        `PUT /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: ${ttl}\r\n\r\n`,
        [400],
      ],
    ),
    [
      'GET on the token path with a TTL',
      `GET /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\n\r\n`,
      [401, 405],
    ],
    [
      'h2c upgrade',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
      [400],
    ],
    [
      'websocket upgrade',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      [400],
    ],
    [
      'upgrade on a token PUT',
      `PUT /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n`,
      [400],
    ],
    ['HTTP/2 prior-knowledge preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', [400, 505]],
    ['HTTP/0.9 request', 'GET /latest/meta-data/\r\n\r\n', [400, 403, 505]],
    [
      'HTTP/1.2',
      `GET /latest/meta-data/ HTTP/1.2\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400, 505],
    ],
    ['a tab in the target', `GET /latest/meta-data/\tHTTP/1.1\r\nHost: ${METADATA_HOST}\r\n\r\n`, [400]],
    ['garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', [400]],
    [
      'a header without a colon',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token T\r\n\r\n`,
      [400],
    ],
    [
      'a header name with a space',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX Forwarded For: 9.9.9.9\r\n\r\n`,
      [400],
    ],
    [
      'a header name with a non-token byte',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-Forwarded-For\x7f: 9.9.9.9\r\n\r\n`,
      [400],
    ],
    [
      'a NUL in a header value',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\x00\r\n\r\n`,
      [400],
    ],
    [
      'Expect: 100-continue with X-Forwarded-For',
      `PUT /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\nExpect: 100-continue\r\nX-Forwarded-For: 9.9.9.9\r\nContent-Length: 0\r\n\r\n`,
      [403],
    ],
  ];
  it.each(cases)('%s', async (_name, raw, statuses) => {
    const x = await g.exchange(raw);
    expectRefused(x, { status: statuses });
  });

  const odd: Array<[string, string, number[]]> = [
    [
      'HTTP/2.0 in a text request line',
      `GET /latest/meta-data/ HTTP/2.0\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400, 505],
    ],
    [
      'two spaces in the request line',
      `GET  /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400],
    ],
    [
      'a request line ending in LF only',
      `GET /latest/meta-data/ HTTP/1.1\nHost: ${METADATA_HOST}\nX-aws-ec2-metadata-token: T\n\n`,
      [400],
    ],
    [
      'a space before the version',
      `GET /latest/meta-data/  HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400],
    ],
    [
      'empty lines before the request line',
      `\r\n\r\nGET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\n\r\n`,
      [400],
    ],
    [
      'Upgrade without Connection: upgrade',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nUpgrade: h2c\r\n\r\n`,
      [400],
    ],
    [
      'Connection naming the token header',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nConnection: X-aws-ec2-metadata-token\r\n\r\n`,
      [400],
    ],
    [
      'Connection naming X-Forwarded-For on a clean request',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nConnection: keep-alive, X-Forwarded-For\r\n\r\n`,
      [400],
    ],
    [
      'Proxy-Connection and Keep-Alive',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n`,
      [400],
    ],
    [
      'TE: trailers and a Trailer header',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nTE: trailers\r\nTrailer: X-Forwarded-For\r\n\r\n`,
      [400],
    ],
    [
      'a chunked GET with a trailer carrying X-Forwarded-For',
      `GET /latest/meta-data/ HTTP/1.1\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: T\r\nTransfer-Encoding: chunked\r\nTrailer: X-Forwarded-For\r\n\r\n0\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n`,
      [400, 403],
    ],
  ];
  it.each(odd)('%s: refused, or forwarded as judged', async (_name, raw, statuses) => {
    const x = await g.exchange(raw);
    expectRefusedOrJudgedAsSent(x, g.config, g.upstream.port, { status: statuses });
    for (const up of x.upstream) {
      expect(up.version).toBe('HTTP/1.1');
      expect(up.headers.map(([k]) => k.toLowerCase())).not.toContain('x-forwarded-for');
    }
  });

  it('Expect: 100-continue on an allowed token PUT is served once, as IMDS would', async () => {
    const raw = request('PUT', '/latest/api/token', [
      ['Host', METADATA_HOST],
      TTL_HEADER,
      ['Expect', '100-continue'],
      ['Content-Length', '0'],
    ]);
    const x = await g.exchange(raw);
    const why = describeExchange(x);
    expect(x.upstream.length, why).toBe(1);
    expect(
      x.responses.filter((r) => r.status >= 200).map((r) => r.status),
      why,
    ).toEqual([200]);
    expect(
      x.events.map((e) => e.action),
      why,
    ).toEqual(['forwarded']);
  });

  it('HEAD is forwarded as HEAD and the client gets no body', async () => {
    const raw = request('HEAD', '/latest/meta-data/instance-id', [
      ['Host', METADATA_HOST],
      ['X-aws-ec2-metadata-token', TOKEN],
    ]);
    const x = await g.exchange(raw, { headRequests: [true] });
    expectForwarded(x, { clientHeaders: headerLines(raw), method: 'HEAD' });
    expect(x.responses[0]?.status).toBe(200);
    expect(x.responses[0]?.body.length).toBe(0);
  });
});

describe('a path still percent-encoded after one decoding never reaches the upstream', () => {
  it.each([
    '/latest/meta-data/iam/info/%252e%252e/security-credentials/',
    '/latest/meta-data/iam/info/%252e%252e%252fsecurity-credentials/',
    '/latest/meta-data/iam/info/%25%32%65%25%32%65/security-credentials/',
  ])('GET %s with a valid token', async (target) => {
    await expectRuleMetOrPathHarmless(target);
  });
});

describe('Expect other than 100-continue is answered by the guard, with an event', () => {
  it('Expect: 200-ok', async () => {
    const x = await g.exchange(
      `PUT /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: 21600\r\nExpect: 200-ok\r\n\r\n`,
    );
    expectRefused(x, { status: [400, 417] });
  });
});

describe('a half-closed client is answered', () => {
  it('a client that half-closes right after its request still gets the answer', async () => {
    const c = await g.connect();
    await c.write(v2Get('/latest/meta-data/instance-id', TOKEN));
    c.finish();
    await c.untilClosed(10_000);
    await g.idle(10_000);
    const [r] = parseResponses(c.received(), { closed: true });
    expect(r?.status).toBe(200);
  });
});
