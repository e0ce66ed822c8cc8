/**
 * PURE: the host report document, folded from guard events one at a time (bounded memory whatever
 * the store holds). `imdsguard report --format json` prints it as is; the HTML draws exactly these
 * numbers and embeds this document.
 *
 * No secrets: request rows carry the path, method, version, rule and the caller's exe, user and pid,
 * never the command line, headers, tokens or bodies.
 */
import { CallerAggregator, type CallerSummary } from '../../guard/callers/summarize.js';
import type { GuardEvent } from '../../guard/events/types.js';
import { isHeaderAllowedSecretRead } from '../../guard/policy/header-reads.js';

export const HOST_REPORT_SCHEMA_VERSION = 1 as const;

export const HOST_REPORT_LIMITS = {
  /** Rows in "top callers". */
  topCallers: 20,
  /** Rows in "IMDSv1 callers". */
  v1Callers: 200,
  /** Denied or alerted requests listed (the newest); all are counted. */
  requests: 500,
  /** Credential and user-data reads allowed on a header alone listed (the newest); all are counted. */
  headerReads: 200,
  /** Most buckets in the timeline (the bucket size is chosen to stay under it). */
  maxBuckets: 120,
  /** Distinct host names remembered. */
  hosts: 10,
} as const;

/** Bucket sizes the timeline chooses from, seconds. */
export const BUCKET_SECONDS = [60, 300, 900, 3600, 21_600, 86_400, 604_800] as const;

export interface RequestRow {
  time: string;
  decision: GuardEvent['decision'];
  action: GuardEvent['action'];
  alert: boolean;
  rule: string;
  method: string;
  path: string;
  version: string;
  status: number;
  exe: string | null;
  user: string | null;
  pid: number | null;
  client: string;
  reason: string;
}

export interface HostReportDocument {
  schemaVersion: typeof HOST_REPORT_SCHEMA_VERSION;
  kind: 'imdsguard.host.report';
  generatedAt: string;
  /** Host names found in the events. */
  hosts: string[];
  window: { since: string | null; until: string };
  totals: {
    events: number;
    allowed: number;
    denied: number;
    alerted: number;
    v1: number;
    v2: number;
    token: number;
    unknown: number;
    forwarded: number;
    refused: number;
    flagged: number;
    trapped: number;
    errors: number;
    callers: number;
    v1Callers: number;
    /** Tokenless credential or user-data reads allowed on a User-Agent or Metadata-Flavor header alone. */
    headerReads: number;
  };
  timeline: { bucketSeconds: number; buckets: Array<{ start: string; allow: number; deny: number }> };
  topCallers: CallerSummary[];
  v1Callers: CallerSummary[];
  /** Requests denied or alerted: the newest `rows` (newest first), and how many there were. */
  requests: { total: number; rows: RequestRow[] };
  /**
   * Tokenless reads of credentials or user-data allowed only by a User-Agent prefix or
   * Metadata-Flavor: Amazon (any process can send them): the newest `rows` (newest first), and how
   * many there were.
   */
  headerReads: { total: number; rows: RequestRow[] };
}

export function chooseBucketSeconds(spanMs: number): number {
  for (const s of BUCKET_SECONDS) {
    if (spanMs / (s * 1000) <= HOST_REPORT_LIMITS.maxBuckets) return s;
  }
  return BUCKET_SECONDS[BUCKET_SECONDS.length - 1] as number;
}

export interface HostReportOptions {
  /** Epoch ms: the report's end (events after it fall in the last bucket). */
  nowMs: number;
  /** Epoch ms: events before it are left out; undefined: from the first event. */
  sinceMs?: number | undefined;
}

/**
 * Folds events (oldest first, as readEventsFromStore yields them) into the report. Events out of
 * order are still counted; the timeline starts at sinceMs, else at the first event seen.
 */
export class HostReportBuilder {
  private readonly opts: HostReportOptions;
  private readonly callers: CallerAggregator;
  private readonly totals: HostReportDocument['totals'] = {
    events: 0,
    allowed: 0,
    denied: 0,
    alerted: 0,
    v1: 0,
    v2: 0,
    token: 0,
    unknown: 0,
    forwarded: 0,
    refused: 0,
    flagged: 0,
    trapped: 0,
    errors: 0,
    callers: 0,
    v1Callers: 0,
    headerReads: 0,
  };
  private startMs: number | undefined;
  private bucketMs = 0;
  private readonly buckets = new Map<number, { allow: number; deny: number }>();
  private readonly hosts = new Set<string>();
  private recent: RequestRow[] = [];
  private requestsTotal = 0;
  private headerReads: RequestRow[] = [];

  constructor(opts: HostReportOptions) {
    this.opts = opts;
    this.callers = new CallerAggregator(opts.sinceMs !== undefined ? { sinceMs: opts.sinceMs } : {});
    if (opts.sinceMs !== undefined) this.setStart(opts.sinceMs);
  }

  private setStart(ms: number): void {
    const bucketS = chooseBucketSeconds(Math.max(1, this.opts.nowMs - ms));
    this.bucketMs = bucketS * 1000;
    this.startMs = Math.floor(ms / this.bucketMs) * this.bucketMs;
  }

