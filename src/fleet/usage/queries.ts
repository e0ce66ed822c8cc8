/**
 * PURE: which CloudWatch series to read for which instance, and how they are cut into GetMetricData
 * calls of at most 500 queries.
 *
 * Metrics (namespace AWS/EC2, dimension InstanceId, statistic Sum):
 *   MetadataNoToken          IMDSv1 calls that succeeded (only possible while HttpTokens=optional)
 *   MetadataNoTokenRejected  IMDSv1 calls refused because HttpTokens=required
 *
 * Modes:
 *   auto (default)  one series per instance, the one that can be non-zero in its current state:
 *                   HttpTokens=optional -> MetadataNoToken; required -> MetadataNoTokenRejected;
 *                   endpoint disabled -> none. 10,000 instances -> 10,000 queries -> 20 calls.
 *   both            both series for every instance (2 queries each: ceil(N / 250) calls). Use it to
 *                   see v1 calls an instance made before it was enforced inside the window.
 *   rejected        (fleet usage --rejected) MetadataNoTokenRejected of enforced instances only.
 */
import type { MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import type { InstanceRecord } from '../inventory/model.js';

export const IMDS_METRICS = {
  noToken: 'MetadataNoToken',
  rejected: 'MetadataNoTokenRejected',
} as const;
export type MetricKey = keyof typeof IMDS_METRICS;

export const USAGE_MODES = ['auto', 'both', 'rejected'] as const;
export type UsageMode = (typeof USAGE_MODES)[number];

/** GetMetricData's limit on MetricDataQueries per call. */
export const MAX_QUERIES_PER_CALL = 500;

export interface PlannedQuery {
  /** Unique within its account and region: "q<n>" (CloudWatch ids start with a lower-case letter). */
  id: string;
  instanceId: string;
  metric: MetricKey;
}

type QueryInstance = Pick<InstanceRecord, 'instanceId' | 'state' | 'metadataOptions'>;

const GONE = new Set(['terminated', 'shutting-down']);

/** The series to read for one instance in a mode (terminated instances: none). */
export function metricsFor(i: QueryInstance, mode: UsageMode): MetricKey[] {
  if (GONE.has(i.state)) return [];
  const m = i.metadataOptions;
  const enforced = m.httpTokens === 'required';
  const disabled = m.httpEndpoint === 'disabled';
  switch (mode) {
    case 'both':
      return ['noToken', 'rejected'];
    case 'rejected':
      return enforced && !disabled ? ['rejected'] : [];
    default:
      if (disabled) return [];
      return enforced ? ['rejected'] : ['noToken'];
  }
}

/** The queries for the instances of one account and region, in instance order. */
export function planQueries(instances: readonly QueryInstance[], mode: UsageMode): PlannedQuery[] {
  const out: PlannedQuery[] = [];
  for (const i of instances) {
    for (const metric of metricsFor(i, mode))
      out.push({ id: `q${out.length}`, instanceId: i.instanceId, metric });
  }
  return out;
}

/** Cuts queries into batches of at most `size` (default and maximum 500). */
export function batchQueries<T>(queries: readonly T[], size: number = MAX_QUERIES_PER_CALL): T[][] {
  const n = Math.max(1, Math.min(MAX_QUERIES_PER_CALL, Math.floor(size)));
  const out: T[][] = [];
  for (let i = 0; i < queries.length; i += n) out.push(queries.slice(i, i + n));
  return out;
}

/** The GetMetricData query for one planned series. */
export function toMetricDataQuery(q: PlannedQuery, periodSeconds: number): MetricDataQuery {
  return {
    Id: q.id,
    MetricStat: {
      Metric: {
        Namespace: 'AWS/EC2',
        MetricName: IMDS_METRICS[q.metric],
        Dimensions: [{ Name: 'InstanceId', Value: q.instanceId }],
      },
      Period: periodSeconds,
      Stat: 'Sum',
    },
    ReturnData: true,
  };
}
