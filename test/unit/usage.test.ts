import { describe, expect, it } from 'vitest';
import type { InstanceRecord } from '../../src/fleet/inventory/model.js';
import { collectUsage, readBatch } from '../../src/fleet/usage/collect.js';
import { describeCaller, indexHostEvidence, parseHostEvidence } from '../../src/fleet/usage/host-evidence.js';
import { batchQueries, metricsFor, planQueries, toMetricDataQuery } from '../../src/fleet/usage/queries.js';
import {
  choosePeriod,
  finestPeriodFor,
  periodFitsAge,
  USAGE_DEFAULTS,
  usageRanges,
  usageWindow,
} from '../../src/fleet/usage/window.js';

type Q = Pick<InstanceRecord, 'instanceId' | 'state' | 'metadataOptions'>;
function q(
  id: string,
  tokens: 'optional' | 'required',
  state = 'running',
  endpoint: 'enabled' | 'disabled' = 'enabled',
): Q {
  return {
    instanceId: id,
    state,
    metadataOptions: {
      state: 'applied',
      httpTokens: tokens,
      httpEndpoint: endpoint,
      httpPutResponseHopLimit: 1,
      httpProtocolIpv6: 'disabled',
      instanceMetadataTags: 'disabled',
    },
  };
}

describe('usage window', () => {
  it('picks the smallest period that keeps a series at 200 periods or fewer', () => {
    expect(choosePeriod(1)).toBe(3600);
    expect(choosePeriod(8)).toBe(3600);
    expect(choosePeriod(9)).toBe(21_600);
    expect(choosePeriod(14)).toBe(21_600);
    expect(choosePeriod(50)).toBe(21_600);
    expect(choosePeriod(51)).toBe(86_400);
    expect(choosePeriod(455)).toBe(86_400);
  });

  it('ends at now: N days of whole periods up to the last boundary, then a tail read at 60 s', () => {
    const now = Date.UTC(2026, 10, 22, 19, 7, 13);
    const w = usageWindow(now, 14);
    expect(w.end).toBe('2026-11-22T19:07:13.000Z');
    expect(w.endMs).toBe(now);
    expect(w.periodsEnd).toBe('2026-11-22T18:00:00.000Z');
    expect(w.start).toBe('2026-11-08T18:00:00.000Z');
    expect(w.periods).toBe(56);
    expect(w.periodsEndMs - w.startMs).toBe(14 * 86_400_000);
    expect(w.tailPeriodSeconds).toBe(60);
    expect(usageRanges(w)).toEqual([
      { part: 'periods', startMs: w.startMs, endMs: w.periodsEndMs, periodSeconds: 21_600 },
      // The tail's end is rounded up to the next minute: the current minute's datapoint is read too.
      { part: 'tail', startMs: w.periodsEndMs, endMs: Date.UTC(2026, 10, 22, 19, 8), periodSeconds: 60 },
    ]);
    // Exactly on a boundary there is no tail.
    expect(usageRanges(usageWindow(Date.UTC(2026, 10, 22, 18), 14)).map((r) => r.part)).toEqual(['periods']);
    expect(() => usageWindow(now, 0)).toThrow(/--days/);
    expect(() => usageWindow(now, 455)).toThrow(/--days/);
  });

  it("every --days reads each part at a period CloudWatch serves for that part's age (retention rules)", () => {
    expect(finestPeriodFor(0)).toBe(60);
    expect(finestPeriodFor(15 * 86_400_000)).toBe(60);
    expect(finestPeriodFor(15 * 86_400_000 + 1)).toBe(300);
    expect(finestPeriodFor(63 * 86_400_000 + 1)).toBe(3600);
    expect(finestPeriodFor(455 * 86_400_000 + 1)).toBeUndefined();
    const now = Date.UTC(2026, 10, 22, 23, 59, 59, 999);
    for (let days = 1; days <= USAGE_DEFAULTS.maxDays; days++) {
      const w = usageWindow(now, days);
      for (const r of usageRanges(w)) {
        expect({ days, part: r.part, ok: periodFitsAge(r.periodSeconds, now - r.startMs) }).toEqual({
          days,
          part: r.part,
          ok: true,
        });
      }
    }
  });
});

