import { describe, expect, it } from 'vitest';
import type { InstanceRecord } from '../../src/fleet/inventory/model.js';
import { planHarden } from '../../src/fleet/plan/harden.js';
import { EMPTY_CRITERIA, selectInstances } from '../../src/fleet/plan/selection.js';
import {
  assessFleet,
  assessReadiness,
  countReadiness,
  missingPeriods,
  readinessFilter,
  readinessOfInventory,
  STALE_AFTER_MS,
  summarizeSeries,
} from '../../src/fleet/posture/readiness.js';
import type { InstanceSeries, Series } from '../../src/fleet/usage/collect.js';
import { usageWindow } from '../../src/fleet/usage/window.js';
import { instanceRecord } from '../support/fleet-records.js';

const NOW = Date.UTC(2026, 10, 22, 19, 0, 0);
const W = usageWindow(NOW, 14); // 6 h periods, 56 of them, then a 1-hour tail read at 60 s
const DAY = 86_400_000;

function inst(
  over: Partial<InstanceRecord> & {
    tokens?: 'optional' | 'required';
    endpoint?: 'enabled' | 'disabled';
  } = {},
): InstanceRecord {
  const { tokens, endpoint, ...rest } = over;
  return instanceRecord({
    launchTime: new Date(NOW - 90 * DAY).toISOString(),
    m: { httpTokens: tokens ?? 'optional', httpEndpoint: endpoint ?? 'enabled' },
    tags: { Name: 'web' },
    ...rest,
  });
}

/**
 * A datapoint in every period of W from period `from` to `to` (exclusive), value v (or per-index); when
 * the series runs to the last period, also the tail's 5-minute datapoints up to now (value 0).
 */
function series(from = 0, to = W.periods, v: number | ((k: number) => number) = 0): Series {
  const s: Series = { t: [], v: [] };
  for (let k = from; k < to; k++) {
    s.t.push(W.startMs + k * W.periodSeconds * 1000);
    s.v.push(typeof v === 'number' ? v : v(k));
  }
  if (to === W.periods) {
    for (let t = W.periodsEndMs; t < W.endMs; t += 300_000) {
      s.t.push(t);
      s.v.push(0);
    }
  }
  return s;
}

