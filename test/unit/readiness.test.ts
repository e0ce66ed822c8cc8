import { describe, expect, it } from 'vitest';
import type { InstanceRecord } from '../../src/fleet/inventory/model.js';
import {
  assessFleet,
  assessReadiness,
  countReadiness,
  MISSING_TAIL_PERIODS,
  missingPeriods,
  readinessFilter,
  selectReady,
  summarizeSeries,
} from '../../src/fleet/posture/readiness.js';
import type { InstanceSeries, Series } from '../../src/fleet/usage/collect.js';
import { usageWindow } from '../../src/fleet/usage/window.js';
import { instanceRecord } from '../support/fleet-records.js';

const NOW = Date.UTC(2026, 10, 22, 19, 0, 0);
const W = usageWindow(NOW, 14); // 6 h periods, 56 of them
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

/** A datapoint in every period of W from period `from` to `to` (exclusive), value v (or per-index). */
function series(from = 0, to = W.periods, v: number | ((k: number) => number) = 0): Series {
  const s: Series = { t: [], v: [] };
  for (let k = from; k < to; k++) {
    s.t.push(W.startMs + k * W.periodSeconds * 1000);
    s.v.push(typeof v === 'number' ? v : v(k));
  }
  return s;
}

describe('readiness', () => {
  it('ready: running through the whole window with zero v1 calls', () => {
    const r = assessReadiness(inst(), { noToken: series() }, W);
    expect(r.readiness).toBe('ready');
    expect(r.reason).toBe('no-v1-calls');
    expect(r.noToken).toMatchObject({ sum: 0, datapoints: 56, lastNonZero: null });
  });

  it('ready tolerates the last period missing (publication delay), but not two', () => {
    expect(MISSING_TAIL_PERIODS).toBe(1);
    expect(assessReadiness(inst(), { noToken: series(0, W.periods - 1) }, W).readiness).toBe('ready');
    const two = assessReadiness(inst(), { noToken: series(0, W.periods - 2) }, W);
    expect(two.readiness).toBe('unknown');
    expect(two.reason).toBe('gaps');
    expect(two.detail).toContain('2 of 56');
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
    expect(r.detail).toContain('10 IMDSv1 call(s) in 14 day(s)');
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
    expect(assessReadiness(inst({ endpoint: 'disabled' }), {}, W)).toMatchObject({
      readiness: 'enforced',
      reason: 'endpoint-disabled',
    });
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

  it('assessFleet leaves out terminated instances; counts; selectReady and the --only-ready filter', () => {
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
    expect(countReadiness(rows)).toEqual({ ready: 1, 'not-ready': 1, unknown: 1, enforced: 0, broken: 0 });
    expect(selectReady([a, b, c, d], rows).map((x) => x.instanceId)).toEqual(['i-000000000000000a1']);
    const f = readinessFilter(rows);
    expect(f.name).toBe('only-ready');
    expect(f.check(a)).toBeNull();
    expect(f.check(b)).toContain('not-ready');
    expect(f.check(c)).toContain('no usage evidence');
    expect(f.check(d)).toContain('unknown');
  });
});
