import { afterEach, describe, expect, it } from 'vitest';
import type { Caller, ConnectionInfo, ProcessResolver } from '../../src/guard/attribution/types.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { describeExchange, GuardUnderTest, type GuardUnderTestOptions } from '../support/guard-under-test.js';
import { expectRefused } from '../support/guard-verdicts.js';
import { METADATA_HOST, request, TOKEN_HEADER_NAME, tokenPut, v2Get } from '../support/imds-requests.js';

/**
 * Token cases: an empty, whitespace or bogus token header is not IMDSv2; a token
 * the guard issued is known by a keyed hash (never its value), with its expiry and the caller that
 * asked for it; every token-bearing event says issued-here, unknown, expired or other-caller; a token
 * used by another process than the one it was issued to raises an alert.
 */

const CREDS = '/latest/meta-data/iam/security-credentials/';
const guards: GuardUnderTest[] = [];
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
});

async function start(options: GuardUnderTestOptions): Promise<GuardUnderTest> {
  const g = await GuardUnderTest.start({
    ...options,
    upstream: { emulator: { settings: { tokens: 'required' } }, ...options.upstream },
  });
  guards.push(g);
  return g;
}

async function issue(g: GuardUnderTest, ttl = '21600'): Promise<string> {
  const x = await g.exchange(
    request('PUT', '/latest/api/token', [
      ['Host', METADATA_HOST],
      ['X-aws-ec2-metadata-token-ttl-seconds', ttl],
    ]),
  );
  const t = x.responses[0]?.body.toString('latin1') ?? '';
  expect(t, describeExchange(x)).toMatch(/^AQAEA/);
  return t;
}

describe('token values', () => {
  it('no event ever holds a token value', async () => {
    const g = await start({});
    const tokens = [await issue(g), await issue(g, '60')];
    for (const t of tokens) {
      await g.exchange(v2Get(CREDS, t));
      await g.exchange(v2Get('/latest/meta-data/no-such-path', t));
      await g.exchange(v2Get(CREDS, t, [['X-Forwarded-For', '9.9.9.9']]));
    }
    const all = JSON.stringify(g.log.events);
    for (const t of tokens) {
      expect(all).not.toContain(t);
      expect(all).not.toContain(t.slice(0, 24));
    }
    expect(g.logs.join('\n')).not.toContain(tokens[0]!.slice(0, 24));
  });

  it('a token PUT is recorded without the token it returned', async () => {
    const g = await start({});
    const t = await issue(g);
    expect(JSON.stringify(g.log.events)).not.toContain(t.slice(5, 30));
    expect(g.log.events[0]?.request.version).toBe('token');
  });
});

describe('tokens through a second, unrelated request line', () => {
  it('a token in the query string is not a token', async () => {
    const g = await start({ guard: { requireV2: true } });
    const t = await issue(g);
    const x = await g.exchange(
      request('GET', `${CREDS}?${TOKEN_HEADER_NAME}=${encodeURIComponent(t)}`, [['Host', METADATA_HOST]]),
    );
    expectRefused(x, { status: 401 });
  });

  it('a token in another header name (X-Amz-Security-Token) is not a token', async () => {
    const g = await start({ guard: { requireV2: true } });
    const t = await issue(g);
    const x = await g.exchange(
      request('GET', CREDS, [
        ['Host', METADATA_HOST],
        ['X-Amz-Security-Token', t],
      ]),
    );
    expectRefused(x, { status: 401 });
  });

  it('the token PUT itself, repeated 50 times on one connection, each judged and each forwarded once', async () => {
    const g = await start({});
    const x = await g.exchange(tokenPut().repeat(50), { responses: 50, timeoutMs: 20_000 });
    expect(x.upstream.length, describeExchange(x)).toBe(x.responses.length);
    expect(x.events.filter((e) => e.action === 'forwarded').length).toBe(x.responses.length);
  }, 30_000);
});

// ---- findings the adversarial review reported, each fixed ----

