/**
 * CloudWatch Logs for fake-aws (AWS JSON 1.1, `X-Amz-Target: Logs_20140328.<Operation>`): what the
 * guard's sink writes (CreateLogGroup, CreateLogStream, PutLogEvents) and what `fleet usage
 * --host-evidence cloudwatch-logs:...` reads (StartQuery, GetQueryResults, StopQuery). Log groups
 * live per account (the credentials') and region (the credential scope), as in AWS.
 *
 * Logs Insights: the subset of the query syntax understood here is what src/fleet/usage/logs-query.ts
 * sends, parsed (not matched as a string), anything else is a MalformedQueryException:
 *   command   := filter | stats, joined by `|`
 *   filter    := `filter` COND (`and` COND)*
 *   COND      := FIELD `=` "STRING" | FIELD `like` /REGEX/
 *   stats     := `stats` AGG (`,` AGG)* `by` FIELD (`,` FIELD)*
 *   AGG       := (sum|min|max|count)(FIELD) `as` NAME
 * Fields are the top-level keys of the log event's JSON message. An event lacking a filtered field
 * does not match; an event lacking a `by` field is left out of the statistics (AWS documents neither;
 * this is the least convenient answer for a client, so the tool may not rely on it).
 *
 * Documented behaviour modelled (AWS CloudWatch Logs API reference):
 *   - StartQuery: `limit` 1..10,000 (InvalidParameterException beyond); startTime and endTime are
 *     epoch seconds, the range inclusive of both; exactly one of logGroupName, logGroupNames,
 *     logGroupIdentifiers; an unknown group is ResourceNotFoundException; "You can have up to 30
 *     concurrent CloudWatch Logs Insights queries" (LimitExceededException), counted here per
 *     account (`maxConcurrentQueries`).
 *   - GetQueryResults: status Scheduled | Running | Complete | Failed | Cancelled | Timeout | Unknown;
 *     `results` are rows of {field, value} with values as strings; `statistics` recordsMatched,
 *     recordsScanned, bytesScanned. A stats query returns at most `limit` rows.
 *   - StopQuery: `success` true when a running query was stopped (then Cancelled).
 *   - PutLogEvents: events in one call in chronological order (InvalidParameterException).
 */
import { FakeAwsError, type HandlerContext, type HandlerResult } from './context.js';

export const LOGS_TARGET = 'Logs_20140328';
/** StartQuery's documented maximum `limit`. */
export const LOGS_MAX_LIMIT = 10_000;

export interface FakeLogsOptions {
  /** Running queries per account before StartQuery answers LimitExceededException (AWS: 30). */
  maxConcurrentQueries?: number;
  /** GetQueryResults calls that answer Running before a query completes (default 1). */
  runningPolls?: number;
}

export interface LogEvent {
  timestamp: number;
  message: string;
}

type Status = 'Scheduled' | 'Running' | 'Complete' | 'Failed' | 'Cancelled' | 'Timeout';

interface Query {
  id: string;
  accountId: string;
  region: string;
  group: string;
  queryString: string;
  startTime: number;
  endTime: number;
  limit: number;
  status: Status;
  polls: number;
  /** Set by failNext: the status it ends with. */
  endsWith?: Status;
}

interface Cond {
  field: string;
  eq?: string;
  like?: RegExp;
}
interface Agg {
  fn: 'sum' | 'min' | 'max' | 'count';
  field: string;
  as: string;
}
interface Parsed {
  filters: Cond[];
  aggs: Agg[];
  by: string[];
}

const FIELD = '[A-Za-z_@][A-Za-z0-9_.@]*';
const COND_RE = new RegExp(String.raw`^(${FIELD})\s*(?:=\s*"([^"]*)"|like\s+/((?:[^/\\]|\\.)*)/)$`);
const AGG_RE = new RegExp(String.raw`^(sum|min|max|count)\(\s*(${FIELD})\s*\)\s+as\s+(${FIELD})$`);

