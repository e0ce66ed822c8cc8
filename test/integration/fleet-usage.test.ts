/**
 * fleet usage against fake-aws with the real @aws-sdk/client-cloudwatch (AWS JSON 1.0 over HTTP):
 * 500-query batching, NextToken paging, readiness of a mixed fleet, per-account/region clients and
 * failures, throttling retried, host evidence joined, --rejected, discover --usage.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsClientFactory } from '../../src/fleet/aws/clients.js';
import { resolveTargets } from '../../src/fleet/aws/targets.js';
import { collectInventory } from '../../src/fleet/inventory/collect.js';
import { assessFleet } from '../../src/fleet/posture/readiness.js';
import { collectUsage } from '../../src/fleet/usage/collect.js';
import { toMetricDataQuery } from '../../src/fleet/usage/queries.js';
import { usageWindow } from '../../src/fleet/usage/window.js';
import { discoverDocumentSchema } from '../../src/report/fleet-schema.js';
import { runInProcess } from '../support/cli.js';
import {
  cloudWatchStats,
  mixedUsageFleet,
  onlyKinds,
  USAGE_KINDS,
  type UsageKind,
} from '../support/fake-aws/cloudwatch.js';
import {
  FAKE_CREDENTIALS,
  type FakeAws,
  fakeCredentialsEnv,
  startFakeAws,
} from '../support/fake-aws/index.js';

let aws: FakeAws | undefined;
let factory: AwsClientFactory | undefined;

afterEach(async () => {
  factory?.destroy();
  factory = undefined;
  await aws?.close();
  aws = undefined;
});

/**
 * Tests that read through collectUsage run on a fixed clock (the fake's and the window's), so the tail
 * since the last whole period, and with it every call count, is the same on every run. Tests that run
 * the CLI (which reads the real clock) start a live fleet around Date.now().
 */
const NOW = Date.UTC(2026, 10, 22, 19, 7, 13);
const ACCOUNT = '111111111111';

function env(_a: FakeAws): Record<string, string> {
  return fakeCredentialsEnv();
}

async function start(
  perRegion?: Partial<Record<UsageKind, number>>,
  accounts = [ACCOUNT],
  regions = ['us-east-1'],
  opts: { live?: boolean } = {},
) {
  const nowMs = opts.live ? Date.now() : NOW;
  const m = mixedUsageFleet({ nowMs, accounts, regions, ...(perRegion ? { perRegion } : {}) });
  aws = await startFakeAws({ fleet: m.fleet, ...(opts.live ? {} : { clock: () => NOW }) });
  return { aws, kinds: m.kinds, nowMs };
}

async function measure(
  a: FakeAws,
  opts: { mode?: 'auto' | 'both'; maxDatapoints?: number; days?: number } = {},
) {
  factory = new AwsClientFactory({
    endpointUrl: a.url,
    credentials: FAKE_CREDENTIALS,
    defaultRegion: 'us-east-1',
    maxAttempts: 4,
  });
  const targets = await resolveTargets(factory, {
    regions: [...new Set([...a.fleet.accounts.values()].flatMap((x) => [...x.regions.keys()]))],
  });
  const inv = await collectInventory(factory, targets, {
    include: { defaults: false, templates: false, autoScaling: false, images: false },
  });
  const window = usageWindow(NOW, opts.days ?? 14);
  const evidence = await collectUsage(factory, targets.accounts, inv.instances, {
    window,
    mode: opts.mode ?? 'auto',
    maxDatapoints: opts.maxDatapoints,
  });
  return { inv, window, evidence, rows: assessFleet(inv.instances, evidence.series, window) };
}

