/**
 * Views of `fleet usage` (and the readiness part of `fleet discover --usage`) in every format.
 * JSON: one document (kind imdsguard.fleet.usage); NDJSON: meta, summary, one line per instance,
 * failures; CSV: one row per instance; table: counts, then instances (broken and not-ready first).
 */
import type { ScanFailure } from '../fleet/inventory/model.js';
import type { InstanceReadiness, Readiness, ReadinessCounts } from '../fleet/posture/readiness.js';
import type { RegionUsageStats, UsageFailure } from '../fleet/usage/collect.js';
import { describeCaller, type HostCaller } from '../fleet/usage/host-evidence.js';
import type { LogsQueryStats } from '../fleet/usage/logs-insights.js';
import type { UsageMode } from '../fleet/usage/queries.js';
import type { UsageWindow } from '../fleet/usage/window.js';
import type { Column } from './columns.js';
import { renderCsv } from './csv.js';
import type { RunStats } from './fleet.js';
import { renderJson, renderNdjson } from './json.js';
import type { OutputFormat } from './output.js';
import { renderTable } from './table.js';

export const USAGE_SCHEMA_VERSION = 1 as const;

export interface UsageRow extends InstanceReadiness {
  /** Processes that made IMDSv1 calls on the host, from --host-evidence; null: no evidence file. */
  hostV1Callers: HostCaller[] | null;
}

/** `--host-evidence cloudwatch-logs:...`: what was queried, what it cost, what it found. */
export interface UsageHostEvidence {
  source: string;
  /** per-account: the group in every account and region; central: one group. */
  layout: 'per-account' | 'central';
  /** Per account and region queried: queries, splits, bytes scanned, status. */
  queries: LogsQueryStats[];
  totals: {
    queries: number;
    /** What Logs Insights charges by. */
    bytesScanned: number;
    instancesWithRecords: number;
    notReadyWithCallers: number;
    /** Not-ready or broken instances with no guard record: guard not installed or not shipping. */
    notReadyWithoutRecords: number;
  };
}

export interface UsageDocument {
  schemaVersion: typeof USAGE_SCHEMA_VERSION;
  kind: 'imdsguard.fleet.usage';
  generatedAt: string;
  window: Pick<
    UsageWindow,
    'days' | 'start' | 'end' | 'periodSeconds' | 'periods' | 'periodsEnd' | 'tailPeriodSeconds'
  >;
  mode: UsageMode;
  regions: string[];
  accounts: string[];
  counts: ReadinessCounts;
  instances: UsageRow[];
  regionStats: RegionUsageStats[];
  /** Present with `--host-evidence cloudwatch-logs:...`. */
  hostEvidence?: UsageHostEvidence;
  /** Inventory failures (DescribeInstances), CloudWatch failures and Logs Insights failures, per account and region. */
  failures: Array<
    | (ScanFailure & { source: 'inventory' })
    | (UsageFailure & { source: 'cloudwatch'; stage: 'metrics' })
    | (UsageFailure & { source: 'cloudwatch-logs'; stage: 'host-evidence' })
  >;
  stats: RunStats;
}

const ORDER: Record<Readiness, number> = {
  broken: 0,
  'not-ready': 1,
  unknown: 2,
  ready: 3,
  enforced: 4,
  disabled: 5,
};

export function sortUsageRows<T extends InstanceReadiness>(rows: T[]): T[] {
  return rows.sort(
    (a, b) =>
      ORDER[a.readiness] - ORDER[b.readiness] ||
      a.accountId.localeCompare(b.accountId) ||
      a.region.localeCompare(b.region) ||
      a.instanceId.localeCompare(b.instanceId),
  );
}

function hostCell(r: UsageRow): string {
  if (r.hostV1Callers === null) return '';
  if (r.hostV1Callers.length === 0) return '(no v1 caller on host)';
  return r.hostV1Callers.map((c) => `${describeCaller(c)}: ${c.v1Calls}`).join('; ');
}

export const USAGE_COLUMNS: Column<UsageRow>[] = [
  { header: 'account_id', value: (r) => r.accountId },
  { header: 'region', value: (r) => r.region },
  { header: 'instance_id', value: (r) => r.instanceId },
  { header: 'name', value: (r) => r.name ?? '' },
  { header: 'state', value: (r) => r.state },
  { header: 'launch_time', value: (r) => r.launchTime },
  { header: 'http_tokens', value: (r) => r.httpTokens },
  { header: 'http_endpoint', value: (r) => r.httpEndpoint },
  { header: 'readiness', value: (r) => r.readiness },
  { header: 'reason', value: (r) => r.reason },
  { header: 'v1_calls', value: (r) => r.noToken?.sum ?? null },
  { header: 'v1_last_seen', value: (r) => r.noToken?.lastNonZero ?? null },
  { header: 'v1_datapoints', value: (r) => r.noToken?.datapoints ?? null },
  { header: 'rejected_calls', value: (r) => r.rejected?.sum ?? null },
  { header: 'rejected_last_seen', value: (r) => r.rejected?.lastNonZero ?? null },
  { header: 'detail', value: (r) => r.detail },
  { header: 'suggestion', value: (r) => r.suggestion ?? '' },
  { header: 'host_v1_callers', value: hostCell },
];