describe('usage queries', () => {
  it('auto: the one series the state can move; both: two; rejected: enforced only', () => {
    expect(metricsFor(q('i-1', 'optional'), 'auto')).toEqual(['noToken']);
    expect(metricsFor(q('i-1', 'required'), 'auto')).toEqual(['rejected']);
    expect(metricsFor(q('i-1', 'optional', 'running', 'disabled'), 'auto')).toEqual([]);
    expect(metricsFor(q('i-1', 'optional', 'terminated'), 'both')).toEqual([]);
    expect(metricsFor(q('i-1', 'optional'), 'both')).toEqual(['noToken', 'rejected']);
    expect(metricsFor(q('i-1', 'optional'), 'rejected')).toEqual([]);
    expect(metricsFor(q('i-1', 'required'), 'rejected')).toEqual(['rejected']);
  });

  it('plans unique lower-case ids and cuts batches of at most 500', () => {
    const instances = Array.from({ length: 1001 }, (_, k) => q(`i-${k}`, 'optional'));
    const plan = planQueries(instances, 'both');
    expect(plan).toHaveLength(2002);
    expect(new Set(plan.map((p) => p.id)).size).toBe(2002);
    expect(plan.every((p) => /^[a-z][a-zA-Z0-9_]*$/.test(p.id))).toBe(true);
    const batches = batchQueries(plan);
    expect(batches.map((b) => b.length)).toEqual([500, 500, 500, 500, 2]);
    expect(batchQueries(plan, 10_000)[0]).toHaveLength(500);
    expect(batchQueries([], 500)).toEqual([]);
    expect(toMetricDataQuery(plan[1] as (typeof plan)[number], 21_600)).toEqual({
      Id: 'q1',
      MetricStat: {
        Metric: {
          Namespace: 'AWS/EC2',
          MetricName: 'MetadataNoTokenRejected',
          Dimensions: [{ Name: 'InstanceId', Value: 'i-0' }],
        },
        Period: 21_600,
        Stat: 'Sum',
      },
      ReturnData: true,
    });
  });

  it('readBatch follows NextToken, appends series that span pages, and reports Forbidden results', async () => {
    const w = usageWindow(Date.UTC(2026, 10, 22), 1);
    const t0 = new Date(w.startMs);
    const t1 = new Date(w.startMs + 3_600_000);
    const pages = [
      {
        MetricDataResults: [{ Id: 'q0', Timestamps: [t0], Values: [1], StatusCode: 'PartialData' }],
        NextToken: 'p2',
      },
      {
        MetricDataResults: [
          { Id: 'q0', Timestamps: [t1], Values: [2], StatusCode: 'Complete' },
          {
            Id: 'q1',
            Timestamps: [],
            Values: [],
            StatusCode: 'Forbidden',
            Messages: [{ Code: 'Forbidden', Value: 'no access' }],
          },
        ],
      },
    ];
    const sent: Array<{ NextToken?: string; MetricDataQueries?: unknown[] }> = [];
    const cw = {
      send: async (cmd: { input: { NextToken?: string; MetricDataQueries?: unknown[] } }) => {
        sent.push(cmd.input);
        return pages[sent.length - 1];
      },
    };
    const { byId, calls } = await readBatch(
      cw as never,
      [
        { id: 'q0', instanceId: 'i-a', metric: 'noToken' },
        { id: 'q1', instanceId: 'i-b', metric: 'noToken' },
      ],
      w,
      100,
    );
    expect(calls).toBe(2);
    expect(sent[0]?.NextToken).toBeUndefined();
    expect(sent[1]?.NextToken).toBe('p2');
    expect(byId.get('q0')).toEqual({ t: [t0.getTime(), t1.getTime()], v: [1, 2], messages: [] });
    expect(byId.get('q1')?.messages).toEqual(['Forbidden: Forbidden no access']);
  });
});