describe('a token header without a token is not IMDSv2', () => {
  const empties: Array<[string, string]> = [
    ['an empty', ''],
    ['a spaces-only', '   '],
    ['a tab-only', '\t'],
  ];
  it.each(empties)('%s token under requireV2 is refused before the upstream', async (_n, value) => {
    const g = await start({ guard: { requireV2: true } });
    const x = await g.exchange(
      request('GET', CREDS, [
        ['Host', METADATA_HOST],
        [TOKEN_HEADER_NAME, value],
      ]),
    );
    expectRefused(x, { status: 401 });
  });

  it.each(empties)(
    '%s token from an unknown caller is a tokenless request (refused by default)',
    async (_n, value) => {
      const g = await start({});
      const x = await g.exchange(
        request('GET', CREDS, [
          ['Host', METADATA_HOST],
          [TOKEN_HEADER_NAME, value],
        ]),
      );
      expectRefused(x, { status: 401 });
      expect(x.events[0]?.request.version).toBe('v1');
    },
  );

  it('an empty token does not escape a version: v1 rule', async () => {
    const g = await start({
      guard: { rules: [{ name: 'no-v1-creds', path: CREDS, version: ['v1'], action: 'deny' }] },
    });
    const x = await g.exchange(
      request('GET', CREDS, [
        ['Host', METADATA_HOST],
        ['User-Agent', 'aws-cli/2'],
        [TOKEN_HEADER_NAME, ''],
      ]),
    );
    expectRefused(x, { status: 403, rule: 'no-v1-creds' });
  });
});

const TOKEN_STATES = ['issued-here', 'unknown', 'expired', 'other-caller'] as const;

/** The token state an event names, wherever the guard puts it. */
function tokenState(e: GuardEvent | undefined): string | undefined {
  const found: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && (TOKEN_STATES as readonly string[]).includes(v)) found.push(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(e);
  return found[0];
}

const AWS_CLI: Caller = {
  resolved: 'full',
  pid: 1111,
  exe: '/usr/bin/aws',
  uid: 1000,
  user: 'app',
  netns: 'host',
};
const PYTHON: Caller = {
  resolved: 'full',
  pid: 2222,
  exe: '/usr/bin/python3',
  uid: 33,
  user: 'www-data',
  netns: 'host',
};

class SwitchableResolver implements ProcessResolver {
  caller: Caller = { resolved: 'none', error: 'not set' };
  async resolve(_c: ConnectionInfo): Promise<Caller> {
    return this.caller;
  }
  async close(): Promise<void> {}
}

describe('the token ledger', () => {
  it('a token issued through the guard is issued-here and raises nothing', async () => {
    const g = await start({});
    const t = await issue(g);
    const x = await g.exchange(v2Get(CREDS, t));
    expect(x.responses[0]?.status, describeExchange(x)).toBe(200);
    expect(tokenState(x.events[0]), JSON.stringify(x.events[0])).toBe('issued-here');
    expect(x.events[0]?.alert).toBe(false);
  });

  it.each([
    ['a bogus token', 'not-a-token'],
    [
      'a well-formed token the guard never issued',
      'AQAEAHVMWxqfvxSX9aBhJhZLkeZHYq7n3yR1G5lK8Ugv0mYx3Q8zQpYf3dQ=',
    ],
  ])('%s is unknown, and flagged by default (alert)', async (_n, t) => {
    const g = await start({});
    const x = await g.exchange(v2Get(CREDS, t));
    expect(x.events.length, describeExchange(x)).toBe(1);
    expect(tokenState(x.events[0]), JSON.stringify(x.events[0])).toBe('unknown');
    expect(x.events[0]?.alert).toBe(true);
  });

  it('an expired token is expired', async () => {
    let clock = Date.UTC(2026, 0, 1);
    const g = await start({ now: () => clock });
    const t = await issue(g, '1');
    clock += 5_000;
    const x = await g.exchange(v2Get(CREDS, t));
    expect(x.responses[0]?.status, describeExchange(x)).toBe(401);
    expect(tokenState(x.events[0]), JSON.stringify(x.events[0])).toBe('expired');
  });

  it("another process's token is other-caller, and raises an alert (token theft inside the host)", async () => {
    const resolver = new SwitchableResolver();
    const g = await start({ resolver });
    resolver.caller = AWS_CLI;
    const t = await issue(g);
    resolver.caller = PYTHON;
    const x = await g.exchange(v2Get(CREDS, t));
    expect(tokenState(x.events[0]), JSON.stringify(x.events[0])).toBe('other-caller');
    expect(x.events[0]?.alert).toBe(true);
    // the same caller again is fine
    resolver.caller = AWS_CLI;
    const y = await g.exchange(v2Get(CREDS, t));
    expect(tokenState(y.events[0]), JSON.stringify(y.events[0])).toBe('issued-here');
  });
});
