import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { expectForwarded, expectRefused } from '../support/guard-verdicts.js';
import {
  headerLines,
  METADATA_HOST,
  request,
  TTL_HEADER,
  tokenPut,
  v1Get,
  v2Get,
} from '../support/imds-requests.js';
import type { Header } from '../support/raw-http.js';

/**
 * Request smuggling: Content-Length and Transfer-Encoding in every
 * combination and disguise, and pipelines whose later request must be judged on its own. The
 * verdict is what the upstream received, parsed strictly: a smuggled request shows up there as a
 * second request, or as a request the guard never judged.
 */

/** A real token, issued through the guard in beforeAll. */
let TOKEN = '';
const XFF: Header = ['X-Forwarded-For', '9.9.9.9'];
/** What an attacker wants the upstream to run: a token PUT through an SSRF proxy. */
const SMUGGLED = tokenPut([XFF]);
/** A tokenless read from an unknown caller (no allowed User-Agent). */
const TOKENLESS = request('GET', '/latest/meta-data/iam/security-credentials/', [['Host', METADATA_HOST]]);

let g: GuardUnderTest;
beforeAll(async () => {
  g = await GuardUnderTest.start({ upstream: { emulator: { settings: { tokens: 'required' } } } });
  TOKEN = (await g.exchange(tokenPut())).responses[0]?.body.toString('latin1') ?? '';
  expect(TOKEN).toMatch(/^[A-Za-z0-9+/]+=*$/);
}, 30_000);
afterAll(() => g?.close());

const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;

describe('Content-Length and Transfer-Encoding together are refused in every order and disguise', () => {
  const body = `0\r\n\r\n${SMUGGLED}`;
  const cl = String(body.length);
  const te = (v: string): Header => ['Transfer-Encoding', v];
  const combos: Array<[string, Header[]]> = [
    ['CL then TE', [['Content-Length', cl], te('chunked')]],
    ['TE then CL', [te('chunked'), ['Content-Length', cl]]],
    ['CL 0 then TE', [['Content-Length', '0'], te('chunked')]],
    ['TE "chunked, identity" with CL', [te('chunked, identity'), ['Content-Length', cl]]],
    ['TE "identity, chunked" with CL', [te('identity, chunked'), ['Content-Length', cl]]],
    ['TE "Chunked" with CL', [te('Chunked'), ['Content-Length', cl]]],
    ['TE "CHUNKED" with CL', [te('CHUNKED'), ['Content-Length', cl]]],
    ['TE " chunked" with CL', [te('\tchunked'), ['Content-Length', cl]]],
    ['TE "chunked\\t" with CL', [te('chunked\t'), ['Content-Length', cl]]],
    ['TE "gzip, chunked" with CL', [te('gzip, chunked'), ['Content-Length', cl]]],
    ['TE "chunked;q=1" with CL', [te('chunked;q=1'), ['Content-Length', cl]]],
    [
      'te lower-case with CL',
      [
        ['transfer-encoding', 'chunked'],
        ['content-length', cl],
      ],
    ],
    [
      'TE upper-case with CL',
      [
        ['TRANSFER-ENCODING', 'chunked'],
        ['CONTENT-LENGTH', cl],
      ],
    ],
  ];
  it.each(combos)('%s, on a token PUT', async (_n, framing) => {
    const x = await g.exchange(
      request('PUT', '/latest/api/token', [['Host', METADATA_HOST], TTL_HEADER, ...framing], body),
    );
    expectRefused(x, { status: 400 });
  });
  it.each(combos)('%s, on an allowed IMDSv2 GET', async (_n, framing) => {
    const x = await g.exchange(
      request(
        'GET',
        '/latest/meta-data/',
        [['Host', METADATA_HOST], ['X-aws-ec2-metadata-token', TOKEN], ...framing],
        body,
      ),
    );
    expectRefused(x, { status: 400 });
  });
});

