/**
 * PURE: what the host evidence says about one instance, as a status and a sentence for its detail,
 * and the executables that block enforcement across the fleet (every not-ready instance
 * names its IMDSv1 processes; an instance with IMDSv1 calls but no guard records says so).
 */
import type { HostCaller } from './host-evidence.js';

/**
 * callers: the guard (or a file) named IMDSv1 callers; no-v1-caller: guard records exist and show
 * none; no-guard: the log group holds no record of the instance; unavailable: its query failed;
 * null: no host evidence was asked for this instance.
 */
export type HostStatus = 'callers' | 'no-v1-caller' | 'no-guard' | 'unavailable';

export const NO_GUARD_SENTENCE = 'no host evidence: guard not installed or not shipping';

/** Callers named in a detail sentence before "and N more". */
const NAMED = 3;

/** "/usr/bin/curl as app in pod web/api-1 (7 v1 call(s))". */
export function callerPhrase(c: HostCaller): string {
  const where =
    (c.user !== null ? ` as ${c.user}` : '') +
    (c.pod ? ` in pod ${c.pod}` : c.container !== null ? ` in container ${c.container.slice(0, 12)}` : '');
  return `${c.exe ?? '(unattributed)'}${where} (${c.v1Calls} v1 call(s))`;
}

export function hostStatus(
  callers: readonly HostCaller[] | null,
  logs: { used: boolean; failure?: string | undefined },
): HostStatus | null {
  if (callers !== null) return callers.length > 0 ? 'callers' : 'no-v1-caller';
  if (!logs.used) return null;
  return logs.failure !== undefined ? 'unavailable' : 'no-guard';
}

/** The sentence added to a not-ready or broken instance's detail; null: nothing to add. */
export function hostSentence(
  status: HostStatus | null,
  callers: readonly HostCaller[] | null,
  failure?: string,
): string | null {
  switch (status) {
    case 'callers': {
      const list = callers ?? [];
      const named = list.slice(0, NAMED).map(callerPhrase).join(', ');
      const more = list.length > NAMED ? `, and ${list.length - NAMED} more` : '';
      return `on the host: ${named}${more}`;
    }
    case 'no-v1-caller':
      return 'the guard recorded no IMDSv1 caller on the host (something calls around it?)';
    case 'no-guard':
      return NO_GUARD_SENTENCE;
    case 'unavailable':
      return `host evidence unavailable: ${failure ?? 'its query failed'}`;
    default:
      return null;
  }
}

/** One executable that blocks enforcement: the not-ready or broken instances it makes IMDSv1 calls on. */
export interface Blocker {
  exe: string;
  /** Instances it blocks. */
  instances: number;
  v1Calls: number;
  /** The first few instance ids (at most 10), for the report. */
  examples: string[];
}

/** Executables ranked by the number of not-ready (or broken) instances they make IMDSv1 calls on. */
export function rankBlockers(
  rows: ReadonlyArray<{ instanceId: string; readiness: string; hostV1Callers: readonly HostCaller[] | null }>,
): Blocker[] {
  const by = new Map<string, { ids: Set<string>; calls: number }>();
  for (const r of rows) {
    if (r.readiness !== 'not-ready' && r.readiness !== 'broken') continue;
    for (const c of r.hostV1Callers ?? []) {
      if (c.v1Calls <= 0) continue;
      const exe = c.exe ?? '(unattributed)';
      const b = by.get(exe) ?? { ids: new Set<string>(), calls: 0 };
      b.ids.add(r.instanceId);
      b.calls += c.v1Calls;
      by.set(exe, b);
    }
  }
  return [...by.entries()]
    .map(([exe, b]) => ({
      exe,
      instances: b.ids.size,
      v1Calls: b.calls,
      examples: [...b.ids].sort().slice(0, 10),
    }))
    .sort((a, b) => b.instances - a.instances || b.v1Calls - a.v1Calls || a.exe.localeCompare(b.exe));
}

/** The host evidence part of the fleet report (and its JSON). */
export interface HostEvidenceReport {
  /** What was read: `cloudwatch-logs:...` or the files. */
  source: string;
  /** Not-ready and broken instances, most IMDSv1 callers first (at most HOST_REPORT_LIMITS.instances). */
  instances: Array<{
    accountId: string;
    region: string;
    instanceId: string;
    name: string | null;
    readiness: string;
    status: HostStatus | null;
    callers: HostCaller[] | null;
    /** What the report says about it. */
    sentence: string;
  }>;
  instancesOmitted: number;
  /** Executables ranked by the instances they block (at most HOST_REPORT_LIMITS.blockers). */
  blockers: Blocker[];
  blockersOmitted: number;
  /** Logs Insights bytes scanned (0 for files). */
  bytesScanned: number;
}

export const HOST_REPORT_LIMITS = { instances: 2000, blockers: 200 } as const;

export interface HostRow {
  accountId: string;
  region: string;
  instanceId: string;
  name: string | null;
  readiness: string;
  hostV1Callers: HostCaller[] | null;
}

/** PURE: the report's host evidence section from the usage rows and what each query said. */
export function hostEvidenceReport(
  rows: readonly HostRow[],
  source: string,
  logs: { used: boolean; failureFor: (r: HostRow) => string | undefined; bytesScanned: number },
): HostEvidenceReport {
  const blocked = rows
    .filter((r) => r.readiness === 'not-ready' || r.readiness === 'broken')
    .map((r) => {
      const failure = logs.failureFor(r);
      const status = hostStatus(r.hostV1Callers, { used: logs.used, failure });
      return {
        accountId: r.accountId,
        region: r.region,
        instanceId: r.instanceId,
        name: r.name,
        readiness: r.readiness,
        status,
        callers: r.hostV1Callers,
        sentence: hostSentence(status, r.hostV1Callers, failure) ?? 'no host evidence file for this instance',
      };
    })
    .sort(
      (a, b) =>
        (b.callers?.length ?? -1) - (a.callers?.length ?? -1) ||
        a.accountId.localeCompare(b.accountId) ||
        a.region.localeCompare(b.region) ||
        a.instanceId.localeCompare(b.instanceId),
    );
  const blockers = rankBlockers(rows);
  return {
    source,
    instances: blocked.slice(0, HOST_REPORT_LIMITS.instances),
    instancesOmitted: Math.max(0, blocked.length - HOST_REPORT_LIMITS.instances),
    blockers: blockers.slice(0, HOST_REPORT_LIMITS.blockers),
    blockersOmitted: Math.max(0, blockers.length - HOST_REPORT_LIMITS.blockers),
    bytesScanned: logs.bytesScanned,
  };
}
