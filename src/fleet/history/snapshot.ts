/**
 * PURE: the summary of one fleet scan that the history keeps. Small on purpose (counts, never
 * instance lists): a history of years of daily scans stays a few megabytes.
 */
import type { Finding, Severity } from '../posture/findings.js';
import type { ReadinessCounts } from '../posture/readiness.js';
import type { PostureCounts, PostureSummary } from '../posture/summary.js';

export const SNAPSHOT_SCHEMA_VERSION = 1 as const;

/** The four posture counts a trend needs, for one slice (overall, one account, one region). */
export interface SnapshotCounts {
  instances: number;
  /** HttpTokens=required (endpoint enabled). */
  tokensRequired: number;
  /** HttpTokens=optional (endpoint enabled): IMDSv1 works. */
  tokensOptional: number;
  endpointDisabled: number;
  /** tokensRequired / instances, percent with one decimal (0 when there are no instances). */
  percentEnforced: number;
}

export interface FleetSnapshot {
  schemaVersion: typeof SNAPSHOT_SCHEMA_VERSION;
  /** ISO 8601: when the scan ran (the inventory's generatedAt). */
  time: string;
  /** What took it: "fleet discover" or "fleet report". */
  source: string;
  /** Account x region scans that failed or were partial: a trend point with failures may undercount. */
  failures: number;
  overall: SnapshotCounts;
  byAccount: Array<SnapshotCounts & { accountId: string }>;
  byRegion: Array<SnapshotCounts & { region: string }>;
  findings: Record<Severity, number>;
  /** Readiness counts when usage evidence was read in the same run, else null. */
  readiness: ReadinessCounts | null;
}

export function snapshotCounts(c: PostureCounts): SnapshotCounts {
  return {
    instances: c.instances,
    tokensRequired: c.tokensRequired,
    tokensOptional: c.tokensOptional,
    endpointDisabled: c.endpointDisabled,
    percentEnforced: c.percent.tokensRequired,
  };
}

export interface SnapshotInput {
  time: string;
  source: string;
  failures: number;
  summary: PostureSummary;
  /** The findings, or their counts per severity (a streamed scan keeps only those). */
  findings: readonly Pick<Finding, 'severity'>[] | Readonly<Record<Severity, number>>;
  readiness?: ReadinessCounts | null | undefined;
}

/** The snapshot of one scan. */
export function makeSnapshot(input: SnapshotInput): FleetSnapshot {
  const findings: Record<Severity, number> = { high: 0, medium: 0, low: 0, info: 0 };
  if (Array.isArray(input.findings)) {
    for (const f of input.findings as readonly Pick<Finding, 'severity'>[]) findings[f.severity] += 1;
  } else Object.assign(findings, input.findings);
  return {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    time: input.time,
    source: input.source,
    failures: input.failures,
    overall: snapshotCounts(input.summary.overall),
    byAccount: input.summary.byAccount.map((a) => ({ accountId: a.accountId, ...snapshotCounts(a) })),
    byRegion: input.summary.byRegion.map((r) => ({ region: r.region, ...snapshotCounts(r) })),
    findings,
    readiness: input.readiness ?? null,
  };
}
