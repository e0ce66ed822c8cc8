/**
 * CloudWatch: GetMetricData and GetMetricStatistics over the AWS/EC2 IMDS metrics of the fake fleet.
 *
 * The installed @aws-sdk/client-cloudwatch (3.1164) speaks AWS JSON 1.0 (awsQueryCompatible):
 *   POST /  Content-Type: application/x-amz-json-1.0
 *   X-Amz-Target: GraniteServiceVersion20100801.GetMetricData
 *   SigV4 credential scope service: "monitoring"
 * Errors: HTTP 400 with `x-amzn-query-error: Code;Sender` and body {"__type": "Code", "message": "..."}
 * (index.ts writes them). Timestamps in JSON are epoch seconds (numbers), both ways.
 *
 * Metrics live on FakeRegion.metrics (instance id -> FakeInstanceMetrics: segments of 5-minute
 * samples). A period's datapoint is the Sum (or SampleCount, Average, Maximum, Minimum) of the samples
 * in [periodStart, periodStart + Period); a period with no sample has no datapoint, like CloudWatch.
 *
 * What the fake does like the real service (CloudWatch API reference: GetMetricData, MetricStat), so a
 * client that breaks a rule fails here too:
 *   - at most 500 MetricDataQueries per GetMetricData (ValidationError above);
 *   - query ids match ^[a-z][a-zA-Z0-9_]*$ and are unique;
 *   - Period: "must be a multiple of 60" for regular-resolution metrics (InvalidParameterValue
 *     otherwise); and "If the StartTime parameter specifies a time stamp that is greater than 3 hours
 *     ago, you must specify the period as follows or no data points in that time range is returned:
 *     Start time between 3 hours and 15 days ago - Use a multiple of 60 seconds (1 minute). Start time
 *     between 15 and 63 days ago - Use a multiple of 300 seconds (5 minutes). Start time greater than 63
 *     days ago - Use a multiple of 3600 seconds (1 hour)." A query that breaks it gets no datapoints
 *     (not an error);
 *   - StartTime: "CloudWatch rounds the specified time stamp as follows: Start time less than 15 days
 *     ago - Round down to the nearest whole minute ... between 15 and 63 days ago - Round down to the
 *     nearest 5-minute clock interval ... greater than 63 days ago - Round down to the nearest 1-hour
 *     clock interval"; EndTime is exclusive ("results include data points up to the specified time
 *     stamp");
 *   - retention: "Data points with a period of 3600 seconds (1 hour) are available for 455 days": older
 *     samples are gone; a sample can be read only once it is published (`publishDelayMs` after its time,
 *     by the server clock): nothing from the future;
 *   - at most MaxDatapoints (default and maximum 100,800) datapoints per response; the rest comes
 *     back through NextToken (results of an id may span pages; StatusCode PartialData until its last);
 *   - GetMetricStatistics: at most 1,440 datapoints per call (InvalidParameterCombination).
 * cloudWatchStats(fleet) counts calls and the largest batch seen, for tests and benches.
 */
import { FakeAwsError, type HandlerContext, type HandlerResult } from './context.js';
import {
  addInstance,
  allInstances,
  emptyAccount,
  type FakeFleet,
  type FakeInstanceMetrics,
  type FakeMetricSegment,
  type FakeRegion,
  getRegion,
} from './model.js';

export const CLOUDWATCH_TARGET = 'GraniteServiceVersion20100801';

/** Limits of the real service, with units. */
export const CLOUDWATCH_LIMITS = {
  /** MetricDataQueries per GetMetricData call. */
  maxQueriesPerCall: 500,
  /** Datapoints per GetMetricData response (MaxDatapoints default and maximum). */
  maxDatapoints: 100_800,
  /** Datapoints per GetMetricStatistics call. */
  maxStatisticsDatapoints: 1440,
  /** Default sample interval of EC2 basic monitoring, ms. */
  sampleEveryMs: 300_000,
} as const;

const IMDS_METRICS = ['MetadataNoToken', 'MetadataNoTokenRejected'] as const;
type ImdsMetric = (typeof IMDS_METRICS)[number];