describe('host evidence', () => {
  const callers = [
    { key: 'x', exe: '/usr/bin/python3', user: 'app', v1: 12, v2: 3, lastSeen: '2026-11-22T10:00:00.000Z' },
    { key: 'y', exe: '/usr/bin/aws', user: 'root', v1: 0, v2: 40, lastSeen: '2026-11-22T11:00:00.000Z' },
  ];

  it('reads the wrapper form, the file-name form, and refuses files that name no instance', () => {
    const a = parseHostEvidence(
      JSON.stringify({ instanceId: 'i-0123456789abcdef0', region: 'us-east-1', callers }),
      '/x/a.json',
    );
    expect(a).toMatchObject({ instanceId: 'i-0123456789abcdef0', region: 'us-east-1', accountId: null });
    expect(a.callers[0]).toEqual({
      exe: '/usr/bin/python3',
      user: 'app',
      container: null,
      pod: null,
      v1Calls: 12,
      v2Calls: 3,
      lastSeen: '2026-11-22T10:00:00.000Z',
    });
    const b = parseHostEvidence(JSON.stringify({ callers }), '/x/i-0123456789abcdef1.json');
    expect(b.instanceId).toBe('i-0123456789abcdef1');
    const arr = parseHostEvidence(JSON.stringify(callers), '/x/host-i-0123456789abcdef2.json');
    expect(arr.instanceId).toBe('i-0123456789abcdef2');
    expect(() => parseHostEvidence(JSON.stringify({ callers }), '/x/web1.json')).toThrow(/names no instance/);
    expect(() => parseHostEvidence('not json', '/x/i-0123456789abcdef1.json')).toThrow(/not JSON/);
    expect(() => parseHostEvidence('{"instanceId":"i-0123456789abcdef1"}', '/x/a.json')).toThrow(
      /no "callers"/,
    );
  });

  it('reads `imdsguard callers --json` output (its whole document) wrapped with the instance id', () => {
    // The shape src/cli/commands/callers.ts prints, plus the instanceId a collection script adds.
    const doc = {
      since: null,
      events: 120,
      badLines: 0,
      v1Callers: 1,
      v1Requests: 37,
      callers: [
        {
          key: '/usr/bin/python3|app|',
          exe: '/usr/bin/python3',
          user: 'app',
          uid: 1001,
          v1: 37,
          v2: 0,
          token: 0,
          unknown: 0,
          denied: 0,
          total: 37,
          firstSeen: '2026-11-20T10:00:00.000Z',
          lastSeen: '2026-11-22T10:00:00.000Z',
          lastPath: '/latest/meta-data/iam/security-credentials/app',
          pids: 3,
          unattributed: false,
          container: { id: 'c0ffee0123456789abcdef', runtime: 'docker' },
        },
        {
          key: '(other callers)',
          v1: 0,
          v2: 83,
          token: 2,
          unknown: 0,
          denied: 0,
          total: 85,
          firstSeen: '2026-11-20T10:00:00.000Z',
          lastSeen: '2026-11-22T10:00:00.000Z',
          lastPath: '/',
          pids: 0,
          unattributed: false,
        },
      ],
      instanceId: 'i-0123456789abcdef0',
    };
    const e = parseHostEvidence(JSON.stringify(doc), 'host.json');
    expect(e.instanceId).toBe('i-0123456789abcdef0');
    expect(e.callers).toEqual([
      {
        exe: '/usr/bin/python3',
        user: 'app',
        container: 'c0ffee0123456789abcdef',
        pod: null,
        v1Calls: 37,
        v2Calls: 0,
        lastSeen: '2026-11-22T10:00:00.000Z',
      },
      {
        exe: null,
        user: null,
        container: null,
        pod: null,
        v1Calls: 0,
        v2Calls: 83,
        lastSeen: '2026-11-22T10:00:00.000Z',
      },
    ]);
  });

  it('joins by instance id (and region when named), merging v1 callers, most calls first', () => {
    const files = [
      parseHostEvidence(JSON.stringify({ instanceId: 'i-0123456789abcdef0', callers }), 'a.json'),
      parseHostEvidence(
        JSON.stringify({
          instanceId: 'i-0123456789abcdef0',
          callers: [{ exe: '/opt/agent', user: 'agent', v1: 50 }, callers[0]],
        }),
        'b.json',
      ),
      parseHostEvidence(
        JSON.stringify({ instanceId: 'i-0123456789abcdef9', region: 'eu-west-1', callers }),
        'c.json',
      ),
    ];
    const lookup = indexHostEvidence(files);
    const j = lookup({ accountId: '1', region: 'us-east-1', instanceId: 'i-0123456789abcdef0' });
    expect(j?.sources).toEqual(['a.json', 'b.json']);
    expect(j?.v1Callers.map((c) => [c.exe, c.v1Calls])).toEqual([
      ['/opt/agent', 50],
      ['/usr/bin/python3', 24],
    ]);
    expect(lookup({ accountId: '1', region: 'us-east-1', instanceId: 'i-0123456789abcdef9' })).toBeNull();
    expect(
      lookup({ accountId: '1', region: 'eu-west-1', instanceId: 'i-0123456789abcdef9' })?.v1Callers,
    ).toHaveLength(1);
    expect(
      describeCaller({
        exe: null,
        user: '1000',
        container: 'abcdef0123456789',
        pod: null,
        v1Calls: 1,
        v2Calls: 0,
        lastSeen: null,
      }),
    ).toBe('(unattributed) (user 1000, container abcdef012345)');
  });
});