  add(e: GuardEvent): void {
    const ms = Date.parse(e.time);
    if (!Number.isFinite(ms)) return;
    if (this.opts.sinceMs !== undefined && ms < this.opts.sinceMs) return;
    if (this.startMs === undefined) this.setStart(ms);
    this.callers.add(e);
    const t = this.totals;
    t.events += 1;
    if (e.decision === 'deny') t.denied += 1;
    else t.allowed += 1;
    if (e.alert) t.alerted += 1;
    switch (e.request.version) {
      case 'v1':
        t.v1 += 1;
        break;
      case 'v2':
        t.v2 += 1;
        break;
      case 'token':
        t.token += 1;
        break;
      default:
        t.unknown += 1;
    }
    switch (e.action) {
      case 'forwarded':
        t.forwarded += 1;
        break;
      case 'refused':
        t.refused += 1;
        break;
      case 'flagged':
        t.flagged += 1;
        break;
      case 'trapped':
        t.trapped += 1;
        break;
      default:
        t.errors += 1;
    }
    if (this.hosts.size < HOST_REPORT_LIMITS.hosts) this.hosts.add(e.host);
    const start = this.startMs as number;
    const lastIdx = Math.max(0, Math.floor((this.opts.nowMs - start) / this.bucketMs));
    const idx = Math.min(lastIdx, Math.max(0, Math.floor((ms - start) / this.bucketMs)));
    const b = this.buckets.get(idx) ?? { allow: 0, deny: 0 };
    if (e.decision === 'deny') b.deny += 1;
    else b.allow += 1;
    this.buckets.set(idx, b);
    if (isHeaderAllowedSecretRead(e)) {
      t.headerReads += 1;
      this.headerReads.push(requestRow(e));
      if (this.headerReads.length > HOST_REPORT_LIMITS.headerReads * 2) {
        this.headerReads = newest(this.headerReads, HOST_REPORT_LIMITS.headerReads);
      }
    }
    if (e.decision === 'deny' || e.alert) {
      this.requestsTotal += 1;
      this.recent.push(requestRow(e));
      if (this.recent.length > HOST_REPORT_LIMITS.requests * 2) {
        this.recent = newest(this.recent, HOST_REPORT_LIMITS.requests);
      }
    }
  }

  result(generatedAt: string): HostReportDocument {
    const callers = this.callers.result();
    const v1 = callers.filter((c) => c.v1 > 0);
    this.totals.callers = callers.length;
    this.totals.v1Callers = v1.length;
    const buckets: HostReportDocument['timeline']['buckets'] = [];
    if (this.startMs !== undefined) {
      const start = this.startMs;
      const last = Math.max(0, Math.floor((this.opts.nowMs - start) / this.bucketMs));
      for (let k = 0; k <= last; k++) {
        const b = this.buckets.get(k) ?? { allow: 0, deny: 0 };
        buckets.push({
          start: new Date(start + k * this.bucketMs).toISOString(),
          allow: b.allow,
          deny: b.deny,
        });
      }
    }
    const top = [...callers]
      .sort((a, b) => b.total - a.total || a.key.localeCompare(b.key))
      .slice(0, HOST_REPORT_LIMITS.topCallers);
    return {
      schemaVersion: HOST_REPORT_SCHEMA_VERSION,
      kind: 'imdsguard.host.report',
      generatedAt,
      hosts: [...this.hosts].sort(),
      window: {
        since: this.opts.sinceMs !== undefined ? new Date(this.opts.sinceMs).toISOString() : null,
        until: new Date(this.opts.nowMs).toISOString(),
      },
      totals: { ...this.totals },
      timeline: { bucketSeconds: this.bucketMs / 1000, buckets },
      topCallers: top,
      v1Callers: v1.slice(0, HOST_REPORT_LIMITS.v1Callers),
      requests: {
        total: this.requestsTotal,
        rows: newest(this.recent, HOST_REPORT_LIMITS.requests).reverse(),
      },
      headerReads: {
        total: this.totals.headerReads,
        rows: newest(this.headerReads, HOST_REPORT_LIMITS.headerReads).reverse(),
      },
    };
  }
}

/** The newest n rows, oldest first. */
function newest(rows: RequestRow[], n: number): RequestRow[] {
  const sorted = [...rows].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  return sorted.slice(Math.max(0, sorted.length - n));
}

function requestRow(e: GuardEvent): RequestRow {
  return {
    time: e.time,
    decision: e.decision,
    action: e.action,
    alert: e.alert,
    rule: e.rule,
    method: e.request.method,
    path: e.request.path,
    version: e.request.version,
    status: e.status,
    exe: e.caller?.exe ?? null,
    user: e.caller?.user ?? (e.caller?.uid !== undefined ? String(e.caller.uid) : null),
    pid: e.caller?.pid ?? null,
    client: `${e.request.client.address}:${e.request.client.port}`,
    reason: e.reason,
  };
}

/** The whole report from an iterable of events. */
export async function buildHostReport(
  events: AsyncIterable<GuardEvent> | Iterable<GuardEvent>,
  opts: HostReportOptions & { generatedAt: string },
): Promise<HostReportDocument> {
  const b = new HostReportBuilder(opts);
  for await (const e of events) b.add(e);
  return b.result(opts.generatedAt);
}