export interface CloudWatchStats {
  getMetricDataCalls: number;
  getMetricStatisticsCalls: number;
  /** Queries across every GetMetricData call. */
  queries: number;
  /** The largest MetricDataQueries list seen in one call. */
  maxQueriesInCall: number;
  /** Datapoints returned across every call. */
  datapoints: number;
}

const STATS = new WeakMap<FakeFleet, CloudWatchStats>();

/** Counters of the CloudWatch calls this fleet has served (accepted calls only). */
export function cloudWatchStats(fleet: FakeFleet): CloudWatchStats {
  let s = STATS.get(fleet);
  if (!s) {
    s = {
      getMetricDataCalls: 0,
      getMetricStatisticsCalls: 0,
      queries: 0,
      maxQueriesInCall: 0,
      datapoints: 0,
    };
    STATS.set(fleet, s);
  }
  return s;
}

export function resetCloudWatchStats(fleet: FakeFleet): void {
  STATS.delete(fleet);
}

// ---------------------------------------------------------------------------------------------
// Seeding helpers

/** Sets the metrics of one instance (replacing what it had). */
export function setInstanceMetrics(
  region: FakeRegion,
  instanceId: string,
  metrics: FakeInstanceMetrics,
): void {
  if (!region.metrics) region.metrics = new Map();
  region.metrics.set(instanceId, metrics);
}

/** Usage profiles for a seeded fleet. Times are epoch ms. */
export type UsageProfile =
  /** running through [fromMs, toMs): every sample 0 for both metrics */
  | { kind: 'quiet'; fromMs: number; toMs: number }
  /** running through [fromMs, toMs): `perSample` v1 calls in every sample of [callsFromMs, callsToMs) */
  | {
      kind: 'v1';
      fromMs: number;
      toMs: number;
      callsFromMs: number;
      callsToMs: number;
      perSample: number;
    }
  /** enforced: MetadataNoTokenRejected `perSample` in [rejectedFromMs, rejectedToMs) (0 elsewhere) */
  | {
      kind: 'rejected';
      fromMs: number;
      toMs: number;
      rejectedFromMs: number;
      rejectedToMs: number;
      perSample: number;
    }
  /** no metrics at all */
  | { kind: 'none' };

/** The metrics a profile publishes. */
export function profileMetrics(p: UsageProfile): FakeInstanceMetrics {
  switch (p.kind) {
    case 'none':
      return {};
    case 'quiet':
      return {
        MetadataNoToken: [{ fromMs: p.fromMs, toMs: p.toMs, value: 0 }],
        MetadataNoTokenRejected: [{ fromMs: p.fromMs, toMs: p.toMs, value: 0 }],
      };
    case 'v1':
      return {
        MetadataNoToken: [
          { fromMs: p.fromMs, toMs: p.toMs, value: 0 },
          { fromMs: p.callsFromMs, toMs: p.callsToMs, value: p.perSample },
        ],
        MetadataNoTokenRejected: [{ fromMs: p.fromMs, toMs: p.toMs, value: 0 }],
      };
    case 'rejected':
      return {
        MetadataNoToken: [{ fromMs: p.fromMs, toMs: p.toMs, value: 0 }],
        MetadataNoTokenRejected: [
          { fromMs: p.fromMs, toMs: p.toMs, value: 0 },
          { fromMs: p.rejectedFromMs, toMs: p.rejectedToMs, value: p.perSample },
        ],
      };
  }
}

/**
 * Seeds metrics for every instance of the fleet from `profile(instance, accountId, region)`.
 * Returns how many instances got metrics.
 */
