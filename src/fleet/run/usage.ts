/**
 * Usage evidence and readiness: CloudWatch evidence of IMDSv1 calls per instance (and, optionally,
 * the guard's host evidence), and readiness to enforce IMDSv2.
 *
 *   measureReadiness(session, instances, opts, io)   -> { window, evidence, rows }
 *   runUsage(options, io, env)                       -> the `fleet usage` document
 */

import { ImdsguardError } from '../../errors.js';
import { createProgress } from '../../io/progress.js';
import type { DiscoverUsageSection, UsageDocument, UsageHostEvidence, UsageRow } from '../../report/usage.js';
import { sortUsageRows, USAGE_SCHEMA_VERSION } from '../../report/usage.js';
import type { InstanceRecord, Inventory, ScanFailure } from '../inventory/model.js';
import { assessFleet, countReadiness } from '../posture/readiness.js';
import { collectUsage, type UsageEvidence } from '../usage/collect.js';
import { type HostCaller, indexHostEvidence, loadHostEvidence } from '../usage/host-evidence.js';
import { hostSentence, hostStatus } from '../usage/host-join.js';
import { collectLogsEvidence, type LogsEvidence } from '../usage/logs-evidence.js';
import { isLogsSpec, parseLogsSpec } from '../usage/logs-query.js';
import type { UsageMode } from '../usage/queries.js';
import { USAGE_DEFAULTS, type UsageWindow, usageWindow } from '../usage/window.js';
import { printFailures, type RunIo } from './io.js';
import { collectWithProgress, INSTANCES_ONLY } from './scan.js';
import { type Env, type FleetRunOptions, type FleetSession, openSession } from './session.js';

/** How usage evidence is read (`--days`, `--metrics`, `--max-datapoints`, `--host-evidence`). */
export interface UsageOptions {
  /** Window, days (1..USAGE_DEFAULTS.maxDays). */
  days: number;
  /** auto: one series per instance; both; rejected: MetadataNoTokenRejected of enforced instances. */
  mode: UsageMode;
  /** GetMetricData MaxDatapoints per response; undefined: the API maximum. */
  maxDatapoints?: number | undefined;
  /**
   * Absolute paths of `imdsguard callers --json` files or directories of them, and at most one
   * `cloudwatch-logs:GROUP` (or `cloudwatch-logs:arn:...`): the guards' caller summary records.
   */
  hostEvidence?: readonly string[] | undefined;
  /** Rows per Logs Insights query (1..10,000; tests make it small to exercise the splits). */
  logsQueryLimit?: number | undefined;
  /** Clock (tests): epoch ms. */
  now?: (() => number) | undefined;
}

export const DEFAULT_USAGE_OPTIONS: UsageOptions = { days: USAGE_DEFAULTS.days, mode: 'auto' };

export interface Measured {
  window: UsageWindow;
  evidence: UsageEvidence;
  rows: UsageRow[];
  /** The CloudWatch Logs host evidence, when `cloudwatch-logs:` was given. */
  logs: LogsEvidence | null;
}

/**
 * Reads CloudWatch evidence for `instances` with the session's clients and decides readiness; joins
 * host evidence when given. Per-region CloudWatch failures are in evidence.failures (never thrown).
 */