describe('readiness', () => {
  it('ready: running through the whole window with zero v1 calls', () => {
    const r = assessReadiness(inst(), { noToken: series() }, W);
    expect(r.readiness).toBe('ready');
    expect(r.reason).toBe('no-v1-calls');
    // 56 whole periods and the tail's twelve 5-minute datapoints.
    expect(r.noToken).toMatchObject({ sum: 0, datapoints: 56 + 12, lastNonZero: null });
  });

  it('the window ends at now: whole periods up to the last boundary, then the tail', () => {
    expect(W.end).toBe(new Date(NOW).toISOString());
    expect(W.periodsEnd).toBe('2026-11-22T18:00:00.000Z');
    expect(W.tailPeriodSeconds).toBe(60);
  });

  it('a missing last whole period is a gap; a tail without fresh data is stale, not ready', () => {
    const lastMissing = series(0, W.periods - 1);
    const r1 = assessReadiness(inst(), { noToken: lastMissing }, W);
    expect(r1).toMatchObject({ readiness: 'unknown', reason: 'gaps' });
    expect(r1.detail).toContain('1 of 56');
    // Every whole period, but nothing in the last hour: the newest calls cannot be seen.
    const noTail = series();
    const keep = noTail.t.map((t) => t < W.periodsEndMs);
    noTail.t = noTail.t.filter((_, k) => keep[k]);
    noTail.v = noTail.v.filter((_, k) => keep[k]);
    const r2 = assessReadiness(inst(), { noToken: noTail }, W);
    expect(r2).toMatchObject({ readiness: 'unknown', reason: 'stale' });
    expect(r2.detail).toContain(`no MetadataNoToken datapoint since ${W.periodsEnd}`);
    // Fresh enough: a datapoint STALE_AFTER_MS old.
    noTail.t.push(W.endMs - STALE_AFTER_MS);
    noTail.v.push(0);
    expect(assessReadiness(inst(), { noToken: noTail }, W).readiness).toBe('ready');
    // A tail shorter than STALE_AFTER_MS needs no datapoint of its own.
    const early = usageWindow(Date.UTC(2026, 10, 22, 18, 10), 14);
    const s = { t: [] as number[], v: [] as number[] };
    for (let k = 0; k < early.periods; k++) {
      s.t.push(early.startMs + k * early.periodSeconds * 1000);
      s.v.push(0);
    }
    expect(assessReadiness(inst(), { noToken: s }, early).readiness).toBe('ready');
  });

  it('a gap in the middle is unknown (gaps)', () => {
    const s = series();
    s.t.splice(10, 3);
    s.v.splice(10, 3);
    expect(missingPeriods(s, W)).toBe(3);
    const r = assessReadiness(inst(), { noToken: s }, W);
    expect(r).toMatchObject({ readiness: 'unknown', reason: 'gaps' });
  });

  it('not-ready: any v1 call, with the count and the last period seen', () => {
    const r = assessReadiness(
      inst(),
      { noToken: series(0, W.periods, (k) => (k === 20 || k === 30 ? 5 : 0)) },
      W,
    );
    expect(r.readiness).toBe('not-ready');
    expect(r.noToken?.sum).toBe(10);
    expect(r.noToken?.lastNonZero).toBe(new Date(W.startMs + 30 * 6 * 3_600_000).toISOString());
    expect(r.detail).toContain(`10 IMDSv1 call(s) from ${W.start} to now (${W.end})`);
  });

  it('v1 calls win over stopped and new: positive evidence is evidence', () => {
    const stopped = assessReadiness(inst({ state: 'stopped' }), { noToken: series(0, 10, 1) }, W);
    expect(stopped.readiness).toBe('not-ready');
    const fresh = assessReadiness(
      inst({ launchTime: new Date(NOW - DAY).toISOString() }),
      { noToken: series(52, 56, 1) },
      W,
    );
    expect(fresh.readiness).toBe('not-ready');
  });

  it('unknown: stopped, new, no metrics, query failed', () => {
    expect(assessReadiness(inst({ state: 'stopped' }), { noToken: series(0, 40) }, W)).toMatchObject({
      readiness: 'unknown',
      reason: 'stopped',
    });
    expect(
      assessReadiness(inst({ launchTime: new Date(W.startMs + 1).toISOString() }), { noToken: series(1) }, W),
    ).toMatchObject({ readiness: 'unknown', reason: 'new' });
    // Launched exactly at the window start ran through the whole window.
    expect(assessReadiness(inst({ launchTime: W.start }), { noToken: series() }, W).readiness).toBe('ready');
    expect(assessReadiness(inst(), { noToken: { t: [], v: [] } }, W)).toMatchObject({
      readiness: 'unknown',
      reason: 'no-metrics',
    });
    expect(
      assessReadiness(inst(), { failed: 'account 1 us-east-1 cloudwatch:GetMetricData: boom' }, W),
    ).toMatchObject({
      readiness: 'unknown',
      reason: 'query-failed',
    });
    expect(assessReadiness(inst(), undefined, W)).toMatchObject({
      readiness: 'unknown',
      reason: 'query-failed',
    });
  });

  it('enforced and broken, with a rollback suggestion scoped to the instance', () => {
    expect(assessReadiness(inst({ tokens: 'required' }), { rejected: series() }, W)).toMatchObject({
      readiness: 'enforced',
      reason: 'tokens-required',
      suggestion: null,
    });
    // The endpoint off is its own readiness: "enforced" means HttpTokens=required in every output.
    expect(assessReadiness(inst({ endpoint: 'disabled' }), {}, W)).toMatchObject({
      readiness: 'disabled',
      reason: 'endpoint-disabled',
    });
    expect(assessReadiness(inst({ endpoint: 'disabled', tokens: 'required' }), {}, W).readiness).toBe(
      'disabled',
    );
    const b = assessReadiness(
      inst({ tokens: 'required' }),
      { rejected: series(0, W.periods, (k) => (k === 50 ? 3 : 0)) },
      W,
    );
    expect(b.readiness).toBe('broken');
    expect(b.rejected?.sum).toBe(3);
    expect(b.suggestion).toContain(
      'aws ec2 modify-instance-metadata-options --region us-east-1 --instance-id i-0000000000000000a --http-tokens optional',
    );
    expect(b.suggestion).toContain('imdsguard fleet rollback --journal FILE --list');
    const custom = assessReadiness(inst({ tokens: 'required' }), { rejected: series(0, 56, 1) }, W, {
      rollbackCommand: (i) => `undo ${i.instanceId}`,
    });
    expect(custom.suggestion).toContain('undo i-0000000000000000a');
  });

  it('datapoints outside the window are ignored', () => {
    const s = series();
    s.t.push(W.endMs, W.startMs - 1);
    s.v.push(100, 100);
    expect(summarizeSeries(s, W).sum).toBe(0);
    expect(assessReadiness(inst(), { noToken: s }, W).readiness).toBe('ready');
  });

  it('a v1 call in the tail (after the last whole period) makes it not ready', () => {
    const s = series();
    const k = s.t.findIndex((t) => t >= W.endMs - 5 * 60_000);
    s.v[k] = 1;
    const r = assessReadiness(inst(), { noToken: s }, W);
    expect(r).toMatchObject({ readiness: 'not-ready', reason: 'v1-calls' });
    expect(r.noToken?.sum).toBe(1);
    expect(r.noToken?.lastNonZero).toBe(new Date(s.t[k] as number).toISOString());
  });

  it('"launched inside the window" only for a launch inside it; a later launch says so', () => {
    const inside = assessReadiness(
      inst({ launchTime: new Date(W.periodsEndMs + 60_000).toISOString() }),
      { noToken: series() },
      W,
    );
    expect(inside).toMatchObject({ readiness: 'unknown', reason: 'new' });
    expect(inside.detail).toContain('inside the 14-day window');
    const after = assessReadiness(
      inst({ launchTime: new Date(W.endMs + 60_000).toISOString() }),
      { noToken: series() },
      W,
    );
    expect(after).toMatchObject({ readiness: 'unknown', reason: 'new' });
    expect(after.detail).not.toContain('inside');
    expect(after.detail).toContain(`after the end of the window (${W.end})`);
  });

  it('assessFleet leaves out terminated instances; counts; the --only-ready filter', () => {
    const a = inst({ instanceId: 'i-000000000000000a1' });
    const b = inst({ instanceId: 'i-000000000000000b2' });
    const c = inst({ instanceId: 'i-000000000000000c3', state: 'terminated' });
    const d = inst({ instanceId: 'i-000000000000000d4', region: 'eu-west-1' });
    const ev = new Map<string, InstanceSeries>([
      ['111111111111/us-east-1/i-000000000000000a1', { noToken: series() }],
      ['111111111111/us-east-1/i-000000000000000b2', { noToken: series(0, 56, 1) }],
      ['111111111111/us-east-1/i-000000000000000c3', { noToken: series() }],
      // same id in another region: must not leak readiness across regions
      ['111111111111/us-east-1/i-000000000000000d4', { noToken: series() }],
    ]);
    const rows = assessFleet([a, b, c, d], ev, W);
    expect(rows.map((r) => r.instanceId)).toEqual([
      'i-000000000000000a1',
      'i-000000000000000b2',
      'i-000000000000000d4',
    ]);
    expect(countReadiness(rows)).toEqual({
      ready: 1,
      'not-ready': 1,
      unknown: 1,
      enforced: 0,
      disabled: 0,
      broken: 0,
    });
    const f = readinessFilter(rows);
    expect(f.name).toBe('only-ready');
    expect(f.check(a)).toBeNull();
    expect(f.check(b)).toContain('not-ready');
    expect(f.check(c)).toContain('no usage evidence');
    expect(f.check(d)).toContain('unknown');
  });

  it('--only-ready judges only instances that allow IMDSv1: the others reach the planner as they are', () => {
    const ready = inst({ instanceId: 'i-000000000000000a1' });
    const busy = inst({ instanceId: 'i-000000000000000b2' });
    const enforced = inst({ instanceId: 'i-000000000000000c3', tokens: 'required' });
    const disabled = inst({ instanceId: 'i-000000000000000d4', endpoint: 'disabled' });
    const unread = inst({ instanceId: 'i-000000000000000e5' });
    const rows = assessFleet(
      [ready, busy, enforced, disabled],
      new Map<string, InstanceSeries>([
        ['111111111111/us-east-1/i-000000000000000a1', { noToken: series() }],
        ['111111111111/us-east-1/i-000000000000000b2', { noToken: series(0, 56, 1) }],
      ]),
      W,
    );
    const f = readinessFilter(rows);
    expect(f.check(ready)).toBeNull();
    expect(f.check(busy)).toContain('not ready (not-ready');
    // Compliant and endpoint-disabled instances are never called "not ready".
    expect(f.check(enforced)).toBeNull();
    expect(f.check(disabled)).toBeNull();
    expect(f.check({ ...disabled, instanceId: 'i-000000000000000f6' })).toBeNull();
    expect(f.check(unread)).toBe('not ready: no usage evidence was read for it');
    const plan = planHarden(selectInstances([ready, busy, enforced, disabled], EMPTY_CRITERIA, [f]));
    expect(plan.items.map((i) => [i.resourceId, i.action, i.skip?.reason ?? null])).toEqual([
      ['i-000000000000000a1', 'change', null],
      ['i-000000000000000b2', 'skip', 'filtered'],
      ['i-000000000000000c3', 'skip', 'already-compliant'],
      ['i-000000000000000d4', 'skip', 'endpoint-disabled'],
    ]);
  });

  it('readinessOfInventory: a saved measure counts only where it still agrees with the inventory', () => {
    const nowRequired = inst({ instanceId: 'i-000000000000000a1', tokens: 'required' });
    const nowDisabled = inst({ instanceId: 'i-000000000000000b2', endpoint: 'disabled' });
    const stillOptional = inst({ instanceId: 'i-000000000000000c3' });
    const notMeasured = inst({ instanceId: 'i-000000000000000d4' });
    const breaking = inst({ instanceId: 'i-000000000000000e5', tokens: 'required' });
    const k = (i: InstanceRecord) => ({ accountId: i.accountId, region: i.region, instanceId: i.instanceId });
    const rows = readinessOfInventory(
      [nowRequired, nowDisabled, stillOptional, notMeasured, breaking],
      [
        { ...k(nowRequired), readiness: 'ready' },
        { ...k(nowDisabled), readiness: 'enforced' },
        { ...k(stillOptional), readiness: 'not-ready' },
        { ...k(breaking), readiness: 'broken' },
        {
          accountId: '999999999999',
          region: 'us-east-1',
          instanceId: 'i-000000000000000ff',
          readiness: 'ready',
        },
      ],
      W,
    );
    expect(rows.map((r) => [r.instanceId, r.readiness])).toEqual([
      ['i-000000000000000a1', 'enforced'],
      ['i-000000000000000b2', 'disabled'],
      ['i-000000000000000c3', 'not-ready'],
      ['i-000000000000000d4', 'unknown'],
      ['i-000000000000000e5', 'broken'],
    ]);
  });
});