describe('collectUsage concurrency and clients', () => {
  it('uses one client per account and region, bounds regions and calls in flight, and keeps order', async () => {
    const w = usageWindow(Date.UTC(2026, 10, 22), 14);
    const made: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const perRegion = new Map<string, number>();
    let maxPerRegion = 0;
    const factory = {
      cloudWatch(target: { accountId: string }, region: string) {
        const key = `${target.accountId}/${region}`;
        made.push(key);
        return {
          send: async (cmd: { input: { MetricDataQueries: Array<{ Id: string }> } }) => {
            inFlight += 1;
            perRegion.set(key, (perRegion.get(key) ?? 0) + 1);
            maxInFlight = Math.max(maxInFlight, inFlight);
            maxPerRegion = Math.max(maxPerRegion, perRegion.get(key) as number);
            await new Promise((r) => setTimeout(r, 5));
            inFlight -= 1;
            perRegion.set(key, (perRegion.get(key) as number) - 1);
            return {
              MetricDataResults: cmd.input.MetricDataQueries.map((q) => ({
                Id: q.Id,
                Timestamps: [new Date(w.startMs)],
                Values: [1],
                StatusCode: 'Complete',
              })),
            };
          },
        };
      },
    };
    const instances: InstanceRecord[] = [];
    for (const accountId of ['111111111111', '222222222222', '333333333333']) {
      for (const region of ['eu-west-1', 'us-east-1']) {
        for (let k = 0; k < 6; k++) {
          instances.push({
            ...(q(`i-${accountId.slice(0, 1)}${region.slice(0, 2)}${k}`, 'optional') as InstanceRecord),
            accountId,
            region,
            launchTime: null,
            tags: {},
          } as InstanceRecord);
        }
      }
    }
    const ev = await collectUsage(
      factory as never,
      [{ accountId: '111111111111', name: null, roleArn: null }],
      instances,
      { window: w, concurrency: 2, batchConcurrency: 2, queriesPerCall: 2 },
    );
    expect(made.sort()).toEqual([
      '111111111111/eu-west-1',
      '111111111111/us-east-1',
      '222222222222/eu-west-1',
      '222222222222/us-east-1',
      '333333333333/eu-west-1',
      '333333333333/us-east-1',
    ]);
    expect(maxPerRegion).toBe(2);
    expect(maxInFlight).toBeLessThanOrEqual(4);
    expect(maxInFlight).toBeGreaterThan(2);
    expect(ev.regions.map((r) => [r.accountId, r.region, r.batches, r.calls])).toEqual([
      ['111111111111', 'eu-west-1', 3, 3],
      ['111111111111', 'us-east-1', 3, 3],
      ['222222222222', 'eu-west-1', 3, 3],
      ['222222222222', 'us-east-1', 3, 3],
      ['333333333333', 'eu-west-1', 3, 3],
      ['333333333333', 'us-east-1', 3, 3],
    ]);
    expect(ev.series.size).toBe(36);
    expect(ev.series.get('222222222222/us-east-1/i-2us5')?.noToken).toEqual({ t: [w.startMs], v: [1] });
  });
});
