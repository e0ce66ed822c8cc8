/**
 * Reads the IMDS usage metrics of inventoried instances from CloudWatch (GetMetricData).
 *
 * Per account and region: the region's own CloudWatch client (AwsClientFactory caches one per
 * account+region, so credentials, endpoint and the adaptive retry bucket are that region's), queries
 * planned by queries.ts in batches of at most 500. Each batch reads the window's two ranges
 * (window.ts: the whole periods, then the tail up to now at 60 s), each paged through NextToken until
 * the last page; the two parts of a series are merged (they cover disjoint times). Accounts x regions run `concurrency` at a time; inside a region at most `batchConcurrency`
 * calls are in flight. Throttling is retried by the SDK's adaptive retry (AWS_DEFAULTS.maxAttempts).
 * A failure is recorded for its account/region (with the error code and AWS code) and the rest goes
 * on: the instances of a failed batch get no series and readiness "unknown (query-failed)".
 */
import { type CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { ImdsguardError } from '../../errors.js';
import type { AccountTarget, AwsClientFactory } from '../aws/clients.js';
import { mapBounded } from '../aws/concurrency.js';
import { failureFields, wrapAwsError } from '../aws/errors.js';
import type { InstanceRecord } from '../inventory/model.js';
import {
  batchQueries,
  MAX_QUERIES_PER_CALL,
  type MetricKey,
  type PlannedQuery,
  planQueries,
  toMetricDataQuery,
  type UsageMode,
} from './queries.js';
import { type UsageWindow, usageRanges } from './window.js';

/** Defaults, with units. */
export const COLLECT_USAGE_DEFAULTS = {
  /** Account x region reads in flight. */
  concurrency: 8,
  /** GetMetricData calls in flight per account and region. */
  batchConcurrency: 2,
  /** Queries per call (the API maximum). */
  queriesPerCall: MAX_QUERIES_PER_CALL,
  /** Datapoints per response (the API maximum); less forces more pages. */
  maxDatapoints: 100_800,
  /** Pages per batch before giving up (a runaway NextToken guard). */
  maxPagesPerBatch: 1000,
} as const;

/**
 * One series: datapoint times (epoch ms, ascending) and their Sums. Datapoints before
 * window.periodsEndMs cover one whole period each; those after it cover tailPeriodSeconds each.
 */
export interface Series {
  t: number[];
  v: number[];
}

/** What was read for one instance. A metric that was not queried is absent. */
export interface InstanceSeries {
  noToken?: Series;
  rejected?: Series;
  /** Set when a query of this instance failed (the failure's message). */
  failed?: string;
  /** CloudWatch said the series is incomplete or not accessible (StatusCode Forbidden / InternalError). */
  statusMessages?: string[];
}

export interface UsageFailure {
  accountId: string;
  region: string;
  /** An IMDSGUARD_E_ code. */
  code: string;
  awsCode: string | null;
  message: string;
  hint: string | null;
  /** Instances whose evidence is missing because of this failure. */
  instances: number;
}

export interface RegionUsageStats {
  accountId: string;
  region: string;
  instances: number;
  queries: number;
  batches: number;
  /** GetMetricData calls made (pages included). */
  calls: number;
  status: 'ok' | 'failed' | 'partial';
}

export interface UsageEvidence {
  window: UsageWindow;
  mode: UsageMode;
  /** instanceKey(i) -> series */
  series: Map<string, InstanceSeries>;
  regions: RegionUsageStats[];
  failures: UsageFailure[];
}

export interface CollectUsageOptions {
  window: UsageWindow;
  mode?: UsageMode | undefined;
  concurrency?: number | undefined;
  batchConcurrency?: number | undefined;
  queriesPerCall?: number | undefined;
  maxDatapoints?: number | undefined;
  onProgress?: ((p: { done: number; total: number }) => void) | undefined;
}

function failureOf(err: unknown, accountId: string, region: string, instances: number): UsageFailure {
  return { accountId, region, ...failureFields(err), instances };
}

/**
 * Runs one batch (<= 500 queries) over both ranges of the window, through every page. Returns the
 * series by query id and the number of calls. Results of one id may span pages and ranges: their
 * datapoints are appended, then sorted.
 */
export async function readBatch(
  cw: Pick<CloudWatchClient, 'send'>,
  batch: readonly PlannedQuery[],
  window: UsageWindow,
  maxDatapoints: number,
): Promise<{ byId: Map<string, Series & { messages: string[] }>; calls: number }> {
  const byId = new Map<string, Series & { messages: string[] }>();
  for (const q of batch) byId.set(q.id, { t: [], v: [], messages: [] });
  let calls = 0;
  for (const range of usageRanges(window)) {
    let token: string | undefined;
    let pages = 0;
    do {
      if (pages >= COLLECT_USAGE_DEFAULTS.maxPagesPerBatch) {
        throw new ImdsguardError(
          'IMDSGUARD_E_AWS',
          `GetMetricData returned more than ${COLLECT_USAGE_DEFAULTS.maxPagesPerBatch} pages for one batch`,
        );
      }
      const out = await cw.send(
        new GetMetricDataCommand({
          MetricDataQueries: batch.map((q) => toMetricDataQuery(q, range.periodSeconds)),
          StartTime: new Date(range.startMs),
          EndTime: new Date(range.endMs),
          ScanBy: 'TimestampAscending',
          MaxDatapoints: maxDatapoints,
          ...(token !== undefined ? { NextToken: token } : {}),
        }),
      );
      calls += 1;
      pages += 1;
      for (const r of out.MetricDataResults ?? []) {
        const s = r.Id !== undefined ? byId.get(r.Id) : undefined;
        if (!s) continue;
        const ts = r.Timestamps ?? [];
        const vs = r.Values ?? [];
        for (let k = 0; k < ts.length && k < vs.length; k++) {
          const t = (ts[k] as Date).getTime();
          // Each range keeps only its own datapoints (CloudWatch rounds StartTime down).
          if (t < range.startMs || t >= range.endMs) continue;
          s.t.push(t);
          s.v.push(vs[k] as number);
        }
        if (r.StatusCode === 'Forbidden' || r.StatusCode === 'InternalError') {
          s.messages.push(
            `${r.StatusCode}${(r.Messages ?? []).map((m) => `: ${m.Code ?? ''} ${m.Value ?? ''}`.trimEnd()).join('')}`,
          );
        }
      }
      token = out.NextToken || undefined;
    } while (token !== undefined);
  }
  // Ascending order, whatever the pages did.
  for (const s of byId.values()) {
    if (s.t.some((x, k) => k > 0 && x < (s.t[k - 1] as number))) {
      const idx = s.t.map((_, k) => k).sort((a, b) => (s.t[a] as number) - (s.t[b] as number));
      s.t = idx.map((k) => s.t[k] as number);
      s.v = idx.map((k) => s.v[k] as number);
    }
  }
  return { byId, calls };
}

/** Reads every planned series of one account and region. Never throws: failures are returned. */
export async function readRegionUsage(
  cw: Pick<CloudWatchClient, 'send'>,
  accountId: string,
  region: string,
  instances: readonly InstanceRecord[],
  opts: CollectUsageOptions,
): Promise<{ series: Map<string, InstanceSeries>; stats: RegionUsageStats; failures: UsageFailure[] }> {
  const mode = opts.mode ?? 'auto';
  const queries = planQueries(instances, mode);
  const batches = batchQueries(queries, opts.queriesPerCall ?? COLLECT_USAGE_DEFAULTS.queriesPerCall);
  const series = new Map<string, InstanceSeries>();
  const failures: UsageFailure[] = [];
  const stats: RegionUsageStats = {
    accountId,
    region,
    instances: instances.length,
    queries: queries.length,
    batches: batches.length,
    calls: 0,
    status: 'ok',
  };
  const entry = (id: string) => {
    let e = series.get(id);
    if (!e) {
      e = {};
      series.set(id, e);
    }
    return e;
  };
  let failedBatches = 0;
  await mapBounded(
    batches,
    opts.batchConcurrency ?? COLLECT_USAGE_DEFAULTS.batchConcurrency,
    async (batch) => {
      try {
        const { byId, calls } = await readBatch(
          cw,
          batch,
          opts.window,
          opts.maxDatapoints ?? COLLECT_USAGE_DEFAULTS.maxDatapoints,
        );
        stats.calls += calls;
        for (const q of batch) {
          const s = byId.get(q.id);
          if (!s) continue;
          const e = entry(q.instanceId);
          e[q.metric as MetricKey] = { t: s.t, v: s.v };
          if (s.messages.length > 0) e.statusMessages = [...(e.statusMessages ?? []), ...s.messages];
        }
      } catch (err) {
        failedBatches += 1;
        const wrapped = wrapAwsError(err, { operation: 'cloudwatch:GetMetricData', accountId, region });
        const ids = new Set(batch.map((q) => q.instanceId));
        failures.push(failureOf(wrapped, accountId, region, ids.size));
        for (const id of ids) entry(id).failed = wrapped.message;
      }
    },
  );
  if (failedBatches > 0) stats.status = failedBatches === batches.length ? 'failed' : 'partial';
  return { series, stats, failures };
}

/**
 * Reads usage evidence for every instance of `instances` (grouped by account and region) with the
 * factory's per-account-and-region CloudWatch clients. `accounts` gives the AccountTarget (role) of
 * each account id.
 */
export async function collectUsage(
  factory: AwsClientFactory,
  accounts: readonly AccountTarget[],
  instances: readonly InstanceRecord[],
  opts: CollectUsageOptions,
): Promise<UsageEvidence> {
  const groups = new Map<string, { target: AccountTarget; region: string; instances: InstanceRecord[] }>();
  const targets = new Map(accounts.map((a) => [a.accountId, a]));
  for (const i of instances) {
    const k = `${i.accountId}/${i.region}`;
    let g = groups.get(k);
    if (!g) {
      const target = targets.get(i.accountId) ?? { accountId: i.accountId, name: null, roleArn: null };
      g = { target, region: i.region, instances: [] };
      groups.set(k, g);
    }
    g.instances.push(i);
  }
  const tasks = [...groups.values()].sort(
    (a, b) => a.target.accountId.localeCompare(b.target.accountId) || a.region.localeCompare(b.region),
  );
  let done = 0;
  opts.onProgress?.({ done, total: tasks.length });
  const results = await mapBounded(
    tasks,
    opts.concurrency ?? COLLECT_USAGE_DEFAULTS.concurrency,
    async (g) => {
      try {
        return await readRegionUsage(
          factory.cloudWatch(g.target, g.region),
          g.target.accountId,
          g.region,
          g.instances,
          opts,
        );
      } finally {
        done += 1;
        opts.onProgress?.({ done, total: tasks.length });
      }
    },
  );
  const series = new Map<string, InstanceSeries>();
  const regions: RegionUsageStats[] = [];
  const failures: UsageFailure[] = [];
  results.forEach((r, idx) => {
    const g = tasks[idx] as (typeof tasks)[number];
    for (const [id, s] of r.series) series.set(`${g.target.accountId}/${g.region}/${id}`, s);
    regions.push(r.stats);
    failures.push(...r.failures);
  });
  return { window: opts.window, mode: opts.mode ?? 'auto', series, regions, failures };
}
