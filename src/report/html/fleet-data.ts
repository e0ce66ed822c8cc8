/**
 * PURE: the fleet report document. `fleet report --format json` prints it as is, and the HTML
 * renderer draws exactly these numbers (and embeds this document), so the two always agree.
 */

import type { FleetSnapshot } from '../../fleet/history/snapshot.js';
import type { Inventory, RegionScan, ScanFailure, ScanStage } from '../../fleet/inventory/model.js';
import { countBySeverity, FINDINGS, type Finding, type Severity } from '../../fleet/posture/findings.js';
import {
  countReadiness,
  type KeyedReadiness,
  READINESS,
  type ReadinessCounts,
  readinessOfInventory,
} from '../../fleet/posture/readiness.js';
import type { PostureCounts, PostureSummary } from '../../fleet/posture/summary.js';
import type { HostEvidenceReport } from '../../fleet/usage/host-join.js';
import { usageWindow } from '../../fleet/usage/window.js';

export const FLEET_REPORT_SCHEMA_VERSION = 1 as const;

export const FLEET_REPORT_LIMITS = {
  /** Findings rows in the report (the table and the JSON); the rest are counted, not listed. */
  maxFindings: 5_000,
  /** Items listed per regression-source category. */
  maxRegressionItems: 500,
  /** Trend points drawn (the newest). */
  maxTrendPoints: 400,
} as const;

/** Counts of one slice (overall, an account or a region) as the report shows them. */
export interface SliceCounts {
  instances: number;
  /** HttpTokens=required, endpoint enabled. */
  enforced: number;
  /** HttpTokens=optional, endpoint enabled: IMDSv1 works. */
  v1Allowed: number;
  /** HttpEndpoint=disabled. */
  disabled: number;
  /** IMDSv1 allowed on an instance with an instance profile. */
  v1WithProfile: number;
  /** Percent of instances, one decimal. */
  percentEnforced: number;
  percentV1Allowed: number;
  percentDisabled: number;
  /** Account x region scans of this slice that could not be read: their instances are unknown, not 0. */
  scansFailed: number;
}

/** Each category, the findings it counts, and the scan stages whose failure leaves it unknown. */
export const REGRESSION_CATEGORIES = [
  {
    key: 'launch-templates',
    label: 'Launch templates',
    findings: ['template-default-imdsv1', 'template-latest-imdsv1', 'template-launch-refused'],
    stages: ['launch-templates', 'launch-template-versions'],
  },
  {
    key: 'auto-scaling-groups',
    label: 'Auto Scaling groups',
    findings: ['asg-launches-imdsv1', 'asg-launch-refused'],
    stages: ['auto-scaling-groups'],
  },
  {
    key: 'launch-configurations',
    label: 'Launch configurations',
    findings: ['launch-config-imdsv1', 'launch-config-launch-refused'],
    stages: ['launch-configurations'],
  },
  {
    key: 'account-defaults',
    label: 'Account defaults',
    findings: ['account-default-imdsv1'],
    stages: ['account-defaults'],
  },
  { key: 'images', label: 'AMIs', findings: ['image-no-imdsv2-support'], stages: ['images'] },
] as const satisfies ReadonlyArray<{
  key: string;
  label: string;
  findings: readonly string[];
  stages: readonly ScanStage[];
}>;
export type RegressionCategory = (typeof REGRESSION_CATEGORIES)[number]['key'];

export interface ReportFinding {
  id: string;
  severity: Severity;
  title: string;
  resourceType: string;
  resourceId: string;
  accountId: string;
  region: string;
  message: string;
}

export interface RegressionItem {
  resourceId: string;
  accountId: string;
  region: string;
  findingId: string;
  severity: Severity;
  message: string;
}

export interface TrendPoint {
  time: string;
  instances: number;
  enforced: number;
  v1Allowed: number;
  disabled: number;
  percentEnforced: number;
  /** v1Allowed / instances, percent with one decimal. */
  percentV1Allowed: number;
  /** Scan failures of that run (a point with failures may undercount). */
  failures: number;
  /** What recorded it: "fleet discover" or "fleet report". */
  source: string;
  /** This report's own scan. */
  current: boolean;
}