const TABLE_COLUMNS: Column<UsageRow>[] = [
  { header: 'account', value: (r) => r.accountId },
  { header: 'region', value: (r) => r.region },
  { header: 'instance', value: (r) => r.instanceId },
  { header: 'name', value: (r) => r.name ?? '', maxWidth: 24 },
  { header: 'state', value: (r) => r.state },
  { header: 'tokens', value: (r) => r.httpTokens },
  { header: 'readiness', value: (r) => r.readiness },
  { header: 'v1', value: (r) => r.noToken?.sum ?? '-', align: 'right' },
  { header: 'last v1', value: (r) => r.noToken?.lastNonZero?.replace(/\.\d+Z$/, 'Z') ?? '' },
  { header: 'rejected', value: (r) => r.rejected?.sum ?? '-', align: 'right' },
  { header: 'why', value: (r) => r.detail, maxWidth: 70 },
  { header: 'host process', value: hostCell, maxWidth: 60 },
];

const REJECTED_TABLE_COLUMNS: Column<UsageRow>[] = [
  { header: 'account', value: (r) => r.accountId },
  { header: 'region', value: (r) => r.region },
  { header: 'instance', value: (r) => r.instanceId },
  { header: 'name', value: (r) => r.name ?? '', maxWidth: 24 },
  { header: 'rejected', value: (r) => r.rejected?.sum ?? 0, align: 'right' },
  { header: 'last rejected', value: (r) => r.rejected?.lastNonZero?.replace(/\.\d+Z$/, 'Z') ?? '' },
  { header: 'suggestion', value: (r) => r.suggestion ?? '', maxWidth: 120 },
  { header: 'host process', value: hostCell, maxWidth: 60 },
];

export function countsLine(c: ReadinessCounts): string {
  return `ready ${c.ready}, not ready ${c['not-ready']}, unknown ${c.unknown}, enforced ${c.enforced}, broken after enforcement ${c.broken}, endpoint disabled ${c.disabled}`;
}

function failureRows(doc: UsageDocument) {
  return doc.failures.map((f) => ({
    account: f.accountId ?? '-',
    region: f.region ?? '-',
    stage: f.stage,
    code: f.code,
    message: f.message,
  }));
}

function usageTable(doc: UsageDocument): string {
  const parts: string[] = [];
  const w = doc.window;
  const rejectedOnly = doc.mode === 'rejected';
  parts.push(
    `IMDS usage ${w.start.replace(/\.\d+Z$/, 'Z')} .. ${w.end.replace(/\.\d+Z$/, 'Z')} (now; ${w.days} day(s) at ${w.periodSeconds} s, then ${w.tailPeriodSeconds} s since ${w.periodsEnd.replace(/\.\d+Z$/, 'Z')}), ` +
      `${doc.instances.length} instance(s) in ${doc.accounts.length} account(s) x ${doc.regions.length} region(s)\n`,
  );
  parts.push(`${countsLine(doc.counts)}\n\n`);
  if (rejectedOnly) {
    parts.push(
      renderTable(doc.instances, REJECTED_TABLE_COLUMNS, {
        empty: 'No enforced instance has rejected IMDSv1 calls in the window.',
      }),
    );
  } else {
    parts.push(renderTable(doc.instances, TABLE_COLUMNS, { empty: 'No instances.' }));
  }
  if (doc.failures.length > 0) {
    parts.push(`\nPartial failures (${doc.failures.length}): the rest is complete\n`);
    parts.push(
      renderTable(failureRows(doc), [
        { header: 'account', value: (f) => f.account },
        { header: 'region', value: (f) => f.region },
        { header: 'stage', value: (f) => f.stage },
        { header: 'code', value: (f) => f.code },
        { header: 'message', value: (f) => f.message, maxWidth: 100 },
      ]),
    );
  }
  return parts.join('');
}