function malformed(why: string): FakeAwsError {
  return new FakeAwsError('MalformedQueryException', `fake-aws does not understand the query: ${why}`);
}

/** Parses the documented subset; throws MalformedQueryException otherwise. */
export function parseInsightsQuery(q: string): Parsed {
  const out: Parsed = { filters: [], aggs: [], by: [] };
  const commands = q.split('|').map((c) => c.trim().replace(/\s+/g, ' '));
  let sawStats = false;
  for (const c of commands) {
    if (c.startsWith('filter ')) {
      if (sawStats) throw malformed('filter after stats');
      for (const part of c.slice(7).split(/ and /)) {
        const m = COND_RE.exec(part.trim());
        if (!m) throw malformed(`condition "${part}"`);
        const cond: Cond = { field: m[1] as string };
        if (m[2] !== undefined) cond.eq = m[2];
        else cond.like = new RegExp(m[3] as string);
        out.filters.push(cond);
      }
    } else if (c.startsWith('stats ')) {
      if (sawStats) throw malformed('two stats commands');
      sawStats = true;
      const m = /^stats (.+) by (.+)$/.exec(c);
      if (!m) throw malformed('stats without by');
      for (const a of (m[1] as string).split(',')) {
        const am = AGG_RE.exec(a.trim());
        if (!am) throw malformed(`aggregation "${a.trim()}"`);
        out.aggs.push({ fn: am[1] as Agg['fn'], field: am[2] as string, as: am[3] as string });
      }
      for (const f of (m[2] as string).split(',')) {
        const name = f.trim();
        if (!new RegExp(`^${FIELD}$`).test(name)) throw malformed(`by field "${name}"`);
        out.by.push(name);
      }
    } else throw malformed(`command "${c.split(' ')[0]}"`);
  }
  if (!sawStats) throw malformed('only stats queries are modelled');
  return out;
}

function fieldValue(doc: Record<string, unknown>, f: string): string | number | undefined {
  const v = doc[f];
  return typeof v === 'string' || typeof v === 'number' ? v : undefined;
}

/** Runs a parsed query over events: rows of {field, value}, and the statistics. */
export function runInsightsQuery(
  parsed: Parsed,
  events: Iterable<LogEvent>,
): { rows: Array<Array<{ field: string; value: string }>>; matched: number; scanned: number; bytes: number } {
  const groups = new Map<string, { by: string[]; acc: number[] }>();
  let matched = 0;
  let scanned = 0;
  let bytes = 0;
  for (const e of events) {
    scanned++;
    bytes += Buffer.byteLength(e.message);
    let doc: Record<string, unknown>;
    try {
      const d = JSON.parse(e.message) as unknown;
      if (d === null || typeof d !== 'object' || Array.isArray(d)) continue;
      doc = d as Record<string, unknown>;
    } catch {
      continue;
    }
    const ok = parsed.filters.every((c) => {
      const v = fieldValue(doc, c.field);
      if (v === undefined) return false;
      return c.eq !== undefined ? String(v) === c.eq : (c.like as RegExp).test(String(v));
    });
    if (!ok) continue;
    matched++;
    const by = parsed.by.map((f) => fieldValue(doc, f));
    if (by.some((v) => v === undefined)) continue;
    const key = JSON.stringify(by);
    let g = groups.get(key);
    if (!g) {
      g = {
        by: by.map(String),
        acc: parsed.aggs.map((a) => (a.fn === 'min' ? Infinity : a.fn === 'max' ? -Infinity : 0)),
      };
      groups.set(key, g);
    }
    parsed.aggs.forEach((a, i) => {
      const n = Number(fieldValue(doc, a.field));
      const cur = g.acc[i] as number;
      if (a.fn === 'count') g.acc[i] = cur + (fieldValue(doc, a.field) !== undefined ? 1 : 0);
      else if (!Number.isFinite(n)) return;
      else if (a.fn === 'sum') g.acc[i] = cur + n;
      else if (a.fn === 'min') g.acc[i] = Math.min(cur, n);
      else g.acc[i] = Math.max(cur, n);
    });
  }
  const rows = [...groups.values()].map((g) => [
    ...parsed.by.map((f, i) => ({ field: f, value: g.by[i] as string })),
    ...parsed.aggs.map((a, i) => ({ field: a.as, value: String(g.acc[i]) })),
  ]);
  return { rows, matched, scanned, bytes };
}

