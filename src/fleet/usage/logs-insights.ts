/**
 * Logs Insights queries of the guards' caller summary records, per account and region:
 * StartQuery, then GetQueryResults polled with backoff until the query completes. The service's
 * limits are handled here:
 *   - results that fill the row limit are re-queried narrower (by instance id prefix, then by halving
 *     the time range) until every part fits;
 *   - LimitExceededException (too many concurrent queries in the account) waits and starts again,
 *     and at most LOGS_QUERY_DEFAULTS.perAccount queries of this run are in flight per account;
 *   - a query that fails, is cancelled or times out (the service's, or ours: StopQuery) fails its
 *     account and region, never the run; an interrupted run stops its queries with StopQuery.
 * The bytes scanned that the service reports are added up per account and region.
 */
import {
  type CloudWatchLogsClient,
  GetQueryResultsCommand,
  type GetQueryResultsCommandOutput,
  StartQueryCommand,
  StopQueryCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { ImdsguardError } from '../../errors.js';
import { wrapAwsError } from '../aws/errors.js';
import {
  type CallerRow,
  callersQuery,
  LOGS_QUERY_DEFAULTS,
  mergeRows,
  narrowerPrefixes,
  parseResultRows,
} from './logs-query.js';

export interface LogsQueryOptions {
  /** Rows per query (1..10,000). */
  limit: number;
  timeoutMs: number;
  pollInitialMs: number;
  pollMaxMs: number;
  limitRetryInitialMs: number;
  limitRetryMaxMs: number;
  limitWaitMs: number;
  maxQueries: number;
  minRangeSeconds: number;
  signal?: AbortSignal | undefined;
}

export const DEFAULT_LOGS_QUERY_OPTIONS: LogsQueryOptions = { ...LOGS_QUERY_DEFAULTS };

export type LogsQueryStatus = 'complete' | 'no-log-group' | 'failed';

/** What one account and region's queries cost and gave. */
export interface LogsQueryStats {
  accountId: string;
  region: string;
  group: string;
  status: LogsQueryStatus;
  /** StartQuery calls that started a query (splits included). */
  queries: number;
  /** Times a query's results filled the limit and it was split. */
  splits: number;
  /** StartQuery calls refused with LimitExceededException (then retried). */
  limitRetries: number;
  bytesScanned: number;
  recordsScanned: number;
  recordsMatched: number;
  /** Result rows that still filled the limit at the narrowest split: some rows may be missing. */
  truncated: boolean;
  error?: { code: string; awsCode: string | null; message: string };
}

/** A semaphore per account: this run's queries in flight there. */
export class AccountSlots {
  private readonly perAccount: number;
  private readonly inUse = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  constructor(perAccount: number) {
    this.perAccount = Math.max(1, perAccount);
  }
  async acquire(accountId: string): Promise<void> {
    const n = this.inUse.get(accountId) ?? 0;
    if (n < this.perAccount) {
      this.inUse.set(accountId, n + 1);
      return;
    }
    await new Promise<void>((resolve) => {
      const q = this.waiting.get(accountId) ?? [];
      q.push(resolve);
      this.waiting.set(accountId, q);
    });
  }
  release(accountId: string): void {
    const next = this.waiting.get(accountId)?.shift();
    if (next) next();
    else this.inUse.set(accountId, Math.max(0, (this.inUse.get(accountId) ?? 1) - 1));
  }
}

class QueryFailed extends Error {
  readonly code: string;
  readonly awsCode: string | null;
  constructor(code: string, message: string, awsCode: string | null = null) {
    super(message);
    this.code = code;
    this.awsCode = awsCode;
  }
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : '';
}

/** Sleeps ms, or rejects with IMDSGUARD_E_INTERRUPTED when the signal aborts first. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(interrupted(signal));
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(interrupted(signal as AbortSignal));
    };
    const t = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function interrupted(signal: AbortSignal): ImdsguardError {
  const why = typeof signal.reason === 'string' ? signal.reason : 'a stop request';
  return new ImdsguardError(
    'IMDSGUARD_E_INTERRUPTED',
    `stopped by ${why} while Logs Insights queries ran; they were stopped (StopQuery)`,
  );
}

export interface LogsTarget {
  accountId: string;
  region: string;
  group: string;
  client: CloudWatchLogsClient;
  /** The instance ids whose records are wanted (a split never queries a prefix none of them has). */
  instanceIds: readonly string[];
}