/** Sends a token PUT with `lines` as its framing and the smuggled PUT as its "body". */
async function expectNoSmuggledRequest(lines: string): Promise<void> {
  const body = `0\r\n\r\n${SMUGGLED}`;
  const raw = `PUT /latest/api/token HTTP/1.1\r\nHost: ${METADATA_HOST}\r\n${TTL_HEADER[0]}: ${TTL_HEADER[1]}\r\n${lines}\r\n\r\n${body}`;
  const x = await g.exchange(raw, { responses: 1 });
  const why = describeExchange(x);
  // never a second request upstream, never the smuggled PUT's X-Forwarded-For
  expect(x.upstream.length, why).toBeLessThanOrEqual(1);
  for (const r of x.upstream) {
    expect(r.complete, why).toBe(true);
    expect(
      r.headers.map(([k]) => k.toLowerCase()),
      why,
    ).not.toContain('x-forwarded-for');
  }
  // and each request the guard passed was one it recorded as judged
  const forwarded = x.events.filter((e) => e.action === 'forwarded' || e.action === 'flagged');
  expect(forwarded.length, why).toBe(x.upstream.length);
  if (x.upstream.length === 0)
    expect(
      x.events.some((e) => e.decision === 'deny'),
      why,
    ).toBe(true);
}

describe('disguised framing headers are refused, or forwarded with framing the upstream reads the same way', () => {
  const body = `0\r\n\r\n${SMUGGLED}`;
  const raws: Array<[string, string]> = [
    [
      'space before the colon: "Transfer-Encoding : chunked"',
      `Transfer-Encoding : chunked\r\nContent-Length: ${body.length}`,
    ],
    ['tab before the colon', `Transfer-Encoding\t: chunked\r\nContent-Length: ${body.length}`],
    [
      'obs-fold continuation of TE',
      `Transfer-Encoding: identity\r\n chunked\r\nContent-Length: ${body.length}`,
    ],
    [
      'obs-fold hiding TE in another header',
      `X-Foo: bar\r\n Transfer-Encoding: chunked\r\nContent-Length: ${body.length}`,
    ],
    ['leading space on the TE line', ` Transfer-Encoding: chunked\r\nContent-Length: ${body.length}`],
    ['CR inside a value', `X-Foo: a\rTransfer-Encoding: chunked\r\nContent-Length: ${body.length}`],
    ['LF-only line before TE', `X-Foo: a\nTransfer-Encoding: chunked\r\nContent-Length: ${body.length}`],
    ['NUL in the TE value', `Transfer-Encoding: chunked\x00\r\nContent-Length: ${body.length}`],
    ['vertical tab in the TE value', `Transfer-Encoding: \x0bchunked\r\nContent-Length: ${body.length}`],
    [
      'Transfer_Encoding (underscore) with CL',
      `Transfer_Encoding: chunked\r\nContent-Length: ${body.length}`,
    ],
    ['Content-Length "+N"', `Content-Length: +${body.length}`],
    ['Content-Length "N, N"', `Content-Length: ${body.length}, ${body.length}`],
    ['Content-Length hex', `Content-Length: 0x${body.length.toString(16)}`],
    ['Content-Length negative', 'Content-Length: -1'],
    ['Content-Length huge', 'Content-Length: 99999999999999999999999'],
    ['Content-Length with a space inside', `Content-Length: 1 ${body.length}`],
    ['two Content-Length with different values', `Content-Length: 5\r\nContent-Length: ${body.length}`],
  ];
  it.each(raws)('%s', async (_n, lines) => {
    await expectNoSmuggledRequest(lines);
  });
});

