/**
 * PURE: is an instance ready for HttpTokens=required? Decided from its inventory record and the
 * CloudWatch series read for it (fleet/usage), over one window that ends at now. No clock: the window
 * carries time.
 *
 * Definitions (docs/usage.md explains them for users):
 *
 *   enforced   HttpTokens=required with the endpoint enabled (what every output calls "IMDSv2
 *              enforced"), and no MetadataNoTokenRejected call in the window (or that series was not
 *              read).
 *   disabled   HttpEndpoint=disabled: no metadata service at all, so nothing to enforce.
 *   broken     HttpTokens=required and MetadataNoTokenRejected > 0 in the window: something on the
 *              instance still tries IMDSv1 and is refused. A rollback is suggested.
 *   not-ready  HttpTokens=optional and MetadataNoToken > 0 in the window, the minutes since the last
 *              whole period included (whatever the state or launch time: a v1 call is positive
 *              evidence). Reports the count and when last seen.
 *   ready      HttpTokens=optional, zero v1 calls up to now, and it ran through the whole window:
 *                - state is running now, and
 *                - launched at or before the window start, and
 *                - MetadataNoToken has a datapoint in every whole period of the window, and
 *                - the evidence is fresh: when the tail (the minutes since the last whole period) is
 *                  longer than STALE_AFTER_MS, a datapoint at most STALE_AFTER_MS old.
 *              EC2 publishes MetadataNoToken every 5 minutes while an instance runs, 0 when there
 *              were no v1 calls, so a period without a datapoint is time the instance was not
 *              running (or metrics were lost): no evidence either way.
 *   unknown    HttpTokens=optional, zero v1 calls, but not enough evidence, with the reason:
 *              query-failed (the CloudWatch read failed), stopped (not running now), new (launched
 *              inside the window), no-metrics (no datapoint at all), gaps (datapoints missing from
 *              some whole periods: it did not run through the whole window), stale (no datapoint in the
 *              last STALE_AFTER_MS: the most recent calls cannot be seen yet).
 */
import { allowsImdsV1, type InstanceRecord, instanceKey } from '../inventory/model.js';
import type { InstanceSeries, Series } from '../usage/collect.js';
import type { UsageWindow } from '../usage/window.js';

/**
 * The readiness values partition the live instances: enforced + broken are the instances with
 * HttpTokens=required (endpoint enabled), disabled those with the endpoint off, and ready + not-ready +
 * unknown those that still allow IMDSv1 (posture/summary.ts counts the same three groups).
 */
export const READINESS = ['ready', 'not-ready', 'unknown', 'enforced', 'disabled', 'broken'] as const;
export type Readiness = (typeof READINESS)[number];

export const READINESS_REASONS = [
  'no-v1-calls',
  'v1-calls',
  'query-failed',
  'stopped',
  'new',
  'no-metrics',
  'gaps',
  'tokens-required',
  'endpoint-disabled',
  'rejected-calls',
  'stale',
] as const;
export type ReadinessReason = (typeof READINESS_REASONS)[number];

/**
 * How old the newest datapoint may be for a "ready" verdict, ms. EC2 publishes MetadataNoToken in
 * 5-minute periods, each a few minutes after it ends: 20 minutes covers one period and the delay.
 */
export const STALE_AFTER_MS = 20 * 60_000;

export interface MetricSummary {
  /** Sum over the window. */
  sum: number;
  /** Datapoints (periods with data). */
  datapoints: number;
  /** Start of the last period with a non-zero Sum (ISO 8601), or null. */
  lastNonZero: string | null;
  /** Start of the first and last period with data (ISO 8601), or null. */
  firstDatapoint: string | null;
  lastDatapoint: string | null;
}