/**
 * Every caller row of `target` in [startMs, endMs). Never throws for a failed query (the stats say
 * why); throws IMDSGUARD_E_INTERRUPTED when the signal aborts (after StopQuery of what runs).
 */
export async function queryCallerRows(
  target: LogsTarget,
  startMs: number,
  endMs: number,
  slots: AccountSlots,
  opts: LogsQueryOptions = DEFAULT_LOGS_QUERY_OPTIONS,
): Promise<{ rows: CallerRow[]; stats: LogsQueryStats }> {
  const stats: LogsQueryStats = {
    accountId: target.accountId,
    region: target.region,
    group: target.group,
    status: 'complete',
    queries: 0,
    splits: 0,
    limitRetries: 0,
    bytesScanned: 0,
    recordsScanned: 0,
    recordsMatched: 0,
    truncated: false,
  };
  const running = new Set<string>();

  /** StartQuery, retried while the account's concurrent-query limit is reached. */
  const start = async (query: string, startS: number, endS: number): Promise<string> => {
    let delay = opts.limitRetryInitialMs;
    const giveUpAt = Date.now() + opts.limitWaitMs;
    for (;;) {
      if (opts.signal?.aborted) throw interrupted(opts.signal);
      if (stats.queries >= opts.maxQueries) {
        throw new QueryFailed(
          'IMDSGUARD_E_LOGS_QUERY',
          `more than ${opts.maxQueries} queries were needed to read ${target.group}; narrow the window (--days)`,
        );
      }
      try {
        const out = await target.client.send(
          new StartQueryCommand({
            logGroupName: target.group,
            startTime: startS,
            endTime: endS,
            queryString: query,
            limit: opts.limit,
          }),
        );
        if (!out.queryId) throw new QueryFailed('IMDSGUARD_E_LOGS_QUERY', 'StartQuery returned no queryId');
        stats.queries += 1;
        return out.queryId;
      } catch (err) {
        const name = errName(err);
        if (name === 'LimitExceededException' && Date.now() + delay <= giveUpAt) {
          stats.limitRetries += 1;
          await pause(delay * (0.5 + Math.random() / 2), opts.signal);
          delay = Math.min(opts.limitRetryMaxMs, delay * 2);
          continue;
        }
        if (err instanceof QueryFailed) throw err;
        if (name === 'ResourceNotFoundException') throw err;
        const wrapped = wrapAwsError(err, {
          operation: 'logs:StartQuery',
          accountId: target.accountId,
          region: target.region,
        });
        throw new QueryFailed(
          name === 'LimitExceededException' ? 'IMDSGUARD_E_LOGS_QUERY' : wrapped.code,
          name === 'LimitExceededException'
            ? `the account's concurrent Logs Insights query limit stayed reached for ${Math.round(opts.limitWaitMs / 1000)} s`
            : wrapped.message,
          name || null,
        );
      }
    }
  };

  const stop = async (queryId: string): Promise<void> => {
    running.delete(queryId);
    try {
      await target.client.send(new StopQueryCommand({ queryId }), {
        abortSignal: AbortSignal.timeout(10_000),
      });
    } catch {
      // already finished, or unreachable: nothing more to do
    }
  };

  /** One query over [startS, endS] (seconds, inclusive), polled until it ends. */
  const runOne = async (query: string, startS: number, endS: number): Promise<CallerRow[]> => {
    await slots.acquire(target.accountId);
    let queryId: string | undefined;
    try {
      queryId = await start(query, startS, endS);
      running.add(queryId);
      const deadline = Date.now() + opts.timeoutMs;
      let delay = opts.pollInitialMs;
      for (;;) {
        await pause(delay, opts.signal);
        delay = Math.min(opts.pollMaxMs, Math.ceil(delay * 1.5));
        let out: GetQueryResultsCommandOutput;
        try {
          out = await target.client.send(new GetQueryResultsCommand({ queryId }));
        } catch (err) {
          const wrapped = wrapAwsError(err, {
            operation: 'logs:GetQueryResults',
            accountId: target.accountId,
            region: target.region,
          });
          throw new QueryFailed(wrapped.code, wrapped.message, errName(err) || null);
        }
        const status = out.status ?? 'Unknown';
        if (status === 'Complete') {
          running.delete(queryId);
          stats.bytesScanned += out.statistics?.bytesScanned ?? 0;
          stats.recordsScanned += out.statistics?.recordsScanned ?? 0;
          stats.recordsMatched += out.statistics?.recordsMatched ?? 0;
          return parseResultRows(out.results ?? []);
        }
        if (status === 'Scheduled' || status === 'Running') {
          if (Date.now() > deadline) {
            await stop(queryId);
            throw new QueryFailed(
              'IMDSGUARD_E_LOGS_QUERY',
              `the Logs Insights query ran longer than ${Math.round(opts.timeoutMs / 1000)} s and was stopped`,
            );
          }
          continue;
        }
        running.delete(queryId);
        stats.bytesScanned += out.statistics?.bytesScanned ?? 0;
        throw new QueryFailed(
          'IMDSGUARD_E_LOGS_QUERY',
          status === 'Timeout'
            ? 'the Logs Insights query timed out in the service (60 minutes)'
            : status === 'Cancelled'
              ? 'the Logs Insights query was cancelled (StopQuery from elsewhere?)'
              : `the Logs Insights query ended ${status}`,
          status,
        );
      }
    } catch (err) {
      if (queryId !== undefined && running.has(queryId)) await stop(queryId);
      throw err;
    } finally {
      slots.release(target.accountId);
    }
  };

  /** The rows of a prefix and time range, split until each part fits the limit. */
  const collect = async (prefix: string, startS: number, endS: number): Promise<CallerRow[]> => {
    const rows = await runOne(callersQuery(prefix), startS, endS);
    if (rows.length < opts.limit) return rows;
    stats.splits += 1;
    const narrower = narrowerPrefixes(prefix, target.instanceIds);
    if (narrower.length > 0) {
      const parts = await Promise.all(narrower.map((p) => collect(p, startS, endS)));
      return parts.flat();
    }
    if (endS - startS + 1 >= 2 * opts.minRangeSeconds) {
      const mid = startS + Math.floor((endS - startS + 1) / 2);
      const [a, b] = await Promise.all([collect(prefix, startS, mid - 1), collect(prefix, mid, endS)]);
      return mergeRows(a, b);
    }
    stats.truncated = true;
    return rows;
  };

  // [startMs, endMs) as whole seconds, inclusive both ends as StartQuery takes them.
  const startS = Math.floor(startMs / 1000);
  const endS = Math.max(startS, Math.floor((endMs - 1) / 1000));
  try {
    return { rows: await collect('', startS, endS), stats };
  } catch (err) {
    await Promise.all([...running].map((id) => stop(id)));
    if (err instanceof ImdsguardError && err.code === 'IMDSGUARD_E_INTERRUPTED') throw err;
    if (errName(err) === 'ResourceNotFoundException') {
      return { rows: [], stats: { ...stats, status: 'no-log-group' } };
    }
    const f =
      err instanceof QueryFailed
        ? err
        : new QueryFailed('IMDSGUARD_E_LOGS_QUERY', err instanceof Error ? err.message : String(err));
    return {
      rows: [],
      stats: { ...stats, status: 'failed', error: { code: f.code, awsCode: f.awsCode, message: f.message } },
    };
  }
}
