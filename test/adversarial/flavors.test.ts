import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Flavor } from '../../src/imds/flavors.js';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { expectForwarded, expectRefused } from '../support/guard-verdicts.js';
import { headerLines, request } from '../support/imds-requests.js';
import type { Header } from '../support/raw-http.js';

/**
 * The other clouds (IMDS.md "Other clouds"): each flavour's required header or token scheme, its
 * address as Host, and the forwarding headers, in front of the emulator speaking that flavour. The
 * required header is what SSRF cannot forge; a copy of it that the policy and the upstream read
 * differently, or a forwarding header, must never get through.
 */

interface FlavorCase {
  flavor: Flavor;
  host: string;
  /** A read the flavour serves to a caller with its required header (or token), and that header. */
  path: string;
  required?: Header;
  /** The status the flavour's own service gives without it. */
  without?: number;
}

const FLAVORS: FlavorCase[] = [
  {
    flavor: 'gcp',
    host: 'metadata.google.internal',
    path: '/computeMetadata/v1/instance/id',
    required: ['Metadata-Flavor', 'Google'],
    without: 403,
  },
  {
    flavor: 'azure',
    host: '169.254.169.254',
    path: '/metadata/instance?api-version=2021-02-01',
    required: ['Metadata', 'true'],
    without: 400,
  },
  {
    flavor: 'oci',
    host: '169.254.169.254',
    path: '/opc/v2/instance/',
    required: ['Authorization', 'Bearer Oracle'],
    without: 401,
  },
  { flavor: 'digitalocean', host: '169.254.169.254', path: '/metadata/v1/id' },
];

const guards = new Map<Flavor, GuardUnderTest>();
beforeAll(async () => {
  for (const f of [...FLAVORS.map((c) => c.flavor), 'alibaba' as const]) {
    guards.set(
      f,
      await GuardUnderTest.start({ guard: { flavor: f }, upstream: { emulator: { flavor: f } } }),
    );
  }
}, 60_000);
afterAll(async () => {
  await Promise.all([...guards.values()].map((g) => g.close()));
});

const withRequired = FLAVORS.filter((c) => c.required !== undefined);

describe('the required header', () => {
  it.each(FLAVORS.map((c) => [c.flavor, c] as const))(
    '%s: a read with it is forwarded as sent',
    async (_f, c) => {
      const raw = request('GET', c.path, [['Host', c.host], ...(c.required ? [c.required] : [])]);
      const x = await guards.get(c.flavor)!.exchange(raw);
      expectForwarded(x, { clientHeaders: headerLines(raw) });
      expect(x.responses[0]?.status, describeExchange(x)).toBe(200);
    },
  );

  it.each(withRequired.map((c) => [c.flavor, c] as const))(
    '%s: a read without it gets what the service says',
    async (_f, c) => {
      const x = await guards.get(c.flavor)!.exchange(request('GET', c.path, [['Host', c.host]]));
      expectRefused(x, { status: c.without as number });
    },
  );

  const variants = (c: FlavorCase): Array<[string, Header[]]> => {
    const [name, value] = c.required as Header;
    return [
      ['a wrong value', [[name, 'nope']]],
      [
        'the right value, then a wrong one',
        [
          [name, value],
          [name, 'nope'],
        ],
      ],
      [
        'a wrong value, then the right one',
        [
          [name, 'nope'],
          [name, value],
        ],
      ],
      ['the value with a comma list', [[name, `${value}, nope`]]],
      ['an empty value', [[name, '']]],
    ];
  };
  const cases = withRequired.flatMap((c) =>
    variants(c).map(([n, h]) => [`${c.flavor}: ${n}`, c, h] as const),
  );
  it.each(cases)('%s: refused, or forwarded with every copy the policy read', async (_n, c, extra) => {
    const raw = request('GET', c.path, [['Host', c.host], ...extra]);
    const x = await guards.get(c.flavor)!.exchange(raw);
    if (x.upstreamBytes === 0) {
      expectRefused(x, { status: [400, 401, 403] });
      return;
    }
    // forwarded: the upstream read exactly the copies the policy read
    expectForwarded(x, { clientHeaders: headerLines(raw) });
  });
});

