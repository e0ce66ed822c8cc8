/**
 * PURE: host evidence from the guards' caller summary records in CloudWatch Logs. What
 * `--host-evidence cloudwatch-logs:...` names, the one Logs Insights query the tool sends (and its
 * narrower forms when the results do not fit), and how result rows become each instance's callers.
 * The records are documented in docs/events.md ("Caller summary records"); the I/O is in
 * logs-insights.ts.
 */
import { ImdsguardError } from '../../errors.js';
import type { HostCaller } from './host-evidence.js';

export const LOGS_SPEC_PREFIX = 'cloudwatch-logs:';

/** Limits and defaults, with units. */
export const LOGS_QUERY_DEFAULTS = {
  /** Rows per query (StartQuery `limit`; the service's maximum is 10,000). */
  limit: 10_000,
  /** Queries in flight per account (the service allows 30 per account, dashboards included). */
  perAccount: 4,
  /** Longest a query may run before it is stopped, ms (the service stops queries at 60 minutes). */
  timeoutMs: 15 * 60_000,
  /** First and longest pause between GetQueryResults polls, ms. */
  pollInitialMs: 250,
  pollMaxMs: 5_000,
  /** First and longest pause before StartQuery again after LimitExceededException, ms. */
  limitRetryInitialMs: 1_000,
  limitRetryMaxMs: 30_000,
  /** Longest wait for a query slot (LimitExceededException) before giving up, ms. */
  limitWaitMs: 10 * 60_000,
  /** Queries per account and region, splits included, before giving up. */
  maxQueries: 1_000,
  /** The shortest time range a truncated result is split into, seconds. */
  minRangeSeconds: 60,
} as const;

/** Where the records are: the same group in every account and region, or one central group. */
export type LogsSpec =
  | { kind: 'per-account'; group: string }
  | { kind: 'central'; group: string; accountId: string; region: string; partition: string };

const GROUP_RE = /^[.\-_/#A-Za-z0-9]{1,512}$/;
const ARN_RE = /^arn:(aws[a-z-]*):logs:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):(\d{12}):log-group:([^:*]+?)(?::\*)?$/;

export function isLogsSpec(s: string): boolean {
  return s.startsWith(LOGS_SPEC_PREFIX);
}

/**
 * `cloudwatch-logs:GROUP` (that group in every account and region of the run), or
 * `cloudwatch-logs:arn:aws:logs:REGION:ACCOUNT:log-group:GROUP` (one central group). Throws
 * IMDSGUARD_E_HOST_EVIDENCE naming what is wrong.
 */
export function parseLogsSpec(s: string): LogsSpec {
  const rest = s.slice(LOGS_SPEC_PREFIX.length);
  const bad = (why: string) =>
    new ImdsguardError('IMDSGUARD_E_HOST_EVIDENCE', `--host-evidence ${s}: ${why}`, {
      hint: 'cloudwatch-logs:LOG_GROUP, or cloudwatch-logs:arn:aws:logs:REGION:ACCOUNT:log-group:LOG_GROUP for one central group',
    });
  if (rest.startsWith('arn:')) {
    const m = ARN_RE.exec(rest);
    if (!m) throw bad('not a log group ARN');
    const group = m[4] as string;
    if (!GROUP_RE.test(group)) throw bad(`"${group}" is not a log group name`);
    return {
      kind: 'central',
      partition: m[1] as string,
      region: m[2] as string,
      accountId: m[3] as string,
      group,
    };
  }
  if (!GROUP_RE.test(rest)) throw bad(`"${rest}" is not a log group name`);
  return { kind: 'per-account', group: rest };
}

/** Hex digits an instance id is made of after `i-`. */
const HEX = '0123456789abcdef';
/** Longest instance id prefix a query narrows to (`i-` and 17 hex digits). */
export const MAX_PREFIX_LENGTH = 19;

/**
 * The query. Every caller record in the range is summed per instance, version and caller; `prefix`
 * (`i-0a`, ...) narrows it to the instances whose id starts so, when the unnarrowed results did not
 * fit. The fake CloudWatch Logs in test/support/fake-aws/logs.ts understands exactly this text.
 */
export function callersQuery(prefix = ''): string {
  if (prefix !== '' && !/^i-[0-9a-f]*$/.test(prefix)) throw new Error(`bad instance id prefix ${prefix}`);
  const narrow = prefix === '' ? '' : ` and instanceId like /^${prefix}/`;
  return (
    `filter kind = "callers"${narrow}\n` +
    '| stats sum(calls) as calls, max(lastSeenMs) as lastSeenMs by instanceId, accountId, region, version, exe, user, container, pod'
  );
}