export interface InstanceReadiness {
  accountId: string;
  region: string;
  instanceId: string;
  name: string | null;
  state: string;
  launchTime: string | null;
  httpTokens: string | null;
  httpEndpoint: string | null;
  /** null: not read (see the usage mode). */
  noToken: MetricSummary | null;
  rejected: MetricSummary | null;
  readiness: Readiness;
  reason: ReadinessReason;
  /** One line for a person: "412 v1 calls, last 2026-11-20T06:00:00.000Z". */
  detail: string;
  /** What to do next, when there is something to do (broken: the rollback command). */
  suggestion: string | null;
}

const ISO = (ms: number) => new Date(ms).toISOString();

/** Sum, coverage and last non-zero datapoint of a series, counting only datapoints inside the window. */
export function summarizeSeries(s: Series, window: Pick<UsageWindow, 'startMs' | 'endMs'>): MetricSummary {
  let sum = 0;
  let datapoints = 0;
  let lastNonZero: number | null = null;
  let first: number | null = null;
  let last: number | null = null;
  for (let k = 0; k < s.t.length; k++) {
    const t = s.t[k] as number;
    const v = s.v[k] as number;
    if (t < window.startMs || t >= window.endMs || !Number.isFinite(v)) continue;
    sum += v;
    datapoints += 1;
    if (v > 0 && (lastNonZero === null || t > lastNonZero)) lastNonZero = t;
    if (first === null || t < first) first = t;
    if (last === null || t > last) last = t;
  }
  return {
    sum,
    datapoints,
    lastNonZero: lastNonZero === null ? null : ISO(lastNonZero),
    firstDatapoint: first === null ? null : ISO(first),
    lastDatapoint: last === null ? null : ISO(last),
  };
}

/**
 * Whole periods of the window with no datapoint. Periods start at window.startMs (GetMetricData aligns
 * them to StartTime); datapoints of the tail (at or after periodsEndMs) do not count here.
 */
export function missingPeriods(s: Series, window: UsageWindow): number {
  const pMs = window.periodSeconds * 1000;
  const seen = new Set<number>();
  for (const t of s.t) {
    if (t < window.startMs || t >= window.periodsEndMs) continue;
    seen.add(Math.floor((t - window.startMs) / pMs));
  }
  return window.periods - seen.size;
}

/**
 * The newest datapoint is too old to trust "no v1 call until now": the tail is longer than
 * STALE_AFTER_MS and holds no datapoint in its last STALE_AFTER_MS. Returns the newest datapoint time
 * (or null) when stale, undefined when fresh.
 */
export function staleSince(s: Series, window: UsageWindow): number | null | undefined {
  if (window.endMs - window.periodsEndMs <= STALE_AFTER_MS) return undefined;
  let newest: number | null = null;
  for (const t of s.t) if (t < window.endMs && (newest === null || t > newest)) newest = t;
  if (newest !== null && newest >= window.endMs - STALE_AFTER_MS) return undefined;
  return newest;
}

export interface ReadinessOptions {
  /** The command a user runs to undo enforcement of one instance (for broken instances). */
  rollbackCommand?: ((i: InstanceRecord) => string) | undefined;
}

/**
 * The default rollback suggestion for one instance: the exact inverse of `fleet harden` for it alone
 * (AWS CLI; HttpTokens back to optional, every other option untouched). `fleet rollback` works per
 * change set of the journal, so the suggestion names that too.
 */
export function defaultRollbackCommand(
  i: Pick<InstanceRecord, 'accountId' | 'region' | 'instanceId'>,
): string {
  return `aws ec2 modify-instance-metadata-options --region ${i.region} --instance-id ${i.instanceId} --http-tokens optional (account ${i.accountId})`;
}

function base(
  i: InstanceRecord,
): Omit<InstanceReadiness, 'noToken' | 'rejected' | 'readiness' | 'reason' | 'detail' | 'suggestion'> {
  return {
    accountId: i.accountId,
    region: i.region,
    instanceId: i.instanceId,
    name: i.tags['Name'] ?? null,
    state: i.state,
    launchTime: i.launchTime,
    httpTokens: i.metadataOptions.httpTokens,
    httpEndpoint: i.metadataOptions.httpEndpoint,
  };
}

