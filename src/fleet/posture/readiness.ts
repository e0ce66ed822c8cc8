/**
 * PURE: is an instance ready for HttpTokens=required? Decided from its inventory record and the
 * CloudWatch series read for it (fleet/usage), over one window. No clock: the window carries time.
 *
 * Definitions (docs/usage.md explains them for users):
 *
 *   enforced   HttpTokens=required (or the endpoint is disabled), and no MetadataNoTokenRejected
 *              call in the window (or that series was not read).
 *   broken     HttpTokens=required and MetadataNoTokenRejected > 0 in the window: something on the
 *              instance still tries IMDSv1 and is refused. A rollback is suggested.
 *   not-ready  HttpTokens=optional and MetadataNoToken > 0 in the window (whatever the state or
 *              launch time: a v1 call is positive evidence). Reports the count and when last seen.
 *   ready      HttpTokens=optional, zero v1 calls, and it ran through the whole window:
 *                - state is running now, and
 *                - launched at or before the window start, and
 *                - MetadataNoToken has a datapoint in every period of the window, except possibly
 *                  the last one (metrics can arrive minutes late; see MISSING_TAIL_PERIODS).
 *              EC2 publishes MetadataNoToken every 5 minutes while an instance runs, 0 when there
 *              were no v1 calls, so a period without a datapoint is time the instance was not
 *              running (or metrics were lost): no evidence either way.
 *   unknown    HttpTokens=optional, zero v1 calls, but not enough evidence, with the reason:
 *              query-failed (the CloudWatch read failed), stopped (not running now), new (launched
 *              inside the window), no-metrics (no datapoint at all), gaps (datapoints missing from
 *              some periods: it did not run through the whole window).
 */
import { allowsImdsV1, type InstanceRecord, instanceKey } from '../inventory/model.js';
import type { InstanceSeries, Series } from '../usage/collect.js';
import type { UsageWindow } from '../usage/window.js';

export const READINESS = ['ready', 'not-ready', 'unknown', 'enforced', 'broken'] as const;
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
] as const;
export type ReadinessReason = (typeof READINESS_REASONS)[number];

/** Trailing periods that may lack a datapoint and still count as covered (publication delay). */
export const MISSING_TAIL_PERIODS = 1;

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
 * Periods of the window with no datapoint, ignoring up to MISSING_TAIL_PERIODS at the end.
 * Periods start at window.startMs (GetMetricData aligns them to StartTime).
 */
export function missingPeriods(s: Series, window: UsageWindow): number {
  const pMs = window.periodSeconds * 1000;
  const seen = new Set<number>();
  for (const t of s.t) {
    if (t < window.startMs || t >= window.endMs) continue;
    seen.add(Math.floor((t - window.startMs) / pMs));
  }
  let lastSeen = -1;
  for (const k of seen) lastSeen = Math.max(lastSeen, k);
  // Trailing periods after the last datapoint are tolerated up to MISSING_TAIL_PERIODS.
  const tail = window.periods - 1 - lastSeen;
  const counted = tail <= MISSING_TAIL_PERIODS ? window.periods - tail : window.periods;
  return counted - [...seen].filter((k) => k < counted).length;
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
    const disabled = m.httpEndpoint === 'disabled';
    const failed = evidence?.failed !== undefined && !rejected;
    return out(
      'enforced',
      disabled ? 'endpoint-disabled' : 'tokens-required',
      disabled
        ? 'metadata endpoint disabled'
        : failed
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
      `${noToken.sum} IMDSv1 call(s) in ${window.days} day(s), last ${noToken.lastNonZero}`,
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
    return out('unknown', 'new', `launched ${i.launchTime}, inside the ${window.days}-day window`);
  }
  if (noToken.datapoints === 0) {
    const why = evidence?.statusMessages?.length ? ` (${evidence.statusMessages.join('; ')})` : '';
    return out('unknown', 'no-metrics', `no MetadataNoToken datapoint in the window${why}`);
  }
  const missing = missingPeriods(evidence?.noToken as Series, window);
  if (missing > 0) {
    return out(
      'unknown',
      'gaps',
      `datapoints missing in ${missing} of ${window.periods} period(s) of ${window.periodSeconds} s: it did not run through the whole window`,
    );
  }
  return out('ready', 'no-v1-calls', `no IMDSv1 call in ${window.days} day(s) of continuous data`);
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
 * `fleet harden --only-ready`: keeps exactly the candidates whose readiness is "ready". A candidate
 * without a readiness row (not assessed) is left out, never assumed ready.
 */
export function selectReady<T extends { accountId: string; region: string; instanceId: string }>(
  candidates: readonly T[],
  readiness: Iterable<Pick<InstanceReadiness, 'accountId' | 'region' | 'instanceId' | 'readiness'>>,
): T[] {
  const ready = new Set<string>();
  for (const r of readiness) if (r.readiness === 'ready') ready.add(instanceKey(r));
  return candidates.filter((c) => ready.has(instanceKey(c)));
}

/**
 * `fleet harden --only-ready` as a selection filter (the SelectionFilter shape of
 * fleet/plan/selection.ts): keeps exactly the instances whose readiness is "ready"; an instance
 * without a readiness row is left out, with the reason.
 */
export function readinessFilter(
  rows: Iterable<Pick<InstanceReadiness, 'accountId' | 'region' | 'instanceId' | 'readiness' | 'detail'>>,
): {
  name: string;
  check(instance: Pick<InstanceRecord, 'accountId' | 'region' | 'instanceId'>): string | null;
} {
  const byKey = new Map<string, Pick<InstanceReadiness, 'readiness' | 'detail'>>();
  for (const r of rows) byKey.set(instanceKey(r), r);
  return {
    name: 'only-ready',
    check(instance) {
      const r = byKey.get(instanceKey(instance));
      if (!r) return 'not ready: no usage evidence was read for it';
      if (r.readiness === 'ready') return null;
      return `not ready (${r.readiness}: ${r.detail})`;
    },
  };
}
