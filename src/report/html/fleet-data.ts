/**
 * PURE: the fleet report document. `fleet report --format json` prints it as is, and the HTML
 * renderer draws exactly these numbers (and embeds this document), so the two always agree.
 */

import type { FleetSnapshot } from '../../fleet/history/snapshot.js';
import type { Inventory, ScanFailure } from '../../fleet/inventory/model.js';
import { countBySeverity, FINDINGS, type Finding, type Severity } from '../../fleet/posture/findings.js';
import { READINESS, type Readiness, type ReadinessCounts } from '../../fleet/posture/readiness.js';
import type { PostureCounts, PostureSummary } from '../../fleet/posture/summary.js';

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
}

export const REGRESSION_CATEGORIES = [
  {
    key: 'launch-templates',
    label: 'Launch templates',
    findings: ['template-default-imdsv1', 'template-latest-imdsv1'],
  },
  { key: 'auto-scaling-groups', label: 'Auto Scaling groups', findings: ['asg-launches-imdsv1'] },
  { key: 'launch-configurations', label: 'Launch configurations', findings: ['launch-config-imdsv1'] },
  { key: 'account-defaults', label: 'Account defaults', findings: ['account-default-imdsv1'] },
  { key: 'images', label: 'AMIs', findings: ['image-no-imdsv2-support'] },
] as const;
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
    count: number;
    items: RegressionItem[];
  }>;
  trend: TrendPoint[];
  failures: ScanFailure[];
}

export function sliceCounts(c: PostureCounts): SliceCounts {
  return {
    instances: c.instances,
    enforced: c.tokensRequired,
    v1Allowed: c.tokensOptional,
    disabled: c.endpointDisabled,
    v1WithProfile: c.imdsV1WithProfile,
    percentEnforced: c.percent.tokensRequired,
    percentV1Allowed: c.percent.tokensOptional,
    percentDisabled: c.percent.endpointDisabled,
  };
}

export interface FleetReportInput {
  inventory: Pick<Inventory, 'generatedAt' | 'regions' | 'accounts' | 'failures'>;
  summary: PostureSummary;
  findings: readonly Finding[];
  /** Readiness of every live instance. */
  readiness: Iterable<{ readiness: Readiness }>;
  /** Whether the readiness rows come from usage evidence. */
  readinessMeasured: boolean;
  usageWindow?: { days: number; start: string; end: string } | null | undefined;
  history: readonly FleetSnapshot[];
  source: 'discovery' | 'input';
  /** ISO 8601 (the caller's clock). */
  now: string;
}

/** n / d in percent with one decimal, 0 when d is 0 (as the posture summary rounds). */
function pct1(n: number, d: number): number {
  return d === 0 ? 0 : Math.round((n / d) * 1000) / 10;
}

const SEVERITY_RANK: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

function trendOf(
  history: readonly FleetSnapshot[],
  summary: PostureSummary,
  scannedAt: string,
  failures: number,
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
    current: s.time === scannedAt,
  }));
  if (!points.some((p) => p.current)) {
    const o = summary.overall;
    points.push({
      time: scannedAt,
      instances: o.instances,
      enforced: o.tokensRequired,
      v1Allowed: o.tokensOptional,
      disabled: o.endpointDisabled,
      percentEnforced: o.percent.tokensRequired,
      percentV1Allowed: o.percent.tokensOptional,
      failures,
      current: true,
    });
  }
  // The same scan recorded twice (re-runs of one input) is drawn once.
  const seen = new Set<string>();
  const unique = points
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
    .filter((p) => {
      const k = `${p.time}|${p.instances}|${p.enforced}|${p.v1Allowed}|${p.disabled}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  return unique.slice(-FLEET_REPORT_LIMITS.maxTrendPoints);
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
  const counts = Object.fromEntries(READINESS.map((r) => [r, 0])) as ReadinessCounts;
  let total = 0;
  for (const r of input.readiness) {
    counts[r.readiness] += 1;
    total += 1;
  }
  const scanFailures = inventory.failures.length;
  return {
    schemaVersion: FLEET_REPORT_SCHEMA_VERSION,
    kind: 'imdsguard.fleet.report',
    generatedAt: input.now,
    scannedAt: inventory.generatedAt,
    source: input.source,
    overview: {
      ...sliceCounts(summary.overall),
      accounts: summary.byAccount.length,
      regions: summary.byRegion.length,
      findings: input.findings.length,
      findingsBySeverity: countBySeverity(input.findings as Finding[]),
      regressionSources: regressionSources.reduce((n, c) => n + c.count, 0),
      scanFailures,
    },
    byAccount: summary.byAccount.map((a) => ({
      accountId: a.accountId,
      name: names.get(a.accountId) ?? null,
      ...sliceCounts(a),
    })),
    byRegion: summary.byRegion.map((r) => ({ region: r.region, ...sliceCounts(r) })),
    readiness: {
      measured: input.readinessMeasured,
      window: input.usageWindow ?? null,
      counts,
      percent: Object.fromEntries(READINESS.map((r) => [r, pct1(counts[r], total)])) as ReadinessCounts,
      total,
    },
    findings,
    findingsOmitted: input.findings.length - findings.length,
    regressionSources,
    trend: trendOf(input.history, summary, inventory.generatedAt, scanFailures),
    failures: inventory.failures,
  };
}
