import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardUnderTest } from '../support/guard-under-test.js';
import { expectForwarded, expectRefused } from '../support/guard-verdicts.js';
import {
  headerLines,
  METADATA_HOST,
  request,
  TTL_HEADER,
  tokenPut,
  v2Get,
} from '../support/imds-requests.js';
import type { Header } from '../support/raw-http.js';

/**
 * What is forwarded is what was sent (IMDS.md: "forward token headers untouched; strip only the
 * guard's own secret header"): names keep their casing and order, a repeated name is refused, values
 * keep their bytes, and nothing is added but Host and Connection: close.
 */

let g: GuardUnderTest;
let TOKEN = '';
beforeAll(async () => {
  g = await GuardUnderTest.start({
    guard: { authSecret: 'fidelity-secret-0042' },
    upstream: { emulator: { settings: { tokens: 'required' } } },
  });
  TOKEN = (await g.exchange(tokenPut())).responses[0]?.body.toString('latin1') ?? '';
}, 30_000);
afterAll(() => g?.close());

describe('the header list reaches the upstream as the client sent it', () => {
  const lists: Array<[string, Header[]]> = [
    [
      'twelve headers in an unusual order and casing',
      [
        ['aCCEPT', '*/*'],
        ['x-B', '2'],
        ['X-a', '1'],
        ['user-AGENT', 'aws-sdk-go/1.44'],
        ['X-Z', 'z'],
        ['Accept-Language', 'en'],
        ['x-y', 'y'],
        ['Cache-Control', 'no-cache'],
        ['X-C', '3'],
        ['Pragma', 'x'],
        ['X-D', '4'],
        ['X-E', '5'],
      ],
    ],
    [
      'values with inner tabs and spaces, and an empty one',
      [
        ['X-A', 'a\tb  c'],
        ['X-Empty', ''],
        ['X-B', 'x , y'],
      ],
    ],
    ['latin1 bytes in a value', [['X-Bin', 'caf\xe9 \xff\xfe']]],
    ['UTF-8 bytes in a value', [['X-Utf8', Buffer.from('naïve 東京', 'utf8').toString('latin1')]]],
    [
      'the secret header between others (stripped alone)',
      [
        ['X-A', '1'],
        ['X-Meta-Auth', 'fidelity-secret-0042'],
        ['X-B', '2'],
      ],
    ],
    [
      'a header named in Connection is kept',
      [
        ['Connection', 'X-Keep-Me'],
        ['X-Keep-Me', 'yes'],
      ],
    ],
  ];
  it.each(lists)('%s', async (_n, extra) => {
    const raw = v2Get('/latest/meta-data/instance-id', TOKEN, extra);
    const x = await g.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw) });
    expect(x.responses[0]?.status).toBe(200);
  });

  it('the same ordinary header twice is refused (the upstream could read either copy), nothing upstream', async () => {
    const raw = v2Get('/latest/meta-data/instance-id', TOKEN, [
      ['Accept', 'text/plain'],
      ['Accept', 'application/json'],
    ]);
    expectRefused(await g.exchange(raw), { status: 400, rule: 'duplicate-header' });
  });

  it("a client's Content-Length: 0 on a token PUT is forwarded as sent", async () => {
    const raw = request('PUT', '/latest/api/token', [
      ['Host', METADATA_HOST],
      TTL_HEADER,
      ['Content-Length', '0'],
    ]);
    const x = await g.exchange(raw);
    expectForwarded(x, { clientHeaders: headerLines(raw) });
    expect(x.upstream[0]?.headers).toContainEqual(['Content-Length', '0']);
  });
});

// ---- findings the adversarial review reported, each fixed ----

import { describeExchange } from '../support/guard-under-test.js';

describe('every copy of a name in its casing, and nothing added', () => {
  it.each([
    [
      'Accept / accept',
      [
        ['Accept', 'text/plain'],
        ['accept', 'application/json'],
      ],
    ],
    [
      'X-Custom / x-custom / X-CUSTOM',
      [
        ['X-Custom', '1'],
        ['x-custom', '2'],
        ['X-CUSTOM', '3'],
      ],
    ],
    [
      'User-Agent / user-agent',
      [
        ['User-Agent', 'aws-sdk-go/1.44'],
        ['user-agent', 'curl/8'],
      ],
    ],
  ] as Array<[string, Header[]]>)(
    'one name in several casings: every copy, in place (%s)',
    async (_n, extra) => {
      const raw = v2Get('/latest/meta-data/instance-id', TOKEN, [
        ['X-First', '0'],
        ...extra,
        ['X-Last', '9'],
      ]);
      const x = await g.exchange(raw);
      const why = describeExchange(x);
      if (x.upstream.length === 0) {
        // refusing a repeated name is also honest; forwarding a different list is not
        expect(x.events[0]?.decision, why).toBe('deny');
        return;
      }
      const up = x.upstream[0]!;
      const mine = up.headers.filter(([k]) => !/^(host|connection)$/i.test(k));
      expect(mine, why).toEqual(headerLines(raw).filter(([k]) => !/^host$/i.test(k)));
    },
  );

  it('a bodiless token PUT reaches the upstream without a Content-Length the client did not send', async () => {
    const raw = request('PUT', '/latest/api/token', [
      ['Host', METADATA_HOST],
      TTL_HEADER,
      ['User-Agent', 'aws-sdk-js/3'],
    ]);
    const x = await g.exchange(raw);
    const up = x.upstream[0];
    expect(
      up?.headers.map(([k]) => k.toLowerCase()),
      describeExchange(x),
    ).not.toContain('content-length');
    expect(up?.headers.map(([k]) => k.toLowerCase())).not.toContain('transfer-encoding');
  });
});