describe('a body is forwarded with the framing the guard judged', () => {
  it('a chunked token PUT body arrives as one request with its bytes', async () => {
    const raw = request(
      'PUT',
      '/latest/api/token',
      [['Host', METADATA_HOST], TTL_HEADER, ['Transfer-Encoding', 'chunked']],
      `${chunk('abc')}${chunk('de')}0\r\n\r\n`,
    );
    const x = await g.exchange(raw);
    const up = expectForwarded(x, { clientHeaders: headerLines(raw), method: 'PUT' });
    expect(up.body.toString()).toBe('abcde');
  });

  it('a Content-Length body arrives as one request with its bytes', async () => {
    const raw = request(
      'PUT',
      '/latest/api/token',
      [['Host', METADATA_HOST], TTL_HEADER, ['Content-Length', '5']],
      'hello',
    );
    const x = await g.exchange(raw);
    const up = expectForwarded(x, { clientHeaders: headerLines(raw), method: 'PUT' });
    expect(up.body.toString()).toBe('hello');
  });

  it('a request carried in a Content-Length body stays a body', async () => {
    const raw = request(
      'GET',
      '/latest/meta-data/',
      [
        ['Host', METADATA_HOST],
        ['X-aws-ec2-metadata-token', TOKEN],
        ['Content-Length', String(SMUGGLED.length)],
      ],
      SMUGGLED,
    );
    const x = await g.exchange(raw);
    if (x.upstream.length > 0) {
      const up = expectForwarded(x, { clientHeaders: headerLines(raw) });
      expect(up.body.toString('latin1')).toBe(SMUGGLED);
    } else expectRefused(x, { status: [400, 413] });
  });
});

/** The first request is allowed; the later ones are not. */
async function pipeline(allowed: string, ...denied: string[]) {
  const x = await g.exchange([allowed, ...denied].join(''), { responses: 1 + denied.length });
  const why = describeExchange(x);
  // the allowed request was forwarded, alone
  expect(x.upstream.length, why).toBe(1);
  expect(x.upstream[0]?.startLine, why).toBe(allowed.split('\r\n')[0]);
  expect(x.responses[0]?.status, why).toBe(x.events[0]?.upstream?.status);
  // every later answer (if the guard did not close first) is a refusal with its own deny event
  for (const r of x.responses.slice(1)) expect(r.status, why).toBeGreaterThanOrEqual(400);
  expect(x.events[0]?.action, why).toBe('forwarded');
  // every request has its event: a later one is refused, or (the guard closed the connection after
  // the first answer, as IMDS does) judged, recorded and never served (status 499)
  expect(x.events.length, why).toBe(1 + denied.length);
  for (const [i, e] of x.events.slice(1).entries()) {
    const answered = x.responses[i + 1] !== undefined;
    if (answered) {
      expect(e.decision, why).toBe('deny');
      expect(e.action, why).toBe('refused');
    } else {
      expect(e.status, why).toBe(499);
      expect(e.reason, why).toContain('not served');
    }
  }
  return x;
}

describe('pipelining: each request is judged on its own, and a refused one never reaches the upstream', () => {
  it('an allowed GET, then a token PUT with X-Forwarded-For', async () => {
    await pipeline(v2Get('/latest/meta-data/', TOKEN), SMUGGLED);
  });
  it('an allowed GET, then a tokenless read from an unknown caller', async () => {
    await pipeline(v2Get('/latest/meta-data/', TOKEN), TOKENLESS);
  });
  it('an allowed token PUT, then a GET with a rebinding Host', async () => {
    await pipeline(tokenPut(), v2Get('/latest/meta-data/', TOKEN, [], 'attacker.example'));
  });
  it('an allowed GET with an empty chunked body, then the smuggled PUT', async () => {
    await pipeline(
      request(
        'GET',
        '/latest/meta-data/',
        [
          ['Host', METADATA_HOST],
          ['X-aws-ec2-metadata-token', TOKEN],
          ['Transfer-Encoding', 'chunked'],
        ],
        '0\r\n\r\n',
      ),
      SMUGGLED,
    );
  });
  it('an allowed GET with Content-Length: 0, then the smuggled PUT', async () => {
    await pipeline(
      request('GET', '/latest/meta-data/', [
        ['Host', METADATA_HOST],
        ['X-aws-ec2-metadata-token', TOKEN],
        ['Content-Length', '0'],
      ]),
      SMUGGLED,
    );
  });
  it('twenty allowed GETs, then the smuggled PUT', async () => {
    const allowed = v2Get('/latest/meta-data/', TOKEN);
    const x = await g.exchange(allowed.repeat(20) + SMUGGLED, { responses: 21 });
    const why = describeExchange(x);
    // the guard closes the connection after an answer, as IMDS does: the rest are judged, not served
    expect(x.upstream.length, why).toBeGreaterThanOrEqual(1);
    expect(x.upstream.length, why).toBeLessThanOrEqual(20);
    expect(x.events).toHaveLength(21);
    expect(x.events[20]?.rule, why).toBe('forwarding-header');
    for (const r of x.upstream)
      expect(
        r.headers.map(([k]) => k.toLowerCase()),
        why,
      ).not.toContain('x-forwarded-for');
    const last = x.events[x.events.length - 1];
    if (x.responses.length === 21) expect(last?.rule, why).toBe('forwarding-header');
  });
  it('after a smuggling refusal, nothing else on the connection is served', async () => {
    const first = request(
      'GET',
      '/latest/meta-data/',
      [
        ['Host', METADATA_HOST],
        ['X-aws-ec2-metadata-token', TOKEN],
        ['Content-Length', '5'],
        ['Transfer-Encoding', 'chunked'],
      ],
      '0\r\n\r\n',
    );
    const x = await g.exchange(first + v2Get('/latest/meta-data/', TOKEN) + SMUGGLED, { responses: 3 });
    const why = describeExchange(x);
    expect(x.upstreamBytes, why).toBe(0);
    expect(x.responses.length, why).toBe(1);
    expect(x.responses[0]?.status, why).toBe(400);
  });
  it('a pipelined tokenless request after an allowed v1 one is judged on its own User-Agent', async () => {
    await pipeline(v1Get('/latest/meta-data/instance-id'), TOKENLESS);
  });
});

