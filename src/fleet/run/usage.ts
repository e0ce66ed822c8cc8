/**
 * Usage evidence and readiness: CloudWatch evidence of IMDSv1 calls per instance (and, optionally,
 * the guard's host evidence), and readiness to enforce IMDSv2.
 *
 *   measureReadiness(session, instances, opts, io)   -> { window, evidence, rows }
 *   runUsage(options, io, env)                       -> the `fleet usage` document
 */

import { createProgress } from '../../io/progress.js';
import type { DiscoverUsageSection, UsageDocument, UsageRow } from '../../report/usage.js';
import { sortUsageRows, USAGE_SCHEMA_VERSION } from '../../report/usage.js';
import type { InstanceRecord, Inventory, ScanFailure } from '../inventory/model.js';
import { assessFleet, countReadiness } from '../posture/readiness.js';
import { collectUsage, type UsageEvidence } from '../usage/collect.js';
import { indexHostEvidence, loadHostEvidence } from '../usage/host-evidence.js';
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
  /** Absolute paths of `imdsguard callers --json` files or directories of them. */
  hostEvidence?: readonly string[] | undefined;
  /** Clock (tests): epoch ms. */
  now?: (() => number) | undefined;
}

export const DEFAULT_USAGE_OPTIONS: UsageOptions = { days: USAGE_DEFAULTS.days, mode: 'auto' };

export interface Measured {
  window: UsageWindow;
  evidence: UsageEvidence;
  rows: UsageRow[];
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
  const host =
    opts.hostEvidence && opts.hostEvidence.length > 0
      ? indexHostEvidence(await loadHostEvidence(opts.hostEvidence, '/'))
      : null;
  const progress = createProgress(io.output, 'regions');
  const evidence = await collectUsage(session.factory, session.targets.accounts, instances, {
    window,
    mode: opts.mode,
    concurrency: opts.concurrency,
    maxDatapoints: opts.maxDatapoints,
    onProgress: (p) => progress.update({ ...p, instances: instances.length }),
  });
  progress.done();
  const rows: UsageRow[] = assessFleet(instances, evidence.series, window).map((r) => ({
    ...r,
    hostV1Callers: host ? (host(r)?.v1Callers ?? null) : null,
  }));
  // Name the host process in the detail of an instance that is not ready or broken.
  for (const r of rows) {
    const top = r.hostV1Callers?.[0];
    if (top && (r.readiness === 'not-ready' || r.readiness === 'broken')) {
      r.detail += `; on the host: ${top.exe ?? '(unattributed)'}${top.user !== null ? ` as ${top.user}` : ''} (${top.v1Calls} v1 call(s))`;
    }
  }
  return { window, evidence, rows: sortUsageRows(rows) };
}

export type UsageFailures = UsageDocument['failures'];

/** Inventory and CloudWatch failures, in one list. */
export function usageFailures(inv: Pick<Inventory, 'failures'>, evidence: UsageEvidence): UsageFailures {
  return [
    ...inv.failures.map((f: ScanFailure) => ({ ...f, source: 'inventory' as const })),
    ...evidence.failures.map((f) => ({ ...f, source: 'cloudwatch' as const, stage: 'metrics' as const })),
  ];
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
    const failures = usageFailures(inv, m.evidence);
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
      failures,
      stats: session.stats(),
    };
    const failed = reportUsageFailures(failures, io);
    return { document, failed, stats: session.stats() };
  } finally {
    session.close();
  }
}
