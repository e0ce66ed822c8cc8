import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isImdsguardError } from '../../src/errors.js';
import {
  AccountSlots,
  DEFAULT_LOGS_QUERY_OPTIONS,
  type LogsQueryOptions,
  queryCallerRows,
} from '../../src/fleet/usage/logs-insights.js';
import { callerRecord, putRecords } from '../support/caller-records.js';
import { FAKE_CREDENTIALS, type FakeAws, startFakeAws } from '../support/fake-aws/index.js';
import { waitFor } from '../support/wait.js';

// Queries run in-process against fake-aws over HTTP through the real SDK (whose first import the
// first test pays): seconds each on a quiet machine, many times that on a loaded one.
vi.setConfig({ testTimeout: 60_000 });

/**
 * Logs Insights queries of the guards' caller summary records against fake-aws's CloudWatch Logs, through the real SDK: the
 * service's limits, each with a test: the per-query row limit (split by instance id prefix, then by
 * time), the concurrent-query limit, queries that fail, time out or are cancelled, StopQuery on
 * interrupt, a missing log group; and the bytes scanned.
 */

const REGION = 'eu-west-1';
const GROUP = '/imdsguard/callers';
const NOW = Date.now();
const HOUR = 3_600_000;
let aws: FakeAws;
let client: CloudWatchLogsClient;

/** Fast polling for tests; everything else as shipped. */
const FAST: LogsQueryOptions = {
  ...DEFAULT_LOGS_QUERY_OPTIONS,
  pollInitialMs: 5,
  pollMaxMs: 20,
  limitRetryInitialMs: 10,
  limitRetryMaxMs: 50,
};

function ids(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, k) => `i-${(0xa000 + from + k * 977).toString(16).padStart(17, '0')}`);
}

function target(instanceIds: readonly string[], group = GROUP) {
  return { accountId: '', region: REGION, group, client, instanceIds };
}