describe('fleet usage against fake-aws (real CloudWatch SDK)', () => {
  it('decides readiness of a mixed fleet: v1 callers, quiet, stopped, new, missing, gaps, enforced, broken', async () => {
    const { aws: a, kinds } = await start({
      v1: 3,
      quiet: 4,
      stopped: 2,
      new: 2,
      enforced: 2,
      broken: 1,
      missing: 1,
      gaps: 1,
    });
    const { rows } = await measure(a);
    expect(rows).toHaveLength(kinds.size);
    for (const r of rows) {
      const kind = kinds.get(r.instanceId) as UsageKind;
      expect({ id: r.instanceId, kind, readiness: r.readiness }).toEqual({
        id: r.instanceId,
        kind,
        readiness: USAGE_KINDS[kind],
      });
      const reasons: Record<UsageKind, string> = {
        v1: 'v1-calls',
        quiet: 'no-v1-calls',
        stopped: 'stopped',
        new: 'new',
        enforced: 'tokens-required',
        broken: 'rejected-calls',
        missing: 'no-metrics',
        gaps: 'gaps',
      };
      expect(r.reason).toBe(reasons[kind]);
    }
    // v1 callers: 1 day of 5-minute samples at 2 calls each = 288 * 2.
    const v1 = rows.find((r) => kinds.get(r.instanceId) === 'v1');
    expect(v1?.noToken?.sum).toBe(576);
    expect(Date.parse(v1?.noToken?.lastNonZero ?? '')).toBeLessThan(NOW - 86_400_000);
    // The calls stop at NOW - 2 days; the last 5-minute sample may fall up to 5 minutes before, and
    // lastNonZero is the start of the 6-hour period holding it (periods start at 00:00, 06:00 ... UTC:
    // a bound of NOW - 2 days - 6 hours failed in the first minutes after each of them).
    const lastSample = NOW - 2 * 86_400_000 - 300_000;
    const sixHours = 6 * 3_600_000;
    expect(Date.parse(v1?.noToken?.lastNonZero ?? '')).toBeGreaterThanOrEqual(
      Math.floor(lastSample / sixHours) * sixHours,
    );
    const broken = rows.find((r) => r.readiness === 'broken');
    expect(broken?.rejected?.sum).toBe(288);
    expect(broken?.suggestion).toContain(
      `aws ec2 modify-instance-metadata-options --region us-east-1 --instance-id ${broken?.instanceId} --http-tokens optional`,
    );
  });

  // In-process, over thousands of fake instances: seconds, more on a loaded machine.
  it('batches 2 metrics per instance into ceil(N/250) calls of at most 500 queries', async () => {
    const { aws: a } = await start(onlyKinds({ quiet: 700, v1: 50, enforced: 51 }));
    const n = 801;
    const { evidence, rows } = await measure(a, { mode: 'both' });
    const s = cloudWatchStats(a.fleet);
    // Each batch of 500 reads the whole periods, then the tail since the last boundary: two calls.
    expect(s.queries).toBe(2 * 2 * n);
    expect(s.getMetricDataCalls).toBe(2 * Math.ceil((2 * n) / 500));
    expect(s.maxQueriesInCall).toBe(500);
    expect(a.calls.count({ action: 'GetMetricData' })).toBe(s.getMetricDataCalls);
    expect(evidence.regions[0]?.calls).toBe(s.getMetricDataCalls);
    expect(rows.filter((r) => r.readiness === 'ready')).toHaveLength(700);
    expect(rows.filter((r) => r.readiness === 'not-ready')).toHaveLength(50);
    // both: every instance has both series
    expect(rows.every((r) => r.noToken !== null && r.rejected !== null)).toBe(true);
  }, 60_000);

  it('the fake refuses more than 500 queries per call, like CloudWatch (400 through the real SDK)', async () => {
    const { aws: a } = await start();
    const cw = new CloudWatchClient({
      endpoint: a.url,
      region: 'us-east-1',
      credentials: FAKE_CREDENTIALS,
      maxAttempts: 1,
    });
    const w = usageWindow(NOW, 14);
    const queries = Array.from({ length: 501 }, (_, k) =>
      toMetricDataQuery({ id: `q${k}`, instanceId: `i-${k}`, metric: 'noToken' }, w.periodSeconds),
    );
    const send = (n: number) =>
      cw.send(
        new GetMetricDataCommand({
          MetricDataQueries: queries.slice(0, n),
          StartTime: new Date(w.startMs),
          EndTime: new Date(w.endMs),
        }),
      );
    await expect(send(501)).rejects.toMatchObject({
      message: expect.stringContaining('must not have a size greater than 500'),
      $metadata: { httpStatusCode: 400 },
    });
    const ok = await send(500);
    expect(ok.MetricDataResults).toHaveLength(500);
    cw.destroy();
  });

  it('auto mode reads one series per instance: ceil(N/500) calls', async () => {
    const { aws: a } = await start(onlyKinds({ quiet: 900, enforced: 101 }));
    const { rows } = await measure(a);
    const s = cloudWatchStats(a.fleet);
    expect(s.queries).toBe(2 * 1001);
    expect(s.getMetricDataCalls).toBe(2 * 3);
    expect(rows.filter((r) => r.readiness === 'enforced')).toHaveLength(101);
    expect(
      rows.filter((r) => r.readiness === 'enforced').every((r) => r.noToken === null && r.rejected !== null),
    ).toBe(true);
  });

  it('pages results through NextToken and merges series that span pages', async () => {
    const { aws: a, kinds } = await start(onlyKinds({ quiet: 30, v1: 10 }));
    // 14 days at 6 h = 56 datapoints per series; 40 series = 2240 datapoints; 100 per page -> 23 pages.
    const { rows, evidence } = await measure(a, { maxDatapoints: 100 });
    const s = cloudWatchStats(a.fleet);
    // Whole periods: 23 pages. Tail 18:00 .. 19:07:13 at 60 s: 13 five-minute samples per series
    // (on the grid of each launch, 19:02:13, 18:57:13, ...), 520 datapoints: 6 more pages.
    expect(s.getMetricDataCalls).toBe(23 + 6);
    expect(evidence.regions[0]?.calls).toBe(23 + 6);
    for (const r of rows) {
      expect(r.noToken?.datapoints).toBe(56 + 13);
      expect(r.readiness).toBe(USAGE_KINDS[kinds.get(r.instanceId) as UsageKind]);
    }
  });

  it('uses a client per account and region, and reports a failing region without losing the others', async () => {
    const accounts = [ACCOUNT, '222222222222'];
    const { aws: a } = await start(onlyKinds({ quiet: 2, v1: 1 }), accounts, ['us-east-1', 'eu-west-1'], {
      live: true,
    });
    a.faults.fail({
      action: 'GetMetricData',
      accountId: '222222222222',
      region: 'eu-west-1',
      code: 'AccessDenied',
      status: 403,
      message: 'User is not authorized to perform cloudwatch:GetMetricData',
    });
    const r = await runInProcess(
      [
        'fleet',
        'usage',
        '--endpoint-url',
        a.url,
        '--accounts',
        accounts.join(','),
        '--role',
        'ImdsguardAudit',
        '--regions',
        'us-east-1,eu-west-1',
        '--format',
        'json',
      ],
      { env: env(a) },
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.kind).toBe('imdsguard.fleet.usage');
    // Every account x region was queried in its own region (SigV4 scope) and account.
    for (const acc of accounts) {
      for (const reg of ['us-east-1', 'eu-west-1']) {
        expect(
          a.calls.count({ action: 'GetMetricData', accountId: acc, region: reg }),
        ).toBeGreaterThanOrEqual(1);
      }
    }
    expect(doc.failures).toHaveLength(1);
    expect(doc.failures[0]).toMatchObject({
      accountId: '222222222222',
      region: 'eu-west-1',
      code: 'IMDSGUARD_E_AWS_ACCESS',
      awsCode: 'AccessDenied',
      source: 'cloudwatch',
    });
    expect(doc.failures[0].message).toContain('account 222222222222 eu-west-1 cloudwatch:GetMetricData');
    const failed = doc.instances.filter(
      (x: { accountId: string; region: string }) =>
        x.accountId === '222222222222' && x.region === 'eu-west-1',
    );
    expect(failed).toHaveLength(3);
    expect(
      failed.every(
        (x: { readiness: string; reason: string }) =>
          x.readiness === 'unknown' && x.reason === 'query-failed',
      ),
    ).toBe(true);
    expect(doc.counts.ready).toBe(6);
    expect(doc.counts['not-ready']).toBe(3);
    expect(r.stderr).toContain('222222222222 eu-west-1 metrics');
  });

  // In-process, through the SDK's retry backoff: seconds, more on a loaded machine.
  it('retries throttled GetMetricData calls', async () => {
    const { aws: a } = await start();
    a.faults.throttle({ action: 'GetMetricData', next: 2 });
    const { rows, evidence } = await measure(a);
    expect(evidence.failures).toEqual([]);
    expect(a.calls.count({ action: 'GetMetricData', errorCode: 'Throttling' })).toBe(2);
    expect(rows.filter((r) => r.readiness === 'ready')).toHaveLength(1);
  }, 60_000);

  it('--rejected lists only broken instances with the rollback command, exit 1', async () => {
    const { aws: a, kinds } = await start(
      onlyKinds({ broken: 2, enforced: 3, quiet: 2, v1: 1 }),
      undefined,
      undefined,
      { live: true },
    );
    const r = await runInProcess(
      ['fleet', 'usage', '--rejected', '--endpoint-url', a.url, '--format', 'json'],
      { env: env(a) },
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.mode).toBe('rejected');
    expect(doc.counts).toEqual({ ready: 0, 'not-ready': 0, unknown: 0, enforced: 3, disabled: 0, broken: 2 });
    expect(doc.instances).toHaveLength(2);
    for (const x of doc.instances) {
      expect(kinds.get(x.instanceId)).toBe('broken');
      expect(x.suggestion).toContain(
        `--region us-east-1 --instance-id ${x.instanceId} --http-tokens optional`,
      );
    }
    // Only enforced instances were queried (5 series), MetadataNoTokenRejected only, over the whole
    // periods and the tail (no tail when the CLI's clock sits exactly on a period boundary).
    expect([5, 10]).toContain(cloudWatchStats(a.fleet).queries);
    const table = await runInProcess(
      ['fleet', 'usage', '--rejected', '--endpoint-url', a.url, '--format', 'table'],
      { env: env(a) },
    );
    expect(table.stdout).toContain('broken after enforcement 2');
    expect(table.stdout).toContain('modify-instance-metadata-options');
  });

  it('joins host evidence: names the process still using IMDSv1 on a not-ready instance', async () => {
    const { aws: a, kinds } = await start(onlyKinds({ v1: 2, quiet: 1 }), undefined, undefined, {
      live: true,
    });
    const [v1a, v1b] = [...kinds].filter(([, k]) => k === 'v1').map(([id]) => id) as [string, string];
    const dir = mkdtempSync(join(tmpdir(), 'imdsguard-host-'));
    // Wrapper form, and the file-name form.
    writeFileSync(
      join(dir, 'host-a.json'),
      JSON.stringify({
        instanceId: v1a,
        callers: [
          {
            key: 'a',
            exe: '/usr/bin/python3.11',
            user: 'app',
            v1: 41,
            v2: 0,
            lastSeen: new Date(NOW).toISOString(),
          },
          {
            key: 'b',
            exe: '/usr/bin/aws',
            user: 'root',
            v1: 0,
            v2: 12,
            lastSeen: new Date(NOW).toISOString(),
          },
        ],
      }),
    );
    writeFileSync(
      join(dir, `${v1b}.json`),
      JSON.stringify({ callers: [{ exe: '/opt/agent/bin/agent', user: 'agent', v1: 7, v2: 1 }] }),
    );
    const r = await runInProcess(
      ['fleet', 'usage', '--endpoint-url', a.url, '--format', 'json', '--host-evidence', dir],
      { env: env(a) },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const rowA = doc.instances.find((x: { instanceId: string }) => x.instanceId === v1a);
    const rowB = doc.instances.find((x: { instanceId: string }) => x.instanceId === v1b);
    expect(rowA.readiness).toBe('not-ready');
    expect(rowA.hostV1Callers).toEqual([
      expect.objectContaining({ exe: '/usr/bin/python3.11', user: 'app', v1Calls: 41 }),
    ]);
    expect(rowA.detail).toContain('on the host: /usr/bin/python3.11 as app (41 v1 call(s))');
    expect(rowB.hostV1Callers[0]).toMatchObject({ exe: '/opt/agent/bin/agent', user: 'agent', v1Calls: 7 });
    const quiet = doc.instances.find((x: { readiness: string }) => x.readiness === 'ready');
    expect(quiet.hostV1Callers).toBeNull();
    const csv = await runInProcess(
      ['fleet', 'usage', '--endpoint-url', a.url, '--format', 'csv', '--host-evidence', dir],
      { env: env(a) },
    );
    expect(csv.stdout.split('\n')[0]).toContain('readiness,reason,v1_calls,v1_last_seen');
    expect(csv.stdout).toContain('/usr/bin/python3.11 (user app): 41');
  });

  it('refuses a host evidence file that names no instance (exit 2)', async () => {
    const { aws: a } = await start(undefined, undefined, undefined, { live: true });
    const dir = mkdtempSync(join(tmpdir(), 'imdsguard-host-'));
    writeFileSync(join(dir, 'callers.json'), JSON.stringify({ callers: [] }));
    const r = await runInProcess(
      ['fleet', 'usage', '--endpoint-url', a.url, '--host-evidence', join(dir, 'callers.json')],
      { env: env(a) },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('IMDSGUARD_E_HOST_EVIDENCE');
  });

  it('fleet discover --usage adds readiness to the inventory (json, csv, ndjson)', async () => {
    const { aws: a, kinds } = await start(undefined, undefined, undefined, { live: true });
    const r = await runInProcess(
      ['fleet', 'discover', '--usage', '--fail-on', 'none', '--endpoint-url', a.url, '--format', 'json'],
      { env: env(a) },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.kind).toBe('imdsguard.fleet.discover');
    expect(doc.usage.counts).toEqual({
      ready: 1,
      'not-ready': 1,
      unknown: 4,
      enforced: 1,
      disabled: 0,
      broken: 1,
    });
    // The document still matches the published schema (docs/fleet-json-schema.json).
    expect(() => discoverDocumentSchema.parse(doc)).not.toThrow();
    for (const i of doc.instances) {
      expect(i.usage.readiness).toBe(USAGE_KINDS[kinds.get(i.instanceId) as UsageKind]);
    }
    const csv = await runInProcess(
      ['fleet', 'discover', '--usage', '--fail-on', 'none', '--endpoint-url', a.url, '--format', 'csv'],
      { env: env(a) },
    );
    const header = csv.stdout.split('\n')[0] ?? '';
    expect(header.startsWith('account_id,region,instance_id')).toBe(true);
    expect(header).toContain(',readiness,readiness_reason,v1_calls');
    const nd = await runInProcess(
      ['fleet', 'discover', '--usage', '--fail-on', 'none', '--endpoint-url', a.url, '--format', 'ndjson'],
      { env: env(a) },
    );
    const lines = nd.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      lines.filter((l) => l.type === 'instance').every((l) => typeof l.usage?.readiness === 'string'),
    ).toBe(true);
    const table = await runInProcess(
      ['fleet', 'discover', '--usage', '--fail-on', 'none', '--endpoint-url', a.url, '--format', 'table'],
      { env: env(a) },
    );
    expect(table.stdout).toContain('Readiness over 14 day(s)');
  });
});
