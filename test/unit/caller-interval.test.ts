import { describe, expect, it } from 'vitest';
import { identitySource } from '../../src/guard/callers/identity.js';
import { IntervalCallers, OTHER_CALLERS } from '../../src/guard/callers/interval.js';
import type { GuardEvent } from '../../src/guard/events/types.js';

const T0 = Date.parse('2026-12-04T05:00:00.000Z');

function ev(
  ms: number,
  version: GuardEvent['request']['version'],
  caller: GuardEvent['caller'],
  decision: GuardEvent['decision'] = 'allow',
): GuardEvent {
  return {
    v: 1,
    id: `e${ms}`,
    time: new Date(ms).toISOString(),
    host: 'h',
    mode: 'monitor',
    decision,
    action: decision === 'deny' ? 'flagged' : 'forwarded',
    rule: 'r',
    reason: 'x',
    request: {
      method: 'GET',
      path: '/latest/meta-data/iam/security-credentials/secret-role',
      version,
      flavor: 'aws',
      client: { address: '127.0.0.1', port: 1 },
      userAgent: 'curl/8',
    },
    status: 200,
    alert: false,
    ...(caller ? { caller } : {}),
  };
}

const curl = { resolved: 'full' as const, pid: 10, exe: '/usr/bin/curl', user: 'app', uid: 1000 };
const id = { instanceId: 'i-0123456789abcdef0', accountId: '111122223333', region: 'eu-west-1' };

describe('the caller summary of one interval', () => {
  it('counts per caller and version (a token PUT is v2), with first and last seen', () => {
    const agg = new IntervalCallers(T0, 100);
    agg.add(ev(T0 + 5000, 'v1', curl, 'deny'));
    agg.add(ev(T0 + 1000, 'v1', curl));
    agg.add(ev(T0 + 2000, 'token', curl));
    agg.add(ev(T0 + 3000, 'v2', curl));
    agg.add(ev(T0 + 4000, 'unknown', curl));
    const recs = agg.records(T0 + 300_000, 'h', id, 'enforce');
    expect(recs).toEqual([
      {
        v: 1,
        kind: 'callers',
        time: '2026-12-04T05:05:00.000Z',
        host: 'h',
        ...id,
        mode: 'monitor',
        version: 'v1',
        exe: '/usr/bin/curl',
        user: 'app',
        container: '-',
        pod: '-',
        calls: 2,
        denied: 1,
        firstSeenMs: T0 + 1000,
        lastSeenMs: T0 + 5000,
        intervalMs: 300_000,
      },
      expect.objectContaining({
        version: 'v2',
        calls: 2,
        denied: 0,
        firstSeenMs: T0 + 2000,
        lastSeenMs: T0 + 3000,
      }),
    ]);
    // no path, user agent, pid or argv: nothing that can carry a secret or a role name
    const text = JSON.stringify(recs);
    expect(text).not.toContain('secret-role');
    expect(text).not.toContain('curl/8');
  });

  it('keys containers and pods apart, and starts again after each interval', () => {
    const agg = new IntervalCallers(T0, 100);
    const inPod = {
      ...curl,
      container: { id: 'c'.repeat(80), runtime: 'containerd' as const },
      pod: { namespace: 'web', name: 'api-1', hostNetwork: false, source: 'cgroup' as const },
    };
    agg.add(ev(T0 + 1, 'v1', curl));
    agg.add(ev(T0 + 2, 'v1', inPod));
    const first = agg.records(T0 + 10, 'h', undefined, 'enforce');
    expect(first).toHaveLength(2);
    const pod = first.find((r) => r.pod !== '-');
    expect(pod).toMatchObject({ pod: 'web/api-1', container: 'c'.repeat(64) });
    expect(pod && 'instanceId' in pod).toBe(false);
    expect(first.find((r) => r.pod === '-')).toMatchObject({ exe: '/usr/bin/curl', container: '-' });
    const second = agg.records(T0 + 20, 'h', undefined, 'enforce');
    // a quiet interval still says the guard is there
    expect(second).toEqual([
      expect.objectContaining({
        version: 'none',
        calls: 0,
        firstSeenMs: T0 + 10,
        lastSeenMs: T0 + 20,
        intervalMs: 10,
        mode: 'enforce',
      }),
    ]);
  });

  it('folds callers beyond the bound into one overflow record per version', () => {
    const agg = new IntervalCallers(T0, 2);
    for (let i = 0; i < 5; i++) agg.add(ev(T0 + i, 'v1', { ...curl, exe: `/bin/p${i}` }));
    const recs = agg.records(T0 + 10, 'h', id, 'enforce');
    expect(recs.map((r) => r.exe).sort()).toEqual(['(other callers)', '/bin/p0', '/bin/p1'].sort());
    expect(recs.find((r) => r.exe === OTHER_CALLERS)).toMatchObject({ calls: 3, overflow: true });
  });

  it('an unattributed caller is counted with every caller field "-" (Logs Insights groups on them)', () => {
    const agg = new IntervalCallers(T0, 10);
    agg.add(ev(T0 + 1, 'v1', undefined));
    const [r] = agg.records(T0 + 2, 'h', id, 'enforce');
    expect(r).toMatchObject({ version: 'v1', calls: 1, exe: '-', user: '-', container: '-', pod: '-' });
  });
});

describe('the identity source', () => {
  it('reads once on success, and retries a failure no more often than retryMs', async () => {
    let now = 0;
    let calls = 0;
    let fail = true;
    const logs: string[] = [];
    const src = identitySource(
      async () => {
        calls++;
        if (fail) throw new Error('the token request answered 404');
        return id;
      },
      { retryMs: 60_000, now: () => now, log: (m) => logs.push(m) },
    );
    expect(await src.get()).toBeUndefined();
    expect(await src.get()).toBeUndefined();
    expect(calls).toBe(1);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain('404');
    now = 60_000;
    fail = false;
    expect(await src.get()).toEqual(id);
    expect(await src.get()).toEqual(id);
    expect(calls).toBe(2);
    expect(src.known()).toEqual(id);
  });
});