describe('forwarding headers, for every flavour', () => {
  const names = ['X-Forwarded-For', 'Forwarded', 'X-Forwarded-Host'];
  const cases = [
    ...FLAVORS,
    { flavor: 'alibaba' as const, host: '100.100.100.200', path: '/latest/meta-data/' },
  ].flatMap((c) => names.map((n) => [`${c.flavor}: ${n}`, c, n] as const));
  it.each(cases)('%s is refused and never reaches the upstream', async (_n, c, name) => {
    const raw = request('GET', c.path, [
      ['Host', c.host],
      ...((c as FlavorCase).required ? [(c as FlavorCase).required as Header] : []),
      [name, '9.9.9.9'],
    ]);
    const x = await guards.get(c.flavor)!.exchange(raw);
    expectRefused(x, { status: 403 });
  });
});

describe('hosts', () => {
  it.each([
    ['gcp', 'metadata'],
    ['gcp', 'METADATA.GOOGLE.INTERNAL'],
    ['gcp', '169.254.169.254'],
  ] as const)('%s accepts Host %s', async (flavor, host) => {
    const c = FLAVORS[0] as FlavorCase;
    const raw = request('GET', c.path, [['Host', host], c.required as Header]);
    const x = await guards.get(flavor)!.exchange(raw);
    expect(x.upstream.length, describeExchange(x)).toBe(1);
  });

  it('alibaba accepts Host 100.100.100.200 on its token PUT', async () => {
    const raw = request('PUT', '/latest/api/token', [
      ['Host', '100.100.100.200'],
      ['X-aliyun-ecs-metadata-token-ttl-seconds', '60'],
    ]);
    const x = await guards.get('alibaba')!.exchange(raw);
    expect(x.upstream.length, describeExchange(x)).toBe(1);
  });

  it.each([
    ['gcp', 'metadata.google.internal.attacker.example'],
    ['gcp', 'metadata.attacker.example'],
    ['alibaba', '169.254.169.254'],
    ['azure', 'metadata.google.internal'],
    ['oci', 'attacker.example'],
  ] as const)('%s refuses Host %s', async (flavor, host) => {
    const c = FLAVORS.find((f) => f.flavor === flavor) ?? { path: '/latest/meta-data/', required: undefined };
    const x = await guards
      .get(flavor)!
      .exchange(request('GET', c.path, [['Host', host], ...(c.required ? [c.required] : [])]));
    expectRefused(x, { status: [400, 403] });
  });
});

describe('alibaba: the IMDSv2-like token scheme', () => {
  const TTL: Header = ['X-aliyun-ecs-metadata-token-ttl-seconds', '21600'];
  it('a token PUT and a token read are forwarded as sent', async () => {
    const g = guards.get('alibaba')!;
    const put = request('PUT', '/latest/api/token', [['Host', '100.100.100.200'], TTL]);
    const x = await g.exchange(put);
    expectForwarded(x, { clientHeaders: headerLines(put), method: 'PUT' });
    const token = x.responses[0]?.body.toString('latin1') ?? '';
    expect(token.length, describeExchange(x)).toBeGreaterThan(20);
    const get = request('GET', '/latest/meta-data/instance-id', [
      ['Host', '100.100.100.200'],
      ['X-aliyun-ecs-metadata-token', token],
    ]);
    const y = await g.exchange(get);
    expectForwarded(y, { clientHeaders: headerLines(get) });
    expect(y.responses[0]?.status).toBe(200);
  });

  it.each([
    ['no TTL', []],
    ['TTL 0', [['X-aliyun-ecs-metadata-token-ttl-seconds', '0']]],
    ['TTL 21601', [['X-aliyun-ecs-metadata-token-ttl-seconds', '21601']]],
    ['an AWS TTL header instead', [['X-aws-ec2-metadata-token-ttl-seconds', '21600']]],
    ['two TTLs', [TTL, ['X-aliyun-ecs-metadata-token-ttl-seconds', '0']]],
  ] as Array<[string, Header[]]>)('a token PUT with %s is refused', async (_n, extra) => {
    const x = await guards
      .get('alibaba')!
      .exchange(request('PUT', '/latest/api/token', [['Host', '100.100.100.200'], ...extra]));
    expectRefused(x, { status: 400 });
  });
});

// ---- findings the adversarial review reported, each fixed ----

describe('the required header in two casings reaches the upstream as sent, or is refused', () => {
  it.each(withRequired.map((c) => [c.flavor, c] as const))('%s', async (_f, c) => {
    const [name, value] = c.required as Header;
    const raw = request('GET', c.path, [
      ['Host', c.host],
      [name, value],
      [name.toLowerCase(), value],
    ]);
    const x = await guards.get(c.flavor)!.exchange(raw);
    if (x.upstreamBytes === 0) expectRefused(x, { status: [400, 401, 403] });
    else expectForwarded(x, { clientHeaders: headerLines(raw) });
  });
});