export interface FleetReportDocument {
  schemaVersion: typeof FLEET_REPORT_SCHEMA_VERSION;
  kind: 'imdsguard.fleet.report';
  /** ISO 8601: when the report was made. */
  generatedAt: string;
  /** ISO 8601: when the inventory was collected. */
  scannedAt: string;
  /** discovery: this run scanned; input: read from a saved `fleet discover --format json`. */
  source: 'discovery' | 'input';
  overview: SliceCounts & {
    accounts: number;
    regions: number;
    findings: number;
    findingsBySeverity: Record<Severity, number>;
    regressionSources: number;
    /** Categories of regression sources that could not be read somewhere (their count is a minimum). */
    regressionSourcesUnread: number;
    scanFailures: number;
  };
  byAccount: Array<SliceCounts & { accountId: string; name: string | null }>;
  byRegion: Array<SliceCounts & { region: string }>;
  readiness: {
    /** false: no usage evidence was read; IMDSv1 instances count as unknown. */
    measured: boolean;
    window: { days: number; start: string; end: string } | null;
    counts: ReadinessCounts;
    /** counts / total, percent with one decimal (0 when total is 0). */
    percent: ReadinessCounts;
    total: number;
  };
  findings: ReportFinding[];
  /** Findings left out of `findings` (beyond FLEET_REPORT_LIMITS.maxFindings). */
  findingsOmitted: number;
  regressionSources: Array<{
    key: RegressionCategory;
    label: string;
    /** Findings found; a minimum when `unread` > 0. */
    count: number;
    /** Account x region scans where this kind of resource could not be read: unknown there, not 0. */
    unread: number;
    items: RegressionItem[];
  }>;
  /**
   * Each scanned account and region's effective state: the HttpTokens default, account-level
   * enforcement (HttpTokensEnforced) and who manages them. `read: false`: the defaults could not be read.
   */
  regionDefaults: RegionDefaultsRow[];
  trend: TrendPoint[];
  failures: ScanFailure[];
  /** Host evidence (--usage --host-evidence): each not-ready instance's IMDSv1 callers; null: not read. */
  hostEvidence: HostEvidenceReport | null;
}

export interface RegionDefaultsRow {
  accountId: string;
  region: string;
  read: boolean;
  httpTokens: 'optional' | 'required' | null;
  httpTokensEnforced: 'enabled' | 'disabled' | null;
  managedBy: 'account' | 'declarative-policy' | null;
  exceptionMessage: string | null;
}

function regionDefaults(scans: readonly RegionScan[]): RegionDefaultsRow[] {
  return scans.map((s) => ({
    accountId: s.accountId,
    region: s.region,
    read: s.defaults !== null,
    httpTokens: s.defaults?.httpTokens ?? null,
    // A saved scan from before February 2026's fields has neither: not enforced, managed by the account.
    httpTokensEnforced: s.defaults?.httpTokensEnforced ?? null,
    managedBy: s.defaultsManagement?.managedBy ?? (s.defaults !== null ? 'account' : null),
    exceptionMessage: s.defaultsManagement?.exceptionMessage ?? null,
  }));
}

export function sliceCounts(c: PostureCounts, scansFailed = 0): SliceCounts {
  return {
    instances: c.instances,
    enforced: c.tokensRequired,
    v1Allowed: c.tokensOptional,
    disabled: c.endpointDisabled,
    v1WithProfile: c.imdsV1WithProfile,
    percentEnforced: c.percent.tokensRequired,
    percentV1Allowed: c.percent.tokensOptional,
    percentDisabled: c.percent.endpointDisabled,
    scansFailed,
  };
}