export class FakeLogs {
  /** `account|region|group` -> stream -> events in arrival order. */
  readonly groups = new Map<string, Map<string, LogEvent[]>>();
  readonly queries = new Map<string, Query>();
  maxConcurrentQueries: number;
  runningPolls: number;
  /** While true, started queries stay Running (a test releases them). */
  hold = false;
  private nextId = 1;
  private failing: Status[] = [];

  constructor(opts: FakeLogsOptions = {}) {
    this.maxConcurrentQueries = opts.maxConcurrentQueries ?? 30;
    this.runningPolls = opts.runningPolls ?? 1;
  }

  /** The next queries started end with these statuses (Failed, Cancelled, Timeout), in order. */
  failNext(...statuses: Status[]): void {
    this.failing.push(...statuses);
  }

  /** Events of a group (every stream), for tests. */
  events(accountId: string, region: string, group: string): LogEvent[] {
    return [...(this.groups.get(`${accountId}|${region}|${group}`)?.values() ?? [])].flat();
  }

  /** Queries of an account that count against its concurrency limit. */
  running(accountId: string): number {
    let n = 0;
    for (const q of this.queries.values())
      if (q.accountId === accountId && (q.status === 'Running' || q.status === 'Scheduled')) n++;
    return n;
  }

  handle(ctx: HandlerContext): HandlerResult {
    const j = ctx.json;
    const groupKey = (name: unknown) => `${ctx.accountId}|${ctx.region}|${String(name ?? '')}`;
    const ok = (body: unknown): HandlerResult => ({
      body: JSON.stringify(body),
      contentType: 'application/x-amz-json-1.1',
    });
    switch (ctx.action) {
      case 'CreateLogGroup': {
        const k = groupKey(j['logGroupName']);
        if (this.groups.has(k))
          throw new FakeAwsError('ResourceAlreadyExistsException', 'The specified log group already exists');
        this.groups.set(k, new Map());
        return ok({});
      }
      case 'CreateLogStream': {
        const g = this.groups.get(groupKey(j['logGroupName']));
        if (!g)
          throw new FakeAwsError('ResourceNotFoundException', 'The specified log group does not exist.');
        const s = String(j['logStreamName'] ?? '');
        if (g.has(s))
          throw new FakeAwsError('ResourceAlreadyExistsException', 'The specified log stream already exists');
        g.set(s, []);
        return ok({});
      }
      case 'PutLogEvents': {
        const s = this.groups.get(groupKey(j['logGroupName']))?.get(String(j['logStreamName'] ?? ''));
        if (!s)
          throw new FakeAwsError('ResourceNotFoundException', 'The specified log stream does not exist.');
        const events = (Array.isArray(j['logEvents']) ? j['logEvents'] : []) as LogEvent[];
        for (let i = 1; i < events.length; i++) {
          if ((events[i] as LogEvent).timestamp < (events[i - 1] as LogEvent).timestamp)
            throw new FakeAwsError(
              'InvalidParameterException',
              'Log events in a single PutLogEvents request must be in chronological order.',
            );
        }
        s.push(...events.map((e) => ({ timestamp: Number(e.timestamp), message: String(e.message) })));
        return ok({ nextSequenceToken: String(s.length) });
      }
      case 'StartQuery':
        return ok(this.start(ctx));
      case 'GetQueryResults':
        return ok(this.results(ctx));
      case 'StopQuery': {
        const q = this.queries.get(String(j['queryId'] ?? ''));
        if (!q || q.accountId !== ctx.accountId)
          throw new FakeAwsError('ResourceNotFoundException', 'The query does not exist.');
        const running = q.status === 'Running' || q.status === 'Scheduled';
        if (running) q.status = 'Cancelled';
        return ok({ success: running });
      }
      default:
        throw new FakeAwsError('UnknownOperationException', `fake-aws does not model logs:${ctx.action}`);
    }
  }

