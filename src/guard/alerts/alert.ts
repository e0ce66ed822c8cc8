import type { GuardEvent } from '../events/types.js';
import { isHeaderAllowedSecretRead } from '../policy/header-reads.js';

/**
 * What an alert sink receives: a reduced, secret-free view of a GuardEvent (or a summary of events
 * the noise filter suppressed), with a one-line text for people. Built only by toAlert() and
 * summaryAlert(), which copy an explicit allowlist of fields: no header values, no cmdline (argv can
 * carry secrets), no token, no credential or user-data bodies.
 */

export const SEVERITIES = ['critical', 'warning', 'notice', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface AlertCaller {
  resolved: 'full' | 'partial' | 'none';
  pid?: number;
  exe?: string;
  user?: string;
  uid?: number;
  container?: string;
  netns?: 'host' | 'other';
}

export interface Alert {
  v: 1;
  kind: 'event' | 'summary';
  /** The event id, or "summary-<first event id>" for a summary. */
  id: string;
  /** ISO 8601: the request's time, or the end of the window for a summary. */
  time: string;
  host: string;
  mode: GuardEvent['mode'];
  decision: GuardEvent['decision'];
  action: GuardEvent['action'];
  rule: string;
  reason: string;
  severity: Severity;
  request: {
    method: string;
    path: string;
    version: GuardEvent['request']['version'];
    flavor: string;
    userAgent?: string;
    client: { address: string; port: number };
  };
  status: number;
  caller?: AlertCaller;
  /** Present on summaries: how many alerts of this key were suppressed in the window. */
  summary?: { count: number; since: string; until: string; windowMs: number };
  /** One line for people (Slack, syslog MSG). */
  text: string;
}

/** Longest text kept in an alert (characters). */
export const MAX_ALERT_TEXT = 1000;
/** Longest user agent or path copied into an alert (characters). */
const MAX_FIELD = 512;

function clip(s: string, max = MAX_FIELD): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function severityOf(
  event: Pick<GuardEvent, 'mode' | 'decision' | 'action' | 'token' | 'rule' | 'request'>,
): Severity {
  if (event.mode === 'trap' || event.action === 'trapped') return 'critical';
  if (event.decision === 'deny' || event.action === 'error') return 'warning';
  // a token used by another caller than the one it was issued to: token theft inside the host
  if (event.token?.status === 'other-caller') return 'warning';
  // credentials or user-data handed out on a User-Agent or Metadata-Flavor header any process can send
  if (isHeaderAllowedSecretRead(event)) return 'warning';
  return 'info';
}

function callerOf(event: GuardEvent): AlertCaller | undefined {
  const c = event.caller;
  if (!c) return undefined;
  const out: AlertCaller = { resolved: c.resolved };
  if (c.pid !== undefined) out.pid = c.pid;
  if (c.exe !== undefined) out.exe = clip(c.exe);
  if (c.user !== undefined) out.user = clip(c.user, 64);
  if (c.uid !== undefined) out.uid = c.uid;
  if (c.container !== undefined) out.container = clip(c.container.id, 80);
  if (c.netns !== undefined) out.netns = c.netns;
  return out;
}

export function describeCaller(c: AlertCaller | undefined): string {
  if (!c || c.resolved === 'none') return 'an unknown process';
  const who = c.exe ?? (c.pid !== undefined ? `pid ${c.pid}` : 'a process');
  const parts: string[] = [];
  if (c.exe !== undefined && c.pid !== undefined) parts.push(`pid ${c.pid}`);
  if (c.user !== undefined) parts.push(`user ${c.user}`);
  else if (c.uid !== undefined) parts.push(`uid ${c.uid}`);
  if (c.container !== undefined) parts.push(`container ${c.container.slice(0, 12)}`);
  return parts.length > 0 ? `${who} (${parts.join(', ')})` : who;
}

function verb(a: Pick<Alert, 'action' | 'decision'>): string {
  switch (a.action) {
    case 'refused':
      return 'REFUSED';
    case 'flagged':
      return 'FLAGGED';
    case 'trapped':
      return 'TRAPPED';
    case 'error':
      return 'ERROR';
    default:
      return a.decision === 'deny' ? 'DENIED' : 'ALLOWED';
  }
}

/** The one-line text of an event alert. */
export function alertText(a: Omit<Alert, 'text'>): string {
  const line =
    `[${a.host}] ${verb(a)} ${a.request.version} ${a.request.method} ${a.request.path} from ` +
    `${describeCaller(a.caller)}: ${a.reason} (rule ${a.rule}, mode ${a.mode})`;
  return clip(line, MAX_ALERT_TEXT);
}

/** Builds the alert for an event. Only allowlisted fields are copied. */
export function toAlert(event: GuardEvent): Alert {
  const request: Alert['request'] = {
    method: clip(event.request.method, 16),
    path: clip(event.request.path),
    version: event.request.version,
    flavor: event.request.flavor,
    client: { address: event.request.client.address, port: event.request.client.port },
  };
  if (event.request.userAgent !== undefined) request.userAgent = clip(event.request.userAgent);
  const base: Omit<Alert, 'text'> = {
    v: 1,
    kind: 'event',
    id: event.id,
    time: event.time,
    host: event.host,
    mode: event.mode,
    decision: event.decision,
    action: event.action,
    rule: event.rule,
    reason: clip(event.reason),
    severity: severityOf(event),
    request,
    status: event.status,
  };
  const caller = callerOf(event);
  if (caller) base.caller = caller;
  return { ...base, text: alertText(base) };
}

/** "5 minutes", "30 seconds", "1 hour". */
export function humanWindow(ms: number): string {
  const units: Array<[number, string]> = [
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${ms} ms`;
}

/**
 * A summary of `count` alerts suppressed in a window, modelled on the last suppressed one:
 * "37 more in the last 5 minutes: REFUSED v1 GET /latest/meta-data/ from /usr/bin/curl ...".
 */
export function summaryAlert(
  last: Alert,
  count: number,
  sinceMs: number,
  untilMs: number,
  windowMs: number,
): Alert {
  const until = new Date(untilMs).toISOString();
  const { text: _text, summary: _summary, ...rest } = last;
  const base: Omit<Alert, 'text'> = {
    ...rest,
    kind: 'summary',
    id: `summary-${last.id}`,
    time: until,
    severity: last.severity === 'critical' ? 'critical' : 'notice',
    summary: { count, since: new Date(sinceMs).toISOString(), until, windowMs },
  };
  const text = clip(
    `${count} more in the last ${humanWindow(windowMs)}: ${alertText({ ...base, kind: 'event' })}`,
    MAX_ALERT_TEXT,
  );
  return { ...base, text };
}

/** A summary for alerts dropped by the global rate limit, whatever their key. */
export function overflowSummary(
  last: Alert,
  count: number,
  sinceMs: number,
  untilMs: number,
  windowMs: number,
): Alert {
  const until = new Date(untilMs).toISOString();
  const host = last.host;
  const base: Omit<Alert, 'text'> = {
    v: 1,
    kind: 'summary',
    id: `summary-global-${last.id}`,
    time: until,
    host,
    mode: last.mode,
    decision: last.decision,
    action: 'refused',
    rule: 'alert-rate-limit',
    reason: 'the global alert rate limit was reached; see the event store for each request',
    severity: 'warning',
    request: { method: '-', path: '-', version: 'unknown', flavor: '-', client: { address: '-', port: 0 } },
    status: 0,
    summary: { count, since: new Date(sinceMs).toISOString(), until, windowMs },
  };
  return {
    ...base,
    text: `[${host}] ${count} more alerts in the last ${humanWindow(windowMs)} (global alert rate limit reached; see \`imdsguard events\`)`,
  };
}