export interface FleetReportInput {
  inventory: Pick<Inventory, 'generatedAt' | 'regions' | 'accounts' | 'failures' | 'scans' | 'instances'>;
  summary: PostureSummary;
  findings: readonly Finding[];
  /** Readiness of every live instance. */
  /**
   * Measured readiness (usage evidence, live or a saved `fleet usage`); null: not measured. The report
   * judges every live instance of the inventory itself and takes a measured value only where it still
   * agrees with the inventory (posture/readiness.ts readinessOfInventory), so its readiness counts
   * partition the same instances as its posture counts.
   */
  readiness: Iterable<KeyedReadiness> | null;
  usageWindow?: { days: number; start: string; end: string } | null | undefined;
  history: readonly FleetSnapshot[];
  /** Host evidence joined to readiness (--host-evidence); null or absent: not read. */
  hostEvidence?: HostEvidenceReport | null | undefined;
  source: 'discovery' | 'input';
  /** ISO 8601 (the caller's clock). */
  now: string;
}

/** n / d in percent with one decimal, 0 when d is 0 (as the posture summary rounds). */
function pct1(n: number, d: number): number {
  return d === 0 ? 0 : Math.round((n / d) * 1000) / 10;
}

const SEVERITY_RANK: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

/**
 * The trend: every recorded scan and this report's own, oldest first, one point per scan (the same
 * scan recorded twice is drawn once), at most FLEET_REPORT_LIMITS.maxTrendPoints of the newest, this
 * report's own always among them.
 */
function trendOf(
  history: readonly FleetSnapshot[],
  summary: PostureSummary,
  current: { scannedAt: string; failures: number; source: string },
): TrendPoint[] {
  const points: TrendPoint[] = history.map((s) => ({
    time: s.time,
    instances: s.overall.instances,
    enforced: s.overall.tokensRequired,
    v1Allowed: s.overall.tokensOptional,
    disabled: s.overall.endpointDisabled,
    percentEnforced: s.overall.percentEnforced,
    percentV1Allowed: pct1(s.overall.tokensOptional, s.overall.instances),
    failures: s.failures,
    source: s.source,
    current: s.time === current.scannedAt,
  }));
  if (!points.some((p) => p.current)) {
    const o = summary.overall;
    points.push({
      time: current.scannedAt,
      instances: o.instances,
      enforced: o.tokensRequired,
      v1Allowed: o.tokensOptional,
      disabled: o.endpointDisabled,
      percentEnforced: o.percent.tokensRequired,
      percentV1Allowed: o.percent.tokensOptional,
      failures: current.failures,
      source: current.source,
      current: true,
    });
  }
  const byKey = new Map<string, TrendPoint>();
  for (const p of points.sort((a, b) => Date.parse(a.time) - Date.parse(b.time))) {
    const k = `${p.time}|${p.instances}|${p.enforced}|${p.v1Allowed}|${p.disabled}`;
    const seen = byKey.get(k);
    if (seen) seen.current ||= p.current;
    else byKey.set(k, p);
  }
  const unique = [...byKey.values()];
  const max = FLEET_REPORT_LIMITS.maxTrendPoints;
  if (unique.length <= max) return unique;
  const newest = unique.slice(-max);
  if (newest.some((p) => p.current)) return newest;
  // A report of an older saved scan: keep its point, drop the oldest of the others.
  const own = unique.filter((p) => p.current);
  return [...own, ...unique.filter((p) => !p.current).slice(-(max - own.length))].sort(
    (a, b) => Date.parse(a.time) - Date.parse(b.time),
  );
}

/** Account x region scans that failed outright, per account, per region, and in all. */
function failedScans(scans: readonly RegionScan[]) {
  const byAccount = new Map<string, number>();
  const byRegion = new Map<string, number>();
  let total = 0;
  for (const s of scans) {
    if (s.status !== 'failed') continue;
    total += 1;
    byAccount.set(s.accountId, (byAccount.get(s.accountId) ?? 0) + 1);
    byRegion.set(s.region, (byRegion.get(s.region) ?? 0) + 1);
  }
  return { byAccount, byRegion, total };
}