export function seedUsage(
  fleet: FakeFleet,
  profile: (instance: ReturnType<typeof allInstances> extends Generator<infer T> ? T : never) => UsageProfile,
): number {
  let n = 0;
  for (const entry of allInstances(fleet)) {
    const region = getRegion(fleet, entry.accountId, entry.region);
    if (!region) continue;
    setInstanceMetrics(region, entry.instance.instanceId, profileMetrics(profile(entry)));
    n += 1;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Aggregation

type Stat = 'Sum' | 'SampleCount' | 'Average' | 'Maximum' | 'Minimum';
const STATS_NAMES: readonly Stat[] = ['Sum', 'SampleCount', 'Average', 'Maximum', 'Minimum'];

interface Agg {
  sum: number;
  count: number;
  max: number;
  min: number;
}

/** Samples of a segment within [a, b): count of k with from + k*every in [a, b) and < to. */
function samplesIn(seg: FakeMetricSegment, a: number, b: number): number {
  const every = seg.everyMs ?? CLOUDWATCH_LIMITS.sampleEveryMs;
  const lo = Math.max(a, seg.fromMs);
  const hi = Math.min(b, seg.toMs);
  if (hi <= lo) return 0;
  const first = Math.ceil((lo - seg.fromMs) / every);
  const last = Math.ceil((hi - seg.fromMs) / every) - 1;
  return Math.max(0, last - first + 1);
}

/**
 * Datapoints of one series: [periodStartMs, aggregate] for every period of [startMs, endMs) that
 * holds at least one readable sample (sample time in [oldestMs, newestMs]). Periods start at startMs
 * (CloudWatch aligns them to the start time).
 */
export function aggregate(
  segments: readonly FakeMetricSegment[],
  startMs: number,
  endMs: number,
  periodMs: number,
  readable: { oldestMs: number; newestMs: number } = {
    oldestMs: Number.NEGATIVE_INFINITY,
    newestMs: Number.POSITIVE_INFINITY,
  },
): Array<[number, Agg]> {
  const out: Array<[number, Agg]> = [];
  if (segments.length === 0) return out;
  for (let t = startMs; t < endMs; t += periodMs) {
    const a = Math.max(t, readable.oldestMs);
    const b = Math.min(t + periodMs, endMs, readable.newestMs + 1);
    if (b <= a) continue;
    let agg: Agg | undefined;
    // Overlapping segments add up sample by sample: the sample count of the period is that of the
    // union of sample times; for the fake, segments either share the same sample grid or do not
    // overlap, so the count is the largest per-segment count and the sum adds every segment.
    for (const seg of segments) {
      const n = samplesIn(seg, a, b);
      if (n === 0) continue;
      if (!agg) agg = { sum: 0, count: 0, max: Number.NEGATIVE_INFINITY, min: Number.POSITIVE_INFINITY };
      agg.sum += n * seg.value;
      agg.count = Math.max(agg.count, n);
    }
    if (!agg) continue;
    // Max/min per sample: the sum of the values of the segments present (an approximation that is
    // exact when segments nest on one grid, which is how the profiles are built).
    let perSample = 0;
    for (const seg of segments) if (samplesIn(seg, a, b) > 0) perSample += seg.value;
    agg.max = perSample;
    const count = agg.count;
    agg.min = segments.every((seg) => samplesIn(seg, a, b) === count) ? perSample : 0;
    out.push([t, agg]);
  }
  return out;
}

function statValue(agg: Agg, stat: Stat): number {
  switch (stat) {
    case 'Sum':
      return agg.sum;
    case 'SampleCount':
      return agg.count;
    case 'Average':
      return agg.count === 0 ? 0 : agg.sum / agg.count;
    case 'Maximum':
      return agg.max;
    case 'Minimum':
      return agg.min;
  }
}

// ---------------------------------------------------------------------------------------------
// Request parsing

function validation(message: string): FakeAwsError {
  return new FakeAwsError('ValidationError', message, 400);
}

function epochMs(v: unknown, name: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v * 1000);
  if (typeof v === 'string' && v !== '' && Number.isFinite(Date.parse(v))) return Date.parse(v);
  throw new FakeAwsError('MissingParameter', `The parameter ${name} is required.`, 400);
}

const DAY_MS = 86_400_000;
/** How long CloudWatch keeps data at all: "available for 455 days (15 months)" (1-hour datapoints). */
const RETENTION_MS = 455 * DAY_MS;

/** Validates Period: a positive multiple of 60 (regular-resolution metrics). */
function checkPeriod(period: unknown): number {
  if (typeof period !== 'number' || !Number.isInteger(period) || period < 1) {
    throw validation('The parameter Period must be a positive integer.');
  }
  if (period < 60 || period % 60 !== 0) {
    throw new FakeAwsError(
      'InvalidParameterValue',
      'The parameter Period must be a multiple of 60 and at least 60.',
      400,
    );
  }
  return period;
}

/** Whether a period may be used for a start time of this age (else: no datapoints, as documented). */
export function periodServesAge(periodSeconds: number, ageMs: number): boolean {
  if (ageMs > 63 * DAY_MS) return periodSeconds % 3600 === 0;
  if (ageMs > 15 * DAY_MS) return periodSeconds % 300 === 0;
  return periodSeconds % 60 === 0;
}

/** StartTime as CloudWatch rounds it for its age. */
export function roundStartTime(startMs: number, now: number): number {
  const age = now - startMs;
  const unit = age > 63 * DAY_MS ? 3_600_000 : age > 15 * DAY_MS ? 300_000 : 60_000;
  return Math.floor(startMs / unit) * unit;
}

interface MetricRef {
  namespace: string;
  metricName: string;
  instanceId: string | null;
}

function metricRef(raw: unknown): MetricRef {
  const m = (raw ?? {}) as { Namespace?: unknown; MetricName?: unknown; Dimensions?: unknown };
  if (typeof m.Namespace !== 'string' || typeof m.MetricName !== 'string') {
    throw validation('Metric must have a Namespace and a MetricName.');
  }
  let instanceId: string | null = null;
  if (Array.isArray(m.Dimensions)) {
    for (const d of m.Dimensions as Array<{ Name?: unknown; Value?: unknown }>) {
      if (d.Name === 'InstanceId' && typeof d.Value === 'string') instanceId = d.Value;
      else return { namespace: m.Namespace, metricName: m.MetricName, instanceId: null };
    }
  }
  return { namespace: m.Namespace, metricName: m.MetricName, instanceId };
}

function seriesFor(ctx: HandlerContext, ref: MetricRef): readonly FakeMetricSegment[] {
  if (ref.namespace !== 'AWS/EC2' || ref.instanceId === null) return [];
  if (!(IMDS_METRICS as readonly string[]).includes(ref.metricName)) return [];
  const region = getRegion(ctx.fleet, ctx.accountId, ctx.region);
  return region?.metrics?.get(ref.instanceId)?.[ref.metricName as ImdsMetric] ?? [];
}

function regionOrThrow(ctx: HandlerContext): void {
  const region = getRegion(ctx.fleet, ctx.accountId, ctx.region);
  if ((region && !region.enabled) || ctx.faults.isRegionDisabled(ctx.accountId, ctx.region)) {
    throw new FakeAwsError(
      'InvalidClientTokenId',
      'The security token included in the request is invalid.',
      403,
    );
  }
}

const ID_RE = /^[a-z][a-zA-Z0-9_]*$/;

/** The sample times a read can see now: not older than the retention, already published. */
function readableRange(ctx: HandlerContext): { oldestMs: number; newestMs: number } {
  return { oldestMs: ctx.now - RETENTION_MS, newestMs: ctx.now - ctx.options.publishDelayMs };
}

// ---------------------------------------------------------------------------------------------
// Actions

function getMetricData(ctx: HandlerContext): unknown {
  regionOrThrow(ctx);
  const j = ctx.json;
  const queries = j['MetricDataQueries'];
  if (!Array.isArray(queries) || queries.length === 0) {
    throw new FakeAwsError('MissingParameter', 'The parameter MetricDataQueries is required.', 400);
  }
  if (queries.length > CLOUDWATCH_LIMITS.maxQueriesPerCall) {
    throw validation(
      `The collection MetricDataQueries must not have a size greater than ${CLOUDWATCH_LIMITS.maxQueriesPerCall}.`,
    );
  }
  const requestedStartMs = epochMs(j['StartTime'], 'StartTime');
  const endMs = epochMs(j['EndTime'], 'EndTime');
  if (endMs <= requestedStartMs)
    throw validation('The parameter StartTime must be less than the parameter EndTime.');
  const startMs = roundStartTime(requestedStartMs, ctx.now);
  const readable = readableRange(ctx);
  const maxDp = j['MaxDatapoints'] ?? CLOUDWATCH_LIMITS.maxDatapoints;
  if (
    typeof maxDp !== 'number' ||
    !Number.isInteger(maxDp) ||
    maxDp < 1 ||
    maxDp > CLOUDWATCH_LIMITS.maxDatapoints
  ) {
    throw validation(`MaxDatapoints must be between 1 and ${CLOUDWATCH_LIMITS.maxDatapoints}.`);
  }
  const descending = j['ScanBy'] !== 'TimestampAscending';

  const ids = new Set<string>();
  const series: Array<{ id: string; label: string; points: Array<[number, number]> }> = [];
  for (const q of queries as Array<Record<string, unknown>>) {
    const id = q['Id'];
    if (typeof id !== 'string' || !ID_RE.test(id)) {
      throw validation(
        `The value ${String(id)} for parameter MetricDataQueries.member.Id is not valid: it must start with a lowercase letter.`,
      );
    }
    if (ids.has(id))
      throw validation(`The values for parameter id in MetricDataQueries are not unique: ${id}.`);
    ids.add(id);
    if (q['Expression'] !== undefined) {
      throw validation('fake-aws does not evaluate metric math expressions.');
    }
    const ms = q['MetricStat'] as Record<string, unknown> | undefined;
    if (!ms) throw validation(`The query ${id} needs a MetricStat or an Expression.`);
    const ref = metricRef(ms['Metric']);
    const period = checkPeriod(ms['Period']);
    const stat = ms['Stat'];
    if (typeof stat !== 'string' || !(STATS_NAMES as readonly string[]).includes(stat)) {
      throw validation(`The statistic ${String(stat)} is not supported by fake-aws.`);
    }
    if (q['ReturnData'] === false) continue;
    const served = periodServesAge(period, ctx.now - startMs);
    const points = (
      served ? aggregate(seriesFor(ctx, ref), startMs, endMs, period * 1000, readable) : []
    ).map(([t, agg]) => [t, statValue(agg, stat as Stat)] as [number, number]);
    if (descending) points.reverse();
    series.push({
      id,
      label: typeof q['Label'] === 'string' ? q['Label'] : ref.metricName,
      points,
    });
  }

  // Pagination: the datapoints of every series in order, cut into pages of MaxDatapoints.
  const requestKey = JSON.stringify([queries, j['StartTime'], j['EndTime'], j['ScanBy'] ?? null, maxDp]);
  const keyHash = simpleHash(requestKey);
  const offset = decodeCwToken(j['NextToken'], keyHash);
  const total = series.reduce((a, s) => a + s.points.length, 0);
  const pageEnd = offset + maxDp;
  const results: unknown[] = [];
  let pos = 0;
  for (const s of series) {
    const n = s.points.length;
    const a = Math.max(offset, pos);
    const b = Math.min(pageEnd, pos + n);
    if (b > a) {
      const slice = s.points.slice(a - pos, b - pos);
      results.push({
        Id: s.id,
        Label: s.label,
        Timestamps: slice.map(([t]) => t / 1000),
        Values: slice.map(([, v]) => v),
        StatusCode: b < pos + n ? 'PartialData' : 'Complete',
      });
    } else if (n === 0 && offset === 0) {
      results.push({ Id: s.id, Label: s.label, Timestamps: [], Values: [], StatusCode: 'Complete' });
    }
    pos += n;
  }
  const consumed = Math.max(0, Math.min(pageEnd, total) - offset);
  const nextOffset = offset + consumed;
  const stats = cloudWatchStats(ctx.fleet);
  stats.getMetricDataCalls += 1;
  stats.queries += queries.length;
  stats.maxQueriesInCall = Math.max(stats.maxQueriesInCall, queries.length);
  stats.datapoints += consumed;
  return {
    MetricDataResults: results,
    Messages: [],
    ...(nextOffset < total ? { NextToken: encodeCwToken(nextOffset, keyHash) } : {}),
  };
}

function getMetricStatistics(ctx: HandlerContext): unknown {
  regionOrThrow(ctx);
  const j = ctx.json;
  const requestedStartMs = epochMs(j['StartTime'], 'StartTime');
  const endMs = epochMs(j['EndTime'], 'EndTime');
  if (endMs <= requestedStartMs)
    throw validation('The parameter StartTime must be less than the parameter EndTime.');
  const startMs = roundStartTime(requestedStartMs, ctx.now);
  const period = checkPeriod(j['Period']);
  if (Math.ceil((endMs - startMs) / (period * 1000)) > CLOUDWATCH_LIMITS.maxStatisticsDatapoints) {
    throw new FakeAwsError(
      'InvalidParameterCombination',
      `You have requested up to ${Math.ceil((endMs - startMs) / (period * 1000))} datapoints, which exceeds the limit of ${CLOUDWATCH_LIMITS.maxStatisticsDatapoints}.`,
      400,
    );
  }
  const ref = metricRef({
    Namespace: j['Namespace'],
    MetricName: j['MetricName'],
    Dimensions: j['Dimensions'],
  });
  const statistics = Array.isArray(j['Statistics']) ? (j['Statistics'] as string[]) : [];
  if (statistics.length === 0 || statistics.some((s) => !(STATS_NAMES as readonly string[]).includes(s))) {
    throw validation('Statistics must name at least one of Sum, SampleCount, Average, Maximum, Minimum.');
  }
  const points = periodServesAge(period, ctx.now - startMs)
    ? aggregate(seriesFor(ctx, ref), startMs, endMs, period * 1000, readableRange(ctx))
    : [];
  const stats = cloudWatchStats(ctx.fleet);
  stats.getMetricStatisticsCalls += 1;
  stats.datapoints += points.length;
  return {
    Label: ref.metricName,
    Datapoints: points.map(([t, agg]) => {
      const dp: Record<string, unknown> = { Timestamp: t / 1000, Unit: 'Count' };
      for (const s of statistics) dp[s] = statValue(agg, s as Stat);
      return dp;
    }),
  };
}

function simpleHash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0).toString(16);
}