export async function measureReadiness(
  session: FleetSession,
  instances: readonly InstanceRecord[],
  opts: UsageOptions & { concurrency?: number | undefined },
  io: RunIo,
): Promise<Measured> {
  const window = usageWindow((opts.now ?? Date.now)(), opts.days);
  const sources = opts.hostEvidence ?? [];
  const files = sources.filter((p) => !isLogsSpec(p));
  const specs = sources.filter(isLogsSpec).map(parseLogsSpec);
  if (specs.length > 1) {
    throw new ImdsguardError(
      'IMDSGUARD_E_HOST_EVIDENCE',
      'give at most one cloudwatch-logs: host evidence source',
      {
        hint: 'a central log group holds every account; otherwise one group name is read in every account and region',
      },
    );
  }
  const host = files.length > 0 ? indexHostEvidence(await loadHostEvidence(files, '/')) : null;
  const progress = createProgress(io.output, 'regions');
  const evidence = await collectUsage(session.factory, session.targets.accounts, instances, {
    window,
    mode: opts.mode,
    concurrency: opts.concurrency,
    maxDatapoints: opts.maxDatapoints,
    onProgress: (p) => progress.update({ ...p, instances: instances.length }),
  });
  progress.done();
  const spec = specs[0];
  let logs: LogsEvidence | null = null;
  if (spec) {
    const lp = createProgress(io.output, 'log queries');
    logs = await collectLogsEvidence(session.factory, session.targets, instances, spec, window, {
      concurrency: opts.concurrency,
      signal: io.signal,
      ...(opts.logsQueryLimit !== undefined ? { limit: opts.logsQueryLimit } : {}),
      onProgress: (p) => lp.update({ ...p, instances: instances.length }),
    });
    lp.done();
  }
  const rows: UsageRow[] = assessFleet(instances, evidence.series, window).map((r) => {
    const fromFiles = host ? (host(r)?.v1Callers ?? null) : null;
    const fromLogs = logs?.byInstance.get(`${r.accountId}|${r.region}|${r.instanceId}`)?.v1Callers ?? null;
    const callers: HostCaller[] | null =
      fromFiles === null && fromLogs === null ? null : [...(fromFiles ?? []), ...(fromLogs ?? [])];
    return { ...r, hostV1Callers: callers };
  });
  // Name the host processes (or say why there are none) of an instance that is not ready or broken.
  for (const r of rows) {
    if (r.readiness !== 'not-ready' && r.readiness !== 'broken') continue;
    const failure = logs?.failureFor(r)?.error?.message;
    const status = hostStatus(r.hostV1Callers, { used: logs !== null, failure });
    const sentence = hostSentence(status, r.hostV1Callers, failure);
    if (sentence !== null) r.detail += `; ${sentence}`;
  }
  return { window, evidence, rows: sortUsageRows(rows), logs };
}

export type UsageFailures = UsageDocument['failures'];

/** Inventory and CloudWatch failures, in one list. */
export function usageFailures(inv: Pick<Inventory, 'failures'>, evidence: UsageEvidence): UsageFailures {
  return [
    ...inv.failures.map((f: ScanFailure) => ({ ...f, source: 'inventory' as const })),
    ...evidence.failures.map((f) => ({ ...f, source: 'cloudwatch' as const, stage: 'metrics' as const })),
  ];
}

/** Failed Logs Insights queries, as usage failures (the run exits 1). */
export function logsFailures(m: Pick<Measured, 'logs' | 'rows'>): UsageFailures {
  if (!m.logs) return [];
  const spec = m.logs.spec;
  return m.logs.queries
    .filter((q) => q.status === 'failed')
    .map((q) => ({
      accountId: q.accountId,
      region: q.region,
      code: q.error?.code ?? 'IMDSGUARD_E_LOGS_QUERY',
      awsCode: q.error?.awsCode ?? null,
      message: `host evidence (${q.group}): ${q.error?.message ?? 'the query failed'}`,
      hint: null,
      instances: m.rows.filter(
        (r) => spec.kind === 'central' || (r.accountId === q.accountId && r.region === q.region),
      ).length,
      source: 'cloudwatch-logs' as const,
      stage: 'host-evidence' as const,
    }));
}

/** The `hostEvidence` section of the usage document: what was queried, what it cost, what it found. */
export function logsSection(logs: LogsEvidence, rows: readonly UsageRow[]): UsageHostEvidence {
  const blocked = rows.filter((r) => r.readiness === 'not-ready' || r.readiness === 'broken');
  const key = (r: UsageRow) => `${r.accountId}|${r.region}|${r.instanceId}`;
  return {
    source: `cloudwatch-logs:${logs.spec.kind === 'central' ? `arn:${logs.spec.partition}:logs:${logs.spec.region}:${logs.spec.accountId}:log-group:${logs.spec.group}` : logs.spec.group}`,
    layout: logs.spec.kind,
    queries: logs.queries,
    totals: {
      queries: logs.queries.reduce((n, q) => n + q.queries, 0),
      bytesScanned: logs.queries.reduce((n, q) => n + q.bytesScanned, 0),
      instancesWithRecords: rows.filter((r) => logs.byInstance.has(key(r))).length,
      notReadyWithCallers: blocked.filter((r) => (r.hostV1Callers?.length ?? 0) > 0).length,
      notReadyWithoutRecords: blocked.filter((r) => !logs.byInstance.has(key(r)) && !logs.failureFor(r))
        .length,
    },
  };
}

