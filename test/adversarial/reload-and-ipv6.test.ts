import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { expectForwarded, expectRefused } from '../support/guard-verdicts.js';
import { headerLines, METADATA_HOST, request, tokenPut, v1Get } from '../support/imds-requests.js';
import { hasResponses, parseResponses } from '../support/raw-http.js';

/**
 * A policy swapped (SIGHUP reload) while a connection is open applies to the very next request on it
 * (every answer closes the connection, as the service's do, so the next request is the first on a
 * connection opened before the reload); and the guard on IPv6 loopback ([::1], which install listens
 * on too) refuses what it refuses on IPv4.
 */

const guards: GuardUnderTest[] = [];
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
});

describe('reload under an open connection', () => {
  it('the next request on a connection opened before the reload meets the new policy', async () => {
    const g = await GuardUnderTest.start({ upstream: { emulator: { settings: { tokens: 'optional' } } } });
    guards.push(g);
    const first = await g.connect();
    const c = await g.connect();
    try {
      await first.write(v1Get('/latest/meta-data/instance-id'));
      await first.until((b) => hasResponses(b, 1), 10_000, 'the first answer');
      expect(parseResponses(first.received())[0]?.status).toBe(200);
      g.guard.reload(
        parseConfig({
          guard: { listen: ['127.0.0.1:0'], upstream: g.upstream.url, allowUserAgents: [], requireV2: true },
        }).guard,
      );
      await c.write(v1Get('/latest/meta-data/iam/security-credentials/'));
      await c.until((b) => hasResponses(b, 1), 10_000, 'the second answer');
      expect(parseResponses(c.received())[0]?.status).toBe(401);
      await g.idle(10_000);
      expect(g.upstream.requests().length).toBe(1);
      expect(g.log.events.map((e) => e.rule)).toEqual(['ua-allowlist', 'require-v2']);
    } finally {
      first.destroy();
      c.destroy();
    }
  });

  it('a reload that loosens nothing about forwarding headers keeps refusing them on an open connection', async () => {
    const g = await GuardUnderTest.start({});
    guards.push(g);
    const first = await g.connect();
    const c = await g.connect();
    try {
      await first.write(tokenPut());
      await first.until((b) => hasResponses(b, 1), 10_000, 'the first answer');
      g.guard.reload(
        parseConfig({
          guard: {
            listen: ['127.0.0.1:0'],
            upstream: g.upstream.url,
            mode: 'enforce',
            allowUserAgents: ['curl/'],
          },
        }).guard,
      );
      await c.write(tokenPut([['X-Forwarded-For', '9.9.9.9']]));
      await c.until((b) => hasResponses(b, 1), 10_000, 'the second answer');
      expect(parseResponses(c.received())[0]?.status).toBe(403);
      await g.idle(10_000);
      expect(g.upstream.requests().length).toBe(1);
    } finally {
      first.destroy();
      c.destroy();
    }
  });
});

describe('IPv6 loopback', () => {
  async function v6(): Promise<GuardUnderTest> {
    const g = await GuardUnderTest.start({
      guard: { listen: ['[::1]:0'] },
      upstream: { emulator: { settings: { tokens: 'required' } } },
    });
    guards.push(g);
    return g;
  }

  it('a token PUT is forwarded as sent', async () => {
    const g = await v6();
    const raw = tokenPut();
    expectForwarded(await g.exchange(raw), { clientHeaders: headerLines(raw), method: 'PUT' });
  });

  it("the guard's own [::1]:PORT is a valid Host", async () => {
    const g = await v6();
    const raw = tokenPut([], `[::1]:${g.port}`);
    const x = await g.exchange(raw);
    expect(x.upstream.length, describeExchange(x)).toBe(1);
  });

  it.each([
    ['X-Forwarded-For on a token PUT', tokenPut([['X-Forwarded-For', '::1']])],
    ['Forwarded with an IPv6 node', tokenPut([['Forwarded', 'for="[2001:db8::1]:4711"']])],
    ['a rebinding Host', tokenPut([], 'attacker.example')],
    ['an IPv6 Host that is not the metadata address', tokenPut([], '[2001:db8::1]')],
    [
      'a tokenless read',
      request('GET', '/latest/meta-data/iam/security-credentials/', [['Host', METADATA_HOST]]),
    ],
  ])('%s is refused', async (_n, raw) => {
    const g = await v6();
    expectRefused(await g.exchange(raw), { status: [400, 401, 403] });
  });
});