function encodeCwToken(offset: number, key: string): string {
  return Buffer.from(JSON.stringify({ o: offset, k: key })).toString('base64url');
}

function decodeCwToken(token: unknown, key: string): number {
  if (token === undefined || token === null || token === '') return 0;
  if (typeof token === 'string') {
    try {
      const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown; k?: unknown };
      if (typeof t.o === 'number' && t.k === key) return t.o;
    } catch {
      // fall through
    }
  }
  throw new FakeAwsError('InvalidNextToken', 'The service returned an invalid NextToken.', 400);
}

const ACTIONS: Record<string, (ctx: HandlerContext) => unknown> = {
  GetMetricData: getMetricData,
  GetMetricStatistics: getMetricStatistics,
};

export function handleCloudWatch(ctx: HandlerContext): HandlerResult {
  const h = ACTIONS[ctx.action];
  if (!h)
    throw new FakeAwsError(
      'UnknownOperationException',
      `CloudWatch ${ctx.action} is not implemented by fake-aws yet`,
    );
  return { body: JSON.stringify(h(ctx)), contentType: 'application/x-amz-json-1.0' };
}

// ---------------------------------------------------------------------------------------------
// A mixed fleet for usage tests and benches

/** What each instance of a mixed usage fleet is, and the readiness imdsguard must find for it. */
export const USAGE_KINDS = {
  /** running 60 days, tokens optional, v1 calls in the last 3 days -> not-ready */
  v1: 'not-ready',
  /** running 60 days, tokens optional, zero v1 calls -> ready */
  quiet: 'ready',
  /** stopped 5 days ago (metrics end then), tokens optional -> unknown (stopped) */
  stopped: 'unknown',
  /** launched 3 days ago, tokens optional, zero calls -> unknown (new) */
  new: 'unknown',
  /** running, tokens required, no rejected call -> enforced */
  enforced: 'enforced',
  /** running, tokens required, rejected calls in the last 2 days -> broken */
  broken: 'broken',
  /** running 60 days, tokens optional, no metrics at all -> unknown (no-metrics) */
  missing: 'unknown',
  /** running since 60 days, metrics only for the last 7 days (stopped before) -> unknown (gaps) */
  gaps: 'unknown',
} as const;
export type UsageKind = keyof typeof USAGE_KINDS;