function printLogsSummary(h: UsageHostEvidence, io: RunIo): void {
  const mb = (h.totals.bytesScanned / 1e6).toFixed(h.totals.bytesScanned < 1e6 ? 3 : 1);
  io.output.write(
    `imdsguard: host evidence from ${h.source}: ${h.totals.queries} Logs Insights quer${h.totals.queries === 1 ? 'y' : 'ies'} in ${h.queries.length} account/region(s), ${mb} MB scanned; ` +
      `${h.totals.notReadyWithCallers} not-ready instance(s) with named IMDSv1 callers, ${h.totals.notReadyWithoutRecords} without guard records\n`,
  );
  for (const q of h.queries.filter((x) => x.truncated)) {
    io.output.write(
      `imdsguard: warning: ${q.accountId} ${q.region}: some caller rows may be missing (one instance's callers fill the query limit even over ${60} s)\n`,
    );
  }
}

/** Prints usage failures; true when there were any (the run exits 1). */
export function reportUsageFailures(failures: UsageFailures, io: RunIo): boolean {
  printFailures(io, failures, 'every other account and region was read');
  return failures.length > 0;
}

/** The window fields the usage documents carry (not the millisecond bounds). */
export function reportedWindow(w: UsageWindow): UsageDocument['window'] {
  return {
    days: w.days,
    start: w.start,
    end: w.end,
    periodSeconds: w.periodSeconds,
    periods: w.periods,
    periodsEnd: w.periodsEnd,
    tailPeriodSeconds: w.tailPeriodSeconds,
  };
}

/** The readiness section `fleet discover --usage` adds. */
export function discoverUsageSection(m: Measured): DiscoverUsageSection {
  return {
    window: reportedWindow(m.window),
    mode: m.evidence.mode,
    counts: countReadiness(m.rows),
    regionStats: m.evidence.regions,
    failures: m.evidence.failures,
  };
}

export interface UsageResult {
  document: UsageDocument;
  /** Some account, region or CloudWatch read failed (printed). */
  failed: boolean;
  stats: ReturnType<FleetSession['stats']>;
}

/**
 * `fleet usage`: the inventory's instances with their evidence and readiness. With mode `rejected`,
 * only enforced instances whose IMDSv1 calls are now refused (broken), counted among the enforced.
 */
export async function runUsage(
  fleet: FleetRunOptions,
  usage: UsageOptions,
  io: RunIo,
  env: Env,
): Promise<UsageResult> {
  const session = await openSession(fleet, env);
  try {
    // Failed scans are listed with the CloudWatch failures in the document (no all-credentials error).
    const inv = await collectWithProgress(session, io, {
      concurrency: fleet.concurrency,
      include: INSTANCES_ONLY,
    });
    const rejectedOnly = usage.mode === 'rejected';
    const m = await measureReadiness(
      session,
      inv.instances,
      { ...usage, concurrency: fleet.concurrency },
      io,
    );
    const rows = rejectedOnly ? m.rows.filter((r) => r.readiness === 'broken') : m.rows;
    const failures = [...usageFailures(inv, m.evidence), ...logsFailures(m)];
    const document: UsageDocument = {
      schemaVersion: USAGE_SCHEMA_VERSION,
      kind: 'imdsguard.fleet.usage',
      generatedAt: inv.generatedAt,
      window: reportedWindow(m.window),
      mode: m.evidence.mode,
      regions: inv.regions,
      accounts: inv.accounts.map((a) => a.accountId),
      // --rejected reads enforced instances only: count only those.
      counts: countReadiness(
        rejectedOnly ? m.rows.filter((r) => r.readiness === 'enforced' || r.readiness === 'broken') : m.rows,
      ),
      instances: rows,
      regionStats: m.evidence.regions,
      ...(m.logs ? { hostEvidence: logsSection(m.logs, m.rows) } : {}),
      failures,
      stats: session.stats(),
    };
    if (document.hostEvidence) printLogsSummary(document.hostEvidence, io);
    const failed = reportUsageFailures(failures, io);
    return { document, failed, stats: session.stats() };
  } finally {
    session.close();
  }
}