  private start(ctx: HandlerContext): { queryId: string } {
    const j = ctx.json;
    const named = ['logGroupName', 'logGroupNames', 'logGroupIdentifiers'].filter((k) => j[k] !== undefined);
    if (named.length !== 1)
      throw new FakeAwsError(
        'InvalidParameterException',
        'A StartQuery operation must include exactly one of logGroupName, logGroupNames or logGroupIdentifiers.',
      );
    if (j['logGroupName'] === undefined)
      throw new FakeAwsError('InvalidParameterException', 'fake-aws models logGroupName only');
    const group = String(j['logGroupName']);
    const startTime = Number(j['startTime']);
    const endTime = Number(j['endTime']);
    if (!Number.isInteger(startTime) || !Number.isInteger(endTime) || endTime < startTime)
      throw new FakeAwsError(
        'InvalidParameterException',
        'endTime must be at or after startTime (epoch seconds)',
      );
    const limit = j['limit'] === undefined ? LOGS_MAX_LIMIT : Number(j['limit']);
    if (!Number.isInteger(limit) || limit < 1 || limit > LOGS_MAX_LIMIT)
      throw new FakeAwsError('InvalidParameterException', `limit must be 1..${LOGS_MAX_LIMIT}`);
    const queryString = String(j['queryString'] ?? '');
    parseInsightsQuery(queryString); // MalformedQueryException now, as AWS does
    if (!this.groups.has(`${ctx.accountId}|${ctx.region}|${group}`))
      throw new FakeAwsError('ResourceNotFoundException', `Log group '${group}' does not exist.`);
    if (this.running(ctx.accountId) >= this.maxConcurrentQueries)
      throw new FakeAwsError(
        'LimitExceededException',
        `Account maximum query concurrency limit of [${this.maxConcurrentQueries}] reached.`,
      );
    const id = `q-${String(this.nextId++).padStart(8, '0')}`;
    const q: Query = {
      id,
      accountId: ctx.accountId,
      region: ctx.region,
      group,
      queryString,
      startTime,
      endTime,
      limit,
      status: 'Running',
      polls: 0,
    };
    const fail = this.failing.shift();
    if (fail) q.endsWith = fail;
    this.queries.set(id, q);
    return { queryId: id };
  }

  private results(ctx: HandlerContext): Record<string, unknown> {
    const q = this.queries.get(String(ctx.json['queryId'] ?? ''));
    if (!q || q.accountId !== ctx.accountId)
      throw new FakeAwsError('ResourceNotFoundException', 'The query does not exist.');
    if (q.status === 'Running' && !this.hold) {
      q.polls += 1;
      if (q.polls > this.runningPolls) q.status = q.endsWith ?? 'Complete';
    }
    const noStats = { recordsMatched: 0, recordsScanned: 0, bytesScanned: 0 };
    if (q.status !== 'Complete') return { status: q.status, results: [], statistics: noStats };
    const events = [...(this.groups.get(`${q.accountId}|${q.region}|${q.group}`)?.values() ?? [])]
      .flat()
      .filter((e) => e.timestamp >= q.startTime * 1000 && e.timestamp < (q.endTime + 1) * 1000);
    const r = runInsightsQuery(parseInsightsQuery(q.queryString), events);
    return {
      status: 'Complete',
      results: r.rows.slice(0, q.limit),
      statistics: { recordsMatched: r.matched, recordsScanned: r.scanned, bytesScanned: r.bytes },
    };
  }
}