/** The account x region scans where resources of these stages could not be read. */
function unreadScans(
  scans: readonly RegionScan[],
  failures: readonly ScanFailure[],
  stages: readonly ScanStage[],
): number {
  const unread = new Set<string>();
  for (const s of scans) if (s.status === 'failed') unread.add(`${s.accountId}/${s.region}`);
  for (const f of failures) {
    if (f.accountId !== null && f.region !== null && stages.includes(f.stage)) {
      unread.add(`${f.accountId}/${f.region}`);
    }
  }
  return unread.size;
}

export function buildFleetReport(input: FleetReportInput): FleetReportDocument {
  const { summary, inventory } = input;
  const names = new Map(inventory.accounts.map((a) => [a.accountId, a.name]));
  const sorted = [...input.findings].sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      a.accountId.localeCompare(b.accountId) ||
      a.region.localeCompare(b.region) ||
      a.id.localeCompare(b.id) ||
      a.resourceId.localeCompare(b.resourceId),
  );
  const findings: ReportFinding[] = sorted.slice(0, FLEET_REPORT_LIMITS.maxFindings).map((f) => ({
    id: f.id,
    severity: f.severity,
    title: FINDINGS[f.id].title,
    resourceType: f.resourceType,
    resourceId: f.resourceId,
    accountId: f.accountId,
    region: f.region,
    message: f.message,
  }));
  const regressionSources = REGRESSION_CATEGORIES.map((cat) => {
    const ids = new Set<string>(cat.findings);
    const all = sorted.filter((f) => ids.has(f.id));
    return {
      key: cat.key,
      label: cat.label,
      count: all.length,
      unread: unreadScans(inventory.scans, inventory.failures, cat.stages),
      items: all.slice(0, FLEET_REPORT_LIMITS.maxRegressionItems).map((f) => ({
        resourceId: f.resourceId,
        accountId: f.accountId,
        region: f.region,
        findingId: f.id,
        severity: f.severity,
        message: f.message,
      })),
    };
  });
  const rows = readinessOfInventory(
    inventory.instances,
    input.readiness ?? [],
    usageWindow(Date.parse(inventory.generatedAt) || Date.parse(input.now)),
  );
  const counts = countReadiness(rows);
  const total = rows.length;
  const scanFailures = inventory.failures.length;
  const failed = failedScans(inventory.scans);
  return {
    schemaVersion: FLEET_REPORT_SCHEMA_VERSION,
    kind: 'imdsguard.fleet.report',
    generatedAt: input.now,
    scannedAt: inventory.generatedAt,
    source: input.source,
    overview: {
      ...sliceCounts(summary.overall, failed.total),
      accounts: summary.byAccount.length,
      regions: summary.byRegion.length,
      findings: input.findings.length,
      findingsBySeverity: countBySeverity(input.findings as Finding[]),
      regressionSources: regressionSources.reduce((n, c) => n + c.count, 0),
      regressionSourcesUnread: regressionSources.filter((c) => c.unread > 0).length,
      scanFailures,
    },
    byAccount: summary.byAccount.map((a) => ({
      accountId: a.accountId,
      name: names.get(a.accountId) ?? null,
      ...sliceCounts(a, failed.byAccount.get(a.accountId) ?? 0),
    })),
    byRegion: summary.byRegion.map((r) => ({
      region: r.region,
      ...sliceCounts(r, failed.byRegion.get(r.region) ?? 0),
    })),
    readiness: {
      measured: input.readiness !== null,
      window: input.usageWindow ?? null,
      counts,
      percent: Object.fromEntries(READINESS.map((r) => [r, pct1(counts[r], total)])) as ReadinessCounts,
      total,
    },
    findings,
    findingsOmitted: input.findings.length - findings.length,
    regressionSources,
    regionDefaults: regionDefaults(inventory.scans),
    trend: trendOf(input.history, summary, {
      scannedAt: inventory.generatedAt,
      failures: scanFailures,
      source: input.source === 'discovery' ? 'fleet report' : 'saved scan (--input)',
    }),
    failures: inventory.failures,
    hostEvidence: input.hostEvidence ?? null,
  };
}