/** Readiness of one instance over the window. */
export function assessReadiness(
  i: InstanceRecord,
  evidence: InstanceSeries | undefined,
  window: UsageWindow,
  opts: ReadinessOptions = {},
): InstanceReadiness {
  const noToken = evidence?.noToken ? summarizeSeries(evidence.noToken, window) : null;
  const rejected = evidence?.rejected ? summarizeSeries(evidence.rejected, window) : null;
  const out = (
    readiness: Readiness,
    reason: ReadinessReason,
    detail: string,
    suggestion: string | null = null,
  ): InstanceReadiness => ({ ...base(i), noToken, rejected, readiness, reason, detail, suggestion });
  const m = i.metadataOptions;

  if (m.httpEndpoint === 'disabled') {
    return out('disabled', 'endpoint-disabled', 'metadata endpoint disabled');
  }
  if (!allowsImdsV1(m)) {
    if (rejected && rejected.sum > 0) {
      const cmd = (opts.rollbackCommand ?? defaultRollbackCommand)(i);
      return out(
        'broken',
        'rejected-calls',
        `${rejected.sum} IMDSv1 call(s) rejected since enforcement, last ${rejected.lastNonZero}`,
        `find the caller (imdsguard callers on the host), or roll back this instance: ${cmd}; or the whole change set: imdsguard fleet rollback --journal FILE --list, then --change-set ID`,
      );
    }
    const failed = evidence?.failed !== undefined && !rejected;
    return out(
      'enforced',
      'tokens-required',
      failed
        ? `HttpTokens=required; rejected calls not measured: ${evidence?.failed}`
        : rejected
          ? 'HttpTokens=required; no rejected IMDSv1 call in the window'
          : 'HttpTokens=required',
    );
  }

  if (noToken && noToken.sum > 0) {
    return out(
      'not-ready',
      'v1-calls',
      `${noToken.sum} IMDSv1 call(s) from ${window.start} to now (${window.end}), last ${noToken.lastNonZero}`,
    );
  }
  if (evidence?.failed !== undefined || !noToken) {
    return out('unknown', 'query-failed', `CloudWatch read failed: ${evidence?.failed ?? 'series not read'}`);
  }
  if (i.state !== 'running') {
    return out('unknown', 'stopped', `${i.state}: no evidence for the time it is not running`);
  }
  const launched = i.launchTime === null ? Number.NaN : Date.parse(i.launchTime);
  if (Number.isFinite(launched) && launched > window.startMs) {
    return out(
      'unknown',
      'new',
      launched >= window.endMs
        ? `launched ${i.launchTime}, after the end of the window (${window.end}): no evidence yet`
        : `launched ${i.launchTime}, inside the ${window.days}-day window (${window.start} to ${window.end})`,
    );
  }
  if (noToken.datapoints === 0) {
    const why = evidence?.statusMessages?.length ? ` (${evidence.statusMessages.join('; ')})` : '';
    return out('unknown', 'no-metrics', `no MetadataNoToken datapoint in the window${why}`);
  }
  const series = evidence?.noToken as Series;
  const missing = missingPeriods(series, window);
  if (missing > 0) {
    return out(
      'unknown',
      'gaps',
      `datapoints missing in ${missing} of ${window.periods} period(s) of ${window.periodSeconds} s: it did not run through the whole window`,
    );
  }
  const stale = staleSince(series, window);
  if (stale !== undefined) {
    // Whole-period datapoints cover their period: the evidence reaches at least periodsEnd.
    const since = stale === null || stale < window.periodsEndMs ? window.periodsEndMs : stale;
    return out(
      'unknown',
      'stale',
      `no MetadataNoToken datapoint since ${ISO(since)} (now ${window.end}): calls of the last ${Math.round((window.endMs - since) / 60_000)} minute(s) cannot be seen yet`,
    );
  }
  return out(
    'ready',
    'no-v1-calls',
    `no IMDSv1 call from ${window.start} to now (${window.end}), ${window.days} day(s) of continuous data`,
  );
}