export function renderUsage(doc: UsageDocument, format: OutputFormat): string {
  switch (format) {
    case 'json':
      return renderJson(doc);
    case 'csv':
      return renderCsv(doc.instances, USAGE_COLUMNS);
    case 'ndjson': {
      const records: unknown[] = [
        {
          type: 'meta',
          schemaVersion: doc.schemaVersion,
          kind: doc.kind,
          generatedAt: doc.generatedAt,
          window: doc.window,
          mode: doc.mode,
          regions: doc.regions,
          accounts: doc.accounts,
          stats: doc.stats,
        },
        { type: 'summary', ...doc.counts },
      ];
      for (const r of doc.instances) records.push({ type: 'instance', ...r });
      for (const s of doc.regionStats) records.push({ type: 'region', ...s });
      for (const f of doc.failures) records.push({ type: 'failure', ...f });
      return renderNdjson(records);
    }
    default:
      return usageTable(doc);
  }
}

/** What `fleet discover --usage` adds to each instance. */
export interface InstanceUsageCell {
  readiness: Readiness;
  reason: InstanceReadiness['reason'];
  detail: string;
  v1Calls: number | null;
  v1LastSeen: string | null;
  rejectedCalls: number | null;
  suggestion: string | null;
  hostV1Callers: HostCaller[] | null;
}

export interface DiscoverUsageSection {
  window: UsageDocument['window'];
  mode: UsageMode;
  counts: ReadinessCounts;
  regionStats: RegionUsageStats[];
  failures: UsageFailure[];
}

export function usageCell(r: UsageRow): InstanceUsageCell {
  return {
    readiness: r.readiness,
    reason: r.reason,
    detail: r.detail,
    v1Calls: r.noToken?.sum ?? null,
    v1LastSeen: r.noToken?.lastNonZero ?? null,
    rejectedCalls: r.rejected?.sum ?? null,
    suggestion: r.suggestion,
    hostV1Callers: r.hostV1Callers,
  };
}

/**
 * `fleet discover --usage`: the discover document with `usage` (window, counts, failures) at the top
 * and a `usage` cell on every live instance (terminated ones have none). `renderBase` is
 * report/fleet.ts renderDiscover, passed in so this file only adds.
 */
export function renderDiscoverWithUsage<
  D extends { instances: Array<{ accountId: string; region: string; instanceId: string }> },
>(
  doc: D,
  rows: readonly UsageRow[],
  section: DiscoverUsageSection,
  format: OutputFormat,
  renderBase: (doc: D, format: OutputFormat) => string,
  baseCsvColumns: Column<D['instances'][number]>[],
): string {
  const byKey = new Map(rows.map((r) => [`${r.accountId}/${r.region}/${r.instanceId}`, r]));
  const cellOf = (i: { accountId: string; region: string; instanceId: string }) => {
    const r = byKey.get(`${i.accountId}/${i.region}/${i.instanceId}`);
    return r ? usageCell(r) : null;
  };
  if (format === 'csv') {
    const extra: Column<D['instances'][number]>[] = [
      { header: 'readiness', value: (i) => cellOf(i)?.readiness ?? '' },
      { header: 'readiness_reason', value: (i) => cellOf(i)?.reason ?? '' },
      { header: 'v1_calls', value: (i) => cellOf(i)?.v1Calls ?? null },
      { header: 'v1_last_seen', value: (i) => cellOf(i)?.v1LastSeen ?? null },
      { header: 'rejected_calls', value: (i) => cellOf(i)?.rejectedCalls ?? null },
      { header: 'readiness_detail', value: (i) => cellOf(i)?.detail ?? '' },
    ];
    return renderCsv(doc.instances, [...baseCsvColumns, ...extra]);
  }
  if (format === 'table') {
    const attention = rows.filter(
      (r) => r.readiness !== 'ready' && r.readiness !== 'enforced' && r.readiness !== 'disabled',
    );
    const shown = attention.slice(0, 25);
    let out = renderBase(doc, format);
    out += `\nReadiness over ${section.window.days} day(s) (CloudWatch MetadataNoToken): ${countsLine(section.counts)}\n`;
    if (shown.length > 0) out += renderTable(shown, TABLE_COLUMNS);
    if (attention.length > shown.length) {
      out += `... ${attention.length - shown.length} more: use fleet usage, or --format json/csv\n`;
    }
    if (section.failures.length > 0) {
      out += `CloudWatch failures (${section.failures.length}): ${section.failures
        .slice(0, 5)
        .map((f) => `${f.accountId} ${f.region}: ${f.message}`)
        .join('; ')}\n`;
    }
    return out;
  }
  const augmented = {
    ...doc,
    usage: section,
    instances: doc.instances.map((i) => {
      const c = cellOf(i);
      return c ? { ...i, usage: c } : i;
    }),
  };
  return renderBase(augmented, format);
}