// ---- findings the adversarial review reported, each fixed ----

describe('a pipelined request with two Host headers is refused', () => {
  it('an allowed GET, then a GET with two Host headers', async () => {
    await pipeline(
      v2Get('/latest/meta-data/', TOKEN),
      request('GET', '/latest/meta-data/', [
        ['Host', METADATA_HOST],
        ['Host', 'attacker.example'],
        ['X-aws-ec2-metadata-token', TOKEN],
      ]),
    );
  });
});

describe('a parse error after a pipelined request does not jump ahead of its answer', () => {
  it('Content-Length 0, then bytes that are no request', async () => {
    await expectNoSmuggledRequest('Content-Length: 0');
  });
  it('after Connection: close, a pipelined request is not served', async () => {
    const x = await g.exchange(
      v2Get('/latest/meta-data/', TOKEN, [['Connection', 'close']]) +
        v2Get('/latest/meta-data/ami-id', TOKEN),
      {
        responses: 2,
      },
    );
    const why = describeExchange(x);
    expect(x.upstream.length, why).toBe(1);
    expect(x.responses.length, why).toBe(1);
  });
  it('after an HTTP/1.0 request without keep-alive, a pipelined request is not served', async () => {
    const x = await g.exchange(
      `GET /latest/meta-data/ HTTP/1.0\r\nHost: ${METADATA_HOST}\r\nX-aws-ec2-metadata-token: ${TOKEN}\r\n\r\n${SMUGGLED}`,
      { responses: 2 },
    );
    const why = describeExchange(x);
    expect(x.upstream.length, why).toBe(1);
    expect(x.responses.length, why).toBe(1);
  });
});

describe('a request pipelined after a refusal that closes the connection leaves nothing in flight', () => {
  // its own guard: a leaked in-flight request would hold every later case's idle wait
  let own: GuardUnderTest;
  beforeAll(async () => {
    own = await GuardUnderTest.start({ upstream: { emulator: { settings: { tokens: 'required' } } } });
  }, 30_000);
  afterAll(() => own?.close());

  it('an allowed GET, then a token PUT with Forwarded, then a tokenless read', async () => {
    const x = await own.exchange(
      v2Get('/latest/meta-data/', 'AQAEAnot-issued==') + tokenPut([['Forwarded', 'for=9.9.9.9']]) + TOKENLESS,
      {
        responses: 3,
      },
    );
    const why = describeExchange(x);
    expect(x.upstream.length, why).toBe(1);
    expect(
      x.upstream[0]?.headers.map(([k]) => k.toLowerCase()),
      why,
    ).not.toContain('forwarded');
    // every request node handed to the guard has its event, the dropped one included
    expect(own.guard.stats().inFlight, why).toBe(0);
    expect(x.events.length, why).toBe(own.guard.stats().requests);
  });
});