/**
 * The narrower prefixes of a prefix whose results did not fit, keeping only those that start one of
 * the `wanted` instance ids (the inventory's: records of other instances are not needed). Empty: it
 * cannot be narrowed.
 */
export function narrowerPrefixes(prefix: string, wanted: readonly string[]): string[] {
  const p = prefix === '' ? 'i-' : prefix;
  if (p.length >= MAX_PREFIX_LENGTH) return [];
  return [...HEX].map((h) => `${p}${h}`).filter((c) => wanted.some((id) => id.startsWith(c)));
}

/** One result row of the query. */
export interface CallerRow {
  instanceId: string;
  accountId: string;
  region: string;
  version: string;
  exe: string;
  user: string;
  container: string;
  pod: string;
  calls: number;
  lastSeenMs: number;
}

/** GetQueryResults rows ([{field, value}]) -> CallerRow; rows missing the instance are skipped. */
export function parseResultRows(
  results: ReadonlyArray<ReadonlyArray<{ field?: string | undefined; value?: string | undefined }>>,
): CallerRow[] {
  const out: CallerRow[] = [];
  for (const r of results) {
    const f = new Map<string, string>();
    for (const c of r) if (c.field !== undefined && c.value !== undefined) f.set(c.field, c.value);
    const instanceId = f.get('instanceId');
    if (!instanceId || !/^i-[0-9a-f]+$/.test(instanceId)) continue;
    const num = (k: string) => {
      const n = Number(f.get(k));
      return Number.isFinite(n) && n >= 0 ? n : 0;
    };
    out.push({
      instanceId,
      accountId: f.get('accountId') ?? '',
      region: f.get('region') ?? '',
      version: f.get('version') ?? '',
      exe: f.get('exe') ?? '-',
      user: f.get('user') ?? '-',
      container: f.get('container') ?? '-',
      pod: f.get('pod') ?? '-',
      calls: num('calls'),
      lastSeenMs: num('lastSeenMs'),
    });
  }
  return out;
}

function rowKey(r: CallerRow): string {
  return [r.accountId, r.region, r.instanceId, r.version, r.exe, r.user, r.container, r.pod].join('\n');
}

/** Rows of two time ranges as one: calls add up, the latest lastSeenMs wins. */
export function mergeRows(a: readonly CallerRow[], b: readonly CallerRow[]): CallerRow[] {
  const out = new Map<string, CallerRow>();
  for (const r of [...a, ...b]) {
    const k = rowKey(r);
    const prev = out.get(k);
    if (!prev) out.set(k, { ...r });
    else {
      prev.calls += r.calls;
      prev.lastSeenMs = Math.max(prev.lastSeenMs, r.lastSeenMs);
    }
  }
  return [...out.values()];
}

/** What the guard records say about one instance. */
export interface LogsHostEvidence {
  /** Its IMDSv1 callers, most calls first (empty: the guard ships and saw no IMDSv1 call). */
  v1Callers: HostCaller[];
}

const orNull = (s: string): string | null => (s === '-' || s === '' ? null : s);

/** `account|region|instance` -> what the records say; an instance with no record is absent. */
export function hostEvidenceFromRows(rows: readonly CallerRow[]): Map<string, LogsHostEvidence> {
  const byInstance = new Map<string, Map<string, HostCaller>>();
  for (const r of rows) {
    const ik = `${r.accountId}|${r.region}|${r.instanceId}`;
    let callers = byInstance.get(ik);
    if (!callers) {
      callers = new Map();
      byInstance.set(ik, callers);
    }
    if (r.version !== 'v1' && r.version !== 'v2') continue; // the heartbeat: present, no caller
    const ck = [r.exe, r.user, r.container, r.pod].join('\n');
    let c = callers.get(ck);
    if (!c) {
      c = {
        exe: orNull(r.exe),
        user: orNull(r.user),
        container: orNull(r.container),
        pod: orNull(r.pod),
        v1Calls: 0,
        v2Calls: 0,
        lastSeen: null,
      };
      callers.set(ck, c);
    }
    if (r.version === 'v1') {
      c.v1Calls += r.calls;
      const seen = r.lastSeenMs > 0 ? new Date(r.lastSeenMs).toISOString() : null;
      if (seen !== null && (c.lastSeen === null || seen > c.lastSeen)) c.lastSeen = seen;
    } else c.v2Calls += r.calls;
  }
  const out = new Map<string, LogsHostEvidence>();
  for (const [ik, callers] of byInstance) {
    out.set(ik, {
      v1Callers: [...callers.values()]
        .filter((c) => c.v1Calls > 0)
        .sort((a, b) => b.v1Calls - a.v1Calls || (a.exe ?? '').localeCompare(b.exe ?? '')),
    });
  }
  return out;
}