export type ReadinessCounts = Record<Readiness, number>;

export function countReadiness(rows: Iterable<Pick<InstanceReadiness, 'readiness'>>): ReadinessCounts {
  const c = Object.fromEntries(READINESS.map((r) => [r, 0])) as ReadinessCounts;
  for (const r of rows) c[r.readiness] += 1;
  return c;
}

const GONE = new Set(['terminated', 'shutting-down']);

/**
 * Readiness of every live instance (terminated and shutting-down left out), keyed by instanceKey.
 * `series` is UsageEvidence.series.
 */
export function assessFleet(
  instances: readonly InstanceRecord[],
  series: ReadonlyMap<string, InstanceSeries>,
  window: UsageWindow,
  opts: ReadinessOptions = {},
): InstanceReadiness[] {
  const out: InstanceReadiness[] = [];
  for (const i of instances) {
    if (GONE.has(i.state)) continue;
    out.push(assessReadiness(i, series.get(instanceKey(i)), window, opts));
  }
  return out;
}

/**
 * `fleet harden --only-ready` as a selection filter (the SelectionFilter shape of
 * fleet/plan/selection.ts): keeps the instances whose readiness is "ready", and those that no longer
 * allow IMDSv1 (enforced, broken, disabled), so that the planner says what they are (already
 * compliant, endpoint disabled) instead of "not ready". An instance that allows IMDSv1 without a
 * readiness row is left out, with the reason.
 */
export function readinessFilter(
  rows: Iterable<Pick<InstanceReadiness, 'accountId' | 'region' | 'instanceId' | 'readiness' | 'detail'>>,
): {
  name: string;
  check(
    instance: Pick<InstanceRecord, 'accountId' | 'region' | 'instanceId' | 'metadataOptions'>,
  ): string | null;
} {
  const byKey = new Map<string, Pick<InstanceReadiness, 'readiness' | 'detail'>>();
  for (const r of rows) byKey.set(instanceKey(r), r);
  return {
    name: 'only-ready',
    check(instance) {
      // IMDSv1 already off: not this filter's to judge (harden skips it as compliant or disabled).
      if (!allowsImdsV1(instance.metadataOptions)) return null;
      const r = byKey.get(instanceKey(instance));
      if (!r) return 'not ready: no usage evidence was read for it';
      if (r.readiness === 'ready') return null;
      return `not ready (${r.readiness}: ${r.detail})`;
    },
  };
}

/** One instance's readiness as a saved `fleet usage` document gives it. */
export type KeyedReadiness = Pick<InstanceReadiness, 'accountId' | 'region' | 'instanceId' | 'readiness'>;

/**
 * The readiness of every live instance of an inventory, taken from `measured` (a saved `fleet usage`
 * of maybe another time) only where it still agrees with the inventory: the instance's settings
 * decide enforced, broken or disabled, and only an instance that still allows IMDSv1 takes ready,
 * not-ready or unknown from the measure. Anything else is judged from the inventory alone, so the
 * result always partitions the same instances the posture summary counts.
 */
export function readinessOfInventory(
  instances: readonly InstanceRecord[],
  measured: Iterable<KeyedReadiness>,
  window: UsageWindow,
): Array<Pick<InstanceReadiness, 'accountId' | 'region' | 'instanceId' | 'readiness'>> {
  const byKey = new Map<string, Readiness>();
  for (const r of measured) byKey.set(instanceKey(r), r.readiness);
  return assessFleet(instances, new Map(), window).map((row) => {
    const m = byKey.get(instanceKey(row));
    const allowsV1 = row.readiness === 'unknown';
    const keep =
      m !== undefined &&
      (allowsV1
        ? m === 'ready' || m === 'not-ready' || m === 'unknown'
        : row.readiness === 'enforced' && m === 'broken');
    return {
      accountId: row.accountId,
      region: row.region,
      instanceId: row.instanceId,
      readiness: keep ? (m as Readiness) : row.readiness,
    };
  });
}