beforeAll(async () => {
  aws = await startFakeAws({ generate: { accounts: 1, regions: [REGION], instancesPerRegion: 0 } });
  client = new CloudWatchLogsClient({
    endpoint: aws.url,
    region: REGION,
    credentials: FAKE_CREDENTIALS,
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client?.destroy();
  await aws?.close();
});

afterEach(() => {
  aws.logs.groups.clear();
  aws.logs.queries.clear();
  aws.logs.hold = false;
  aws.logs.maxConcurrentQueries = 30;
});

function account(): string {
  return aws.fleet.managementAccountId;
}

type RecordFields = Omit<Parameters<typeof callerRecord>[0], 'accountId' | 'region'>;

/** Caller summary records of this account and region, in GROUP. */
function put(records: RecordFields[]): void {
  const full = records.map((r) => callerRecord({ ...r, accountId: account(), region: REGION }));
  putRecords(aws.logs, account(), REGION, GROUP, full);
}

/** One run of the queries for these instances over the last 24 hours of GROUP (FAST, then `opts`). */
function query(
  instanceIds: readonly string[],
  opts: Partial<LogsQueryOptions> = {},
  slots = new AccountSlots(4),
) {
  const t = { ...target(instanceIds), accountId: account() };
  return queryCallerRows(t, NOW - 24 * HOUR, NOW, slots, { ...FAST, ...opts });
}

describe('Logs Insights queries of the caller summary', () => {
  it('sums every record per instance and caller over the window, and reports the bytes scanned', async () => {
    const [a, b] = ids(2);
    put([
      { instanceId: a, atMs: NOW - 2 * HOUR, calls: 3 },
      { instanceId: a, atMs: NOW - HOUR, calls: 4 },
      {
        instanceId: a,
        atMs: NOW - HOUR,
        version: 'v2',
        exe: '/usr/bin/python3.11',
        calls: 9,
      },
      {
        instanceId: b,
        atMs: NOW - HOUR,
        version: 'none',
        exe: '-',
        calls: 0,
      },
      // outside the window: before it, and at its end (the window is [start, end))
      {
        instanceId: a,
        atMs: NOW - 30 * HOUR,
        calls: 100,
      },
      { instanceId: a, atMs: NOW + 5000, calls: 1000 },
    ]);
    const r = await query([a as string, b as string]);
    expect(r.stats).toMatchObject({ status: 'complete', queries: 1, splits: 0, truncated: false });
    expect(r.stats.bytesScanned).toBeGreaterThan(0);
    expect(r.stats.recordsMatched).toBe(4);
    const v1 = r.rows.find((x) => x.instanceId === a && x.version === 'v1');
    expect(v1).toMatchObject({ exe: '/usr/bin/curl', user: 'app', calls: 7 });
    expect(r.rows.find((x) => x.instanceId === b)).toMatchObject({ version: 'none', calls: 0 });
  });

  it('splits by instance id prefix when the rows fill the limit, and finds every instance', async () => {
    const many = ids(120);
    const before = aws.calls.count({ action: 'StartQuery' });
    put(many.map((id) => ({ instanceId: id, atMs: NOW - HOUR })));
    const r = await query(many, { limit: 25 });
    expect(r.stats.splits).toBeGreaterThan(0);
    expect(r.stats.queries).toBeGreaterThan(1);
    expect(r.stats.truncated).toBe(false);
    expect(new Set(r.rows.map((x) => x.instanceId))).toEqual(new Set(many));
    // every query the tool sent was one the fake parsed (no MalformedQueryException) and within the limit
    expect(aws.calls.count({ action: 'StartQuery' }) - before).toBe(r.stats.queries);
    expect(aws.calls.count({ action: 'StartQuery', failed: true })).toBe(0);
  });

  it('splits the time range when one instance alone fills the limit, adding up what both halves saw', async () => {
    const [one] = ids(1);
    const recs = [];
    // 30 callers early in the window, 30 others late, and one caller in both halves
    for (let k = 0; k < 30; k++) {
      recs.push({
        instanceId: one,
        atMs: NOW - 20 * HOUR,
        exe: `/opt/early/${k}`,
      });
      recs.push({
        instanceId: one,
        atMs: NOW - 2 * HOUR,
        exe: `/opt/late/${k}`,
      });
    }
    recs.push({
      instanceId: one,
      atMs: NOW - 20 * HOUR,
      exe: '/usr/bin/both',
      calls: 2,
    });
    recs.push({
      instanceId: one,
      atMs: NOW - 2 * HOUR,
      exe: '/usr/bin/both',
      calls: 3,
    });
    put(recs);
    const r = await query([one as string], { limit: 40 });
    expect(r.stats.truncated).toBe(false);
    expect(r.rows).toHaveLength(61);
    expect(r.rows.find((x) => x.exe === '/usr/bin/both')?.calls).toBe(5);
  });

  it('says so when even the narrowest split does not fit (never silently drops rows)', async () => {
    const [one] = ids(1);
    const at = NOW - HOUR;
    put(Array.from({ length: 30 }, (_, k) => ({ instanceId: one, atMs: at, exe: `/bin/p${k}` })));
    const r = await query([one as string], { limit: 10 });
    expect(r.stats.truncated).toBe(true);
    expect(r.rows.length).toBeGreaterThanOrEqual(10);
  });

  it('waits for a query slot when the account is at its concurrent-query limit (LimitExceededException)', async () => {
    const [a] = ids(1);
    put([{ instanceId: a, atMs: NOW - HOUR }]);
    aws.logs.maxConcurrentQueries = 1;
    aws.logs.hold = true;
    const slots = new AccountSlots(4);
    const first = query([a as string], {}, slots);
    const second = query([a as string], {}, slots);
    await waitFor(
      () => aws.calls.count({ action: 'StartQuery', errorCode: 'LimitExceededException' }) >= 2,
      'refused StartQuery calls',
    );
    aws.logs.hold = false;
    const [r1, r2] = await Promise.all([first, second]);
    expect([r1.stats.status, r2.stats.status]).toEqual(['complete', 'complete']);
    expect(r1.stats.limitRetries + r2.stats.limitRetries).toBeGreaterThanOrEqual(2);
    expect(r1.rows).toHaveLength(1);
    expect(r2.rows).toHaveLength(1);
  });

  it('gives up on a slot after limitWaitMs, failing that account and region with a clear message', async () => {
    const [a] = ids(1);
    put([{ instanceId: a, atMs: NOW - HOUR }]);
    aws.logs.maxConcurrentQueries = 0;
    const r = await query([a as string], { limitWaitMs: 200 });
    expect(r.stats.status).toBe('failed');
    expect(r.stats.error?.message).toMatch(/concurrent Logs Insights query limit/);
  });

  for (const status of ['Failed', 'Timeout', 'Cancelled'] as const) {
    it(`a query that ends ${status} fails its account and region, naming why`, async () => {
      const [a] = ids(1);
      put([{ instanceId: a, atMs: NOW - HOUR }]);
      aws.logs.failNext(status);
      const r = await query([a as string]);
      expect(r.stats.status).toBe('failed');
      expect(r.rows).toEqual([]);
      expect(r.stats.error?.awsCode).toBe(status);
      expect(r.stats.error?.message).toMatch(
        status === 'Timeout' ? /timed out/ : status === 'Cancelled' ? /cancelled/ : /ended Failed/,
      );
    });
  }

  it('stops a query that runs past its timeout (StopQuery), and fails that account and region', async () => {
    const [a] = ids(1);
    put([{ instanceId: a, atMs: NOW - HOUR }]);
    aws.logs.hold = true;
    const stops = aws.calls.count({ action: 'StopQuery' });
    const r = await query([a as string], { timeoutMs: 100 });
    expect(r.stats.status).toBe('failed');
    expect(r.stats.error?.message).toMatch(/ran longer than/);
    expect(aws.calls.count({ action: 'StopQuery' }) - stops).toBe(1);
    expect([...aws.logs.queries.values()].map((q) => q.status)).toEqual(['Cancelled']);
  });

  it('an interrupted run stops its running queries (StopQuery) and says it was stopped', async () => {
    const [a] = ids(1);
    put([{ instanceId: a, atMs: NOW - HOUR }]);
    aws.logs.hold = true;
    const stops = aws.calls.count({ action: 'StopQuery' });
    const stop = new AbortController();
    const run = query([a as string], { signal: stop.signal });
    await waitFor(() => aws.calls.count({ action: 'GetQueryResults' }) >= 1, 'a poll');
    stop.abort('SIGINT');
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isImdsguardError(err) && err.code).toBe('IMDSGUARD_E_INTERRUPTED');
    expect(aws.calls.count({ action: 'StopQuery' }) - stops).toBe(1);
    expect([...aws.logs.queries.values()].map((q) => q.status)).toEqual(['Cancelled']);
  });

  it('a region without the log group has no guard records (not a failure)', async () => {
    const r = await query(ids(1));
    expect(r.stats.status).toBe('no-log-group');
    expect(r.rows).toEqual([]);
  });
});