export interface MixedUsageFleetOptions {
  nowMs: number;
  /** Accounts (ids) and regions; default one account, us-east-1. */
  accounts?: string[];
  regions?: string[];
  /** Instances per account and region, by kind (default one of each). */
  perRegion?: Partial<Record<UsageKind, number>>;
  /** v1 calls per 5-minute sample for `v1` instances (default 2). */
  v1PerSample?: number;
}

/** Counts per UsageKind with every kind not named set to 0 (perRegion otherwise defaults to 1 each). */
export function onlyKinds(counts: Partial<Record<UsageKind, number>>): Record<UsageKind, number> {
  const out = Object.fromEntries(Object.keys(USAGE_KINDS).map((k) => [k, 0])) as Record<UsageKind, number>;
  return { ...out, ...counts };
}

export interface MixedUsageFleet {
  fleet: FakeFleet;
  /** instance id -> kind */
  kinds: Map<string, UsageKind>;
}

const DAY = 86_400_000;

/** Builds a fleet whose instances each have one UsageKind, with matching EC2 state and metrics. */
export function mixedUsageFleet(o: MixedUsageFleetOptions): MixedUsageFleet {
  const accounts = o.accounts ?? ['111111111111'];
  const regions = o.regions ?? ['us-east-1'];
  const per: Record<UsageKind, number> = {
    v1: 1,
    quiet: 1,
    stopped: 1,
    new: 1,
    enforced: 1,
    broken: 1,
    missing: 1,
    gaps: 1,
    ...o.perRegion,
  };
  const fleet: FakeFleet = {
    managementAccountId: accounts[0] as string,
    accounts: new Map(accounts.map((a) => [a, emptyAccount(a, regions, ['ImdsguardAudit'])])),
    regionNames: [...new Set([...regions, 'us-east-1', 'eu-west-1'])],
    nextId: 1,
  };
  const kinds = new Map<string, UsageKind>();
  const now = o.nowMs;
  const longAgo = now - 60 * DAY;
  let n = 0;
  for (const account of fleet.accounts.values()) {
    for (const region of account.regions.values()) {
      for (const kind of Object.keys(USAGE_KINDS) as UsageKind[]) {
        for (let k = 0; k < per[kind]; k++) {
          n += 1;
          const instanceId = `i-${n.toString(16).padStart(17, '0')}`;
          const required = kind === 'enforced' || kind === 'broken';
          const launch = kind === 'new' ? now - 3 * DAY : longAgo;
          addInstance(region, account.accountId, {
            instanceId,
            reservationId: `r-${n.toString(16).padStart(17, '0')}`,
            instanceType: 't3.micro',
            imageId: 'ami-00000000000000001',
            state: kind === 'stopped' ? 'stopped' : 'running',
            launchTime: new Date(launch),
            tags: { Name: `${kind}-${k}`, usage: kind },
            metadataOptions: {
              state: 'applied',
              httpTokens: required ? 'required' : 'optional',
              httpEndpoint: 'enabled',
              httpPutResponseHopLimit: 1,
              httpProtocolIpv6: 'disabled',
              instanceMetadataTags: 'disabled',
            },
          });
          kinds.set(instanceId, kind);
          let profile: UsageProfile;
          switch (kind) {
            case 'v1':
              profile = {
                kind: 'v1',
                fromMs: launch,
                toMs: now,
                callsFromMs: now - 3 * DAY,
                callsToMs: now - 2 * DAY,
                perSample: o.v1PerSample ?? 2,
              };
              break;
            case 'stopped':
              profile = { kind: 'quiet', fromMs: launch, toMs: now - 5 * DAY };
              break;
            case 'broken':
              profile = {
                kind: 'rejected',
                fromMs: launch,
                toMs: now,
                rejectedFromMs: now - 2 * DAY,
                rejectedToMs: now - DAY,
                perSample: 1,
              };
              break;
            case 'missing':
              profile = { kind: 'none' };
              break;
            case 'gaps':
              profile = { kind: 'quiet', fromMs: now - 7 * DAY, toMs: now };
              break;
            default:
              profile = { kind: 'quiet', fromMs: launch, toMs: now };
          }
          setInstanceMetrics(region, instanceId, profileMetrics(profile));
        }
      }
    }
  }
  return { fleet, kinds };
}
