/**
 * Readiness sees the most recent IMDSv1 calls. The usage window ends at now; the
 * minutes since the last whole period are read at 60 s and added. An instance with one IMDSv1 call 5
 * minutes ago is never ready, for any --days, at any time of day: checked at and around period
 * boundaries with a controlled clock (the fake's and the window's), through the real CloudWatch SDK.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AwsClientFactory } from '../../src/fleet/aws/clients.js';
import type { InstanceRecord } from '../../src/fleet/inventory/model.js';
import { assessFleet } from '../../src/fleet/posture/readiness.js';
import { collectUsage } from '../../src/fleet/usage/collect.js';
import { usageWindow } from '../../src/fleet/usage/window.js';
import { setInstanceMetrics } from '../support/fake-aws/cloudwatch.js';
import {
  addInstance,
  emptyAccount,
  FAKE_CREDENTIALS,
  type FakeAws,
  type FakeFleet,
  type FakeRegion,
  startFakeAws,
} from '../support/fake-aws/index.js';
import { instanceRecord } from '../support/fleet-records.js';

// Whole commands run in-process against fake-aws over HTTP through the real SDK (whose first import
// the first test pays): seconds each on a quiet machine, many times that on a loaded one.
vi.setConfig({ testTimeout: 60_000 });

const ACCOUNT = '111111111111';
const REGION = 'us-east-1';
const CALLER = 'i-0000000000000c411';
const QUIET = 'i-00000000000000a11';
const LAUNCH = Date.UTC(2025, 5, 1);
const DAY = 86_400_000;

let now = Date.UTC(2026, 10, 22);
let aws: FakeAws;
let factory: AwsClientFactory;
let region: FakeRegion;

function record(instanceId: string): InstanceRecord {
  return instanceRecord({
    instanceId,
    accountId: ACCOUNT,
    region: REGION,
    state: 'running',
    launchTime: new Date(LAUNCH).toISOString(),
    m: { httpTokens: 'optional', httpEndpoint: 'enabled' },
  });
}

/** Both instances ran since LAUNCH (a sample every 5 minutes, 0 calls); CALLER made 1 call 5 minutes ago. */
function publish(): void {
  const quiet = { fromMs: LAUNCH, toMs: now, value: 0 };
  setInstanceMetrics(region, QUIET, { MetadataNoToken: [quiet] });
  setInstanceMetrics(region, CALLER, {
    MetadataNoToken: [quiet, { fromMs: now - 5 * 60_000, toMs: now - 5 * 60_000 + 1, value: 1 }],
  });
}

beforeAll(async () => {
  const fleet: FakeFleet = {
    managementAccountId: ACCOUNT,
    accounts: new Map([[ACCOUNT, emptyAccount(ACCOUNT, [REGION])]]),
    regionNames: [REGION],
    nextId: 1,
  };
  region = fleet.accounts.get(ACCOUNT)?.regions.get(REGION) as FakeRegion;
  for (const id of [CALLER, QUIET]) {
    addInstance(region, ACCOUNT, {
      instanceId: id,
      reservationId: `r-${id.slice(2)}`,
      instanceType: 't3.micro',
      imageId: 'ami-00000000000000001',
      state: 'running',
      launchTime: new Date(LAUNCH),
      tags: {},
      metadataOptions: {
        state: 'applied',
        httpTokens: 'optional',
        httpEndpoint: 'enabled',
        httpPutResponseHopLimit: 1,
        httpProtocolIpv6: 'disabled',
        instanceMetadataTags: 'disabled',
      },
    });
  }
  aws = await startFakeAws({ fleet, clock: () => now });
  factory = new AwsClientFactory({
    endpointUrl: aws.url,
    credentials: FAKE_CREDENTIALS,
    defaultRegion: REGION,
    maxAttempts: 2,
  });
});

afterAll(async () => {
  factory?.destroy();
  await aws?.close();
});

async function measure(days: number) {
  publish();
  const window = usageWindow(now, days);
  const instances = [record(CALLER), record(QUIET)];
  const evidence = await collectUsage(
    factory,
    [{ accountId: ACCOUNT, name: null, roleArn: null }],
    instances,
    { window },
  );
  expect(evidence.failures).toEqual([]);
  const rows = assessFleet(instances, evidence.series, window);
  return {
    window,
    caller: rows.find((r) => r.instanceId === CALLER),
    quiet: rows.find((r) => r.instanceId === QUIET),
  };
}

/** Times of day around the 1 h, 6 h and 1 day boundaries, and 22:14 (late in the day, inside a 6 h period). */
const TIMES = [
  [0, 0, 0, 0],
  [0, 0, 0, 1],
  [0, 4, 59, 999],
  [0, 5, 0, 0],
  [5, 59, 59, 999],
  [6, 0, 0, 0],
  [6, 5, 0, 1],
  [6, 20, 0, 1],
  [13, 30, 0, 0],
  [22, 14, 0, 0],
  [23, 59, 59, 999],
] as const;
/** Each period choice and its edges: 1 h up to 8 days, 6 h up to 50, 1 day beyond. */
const DAYS = [1, 2, 8, 9, 14, 30, 50, 51, 90, 454];

describe('the usage window ends at now (fake clock, real CloudWatch SDK)', () => {
  it('an IMDSv1 call 5 minutes ago is never ready, for any --days, at any time of day', async () => {
    const seen: string[] = [];
    for (const [h, m, sec, ms] of TIMES) {
      for (const days of DAYS) {
        now = Date.UTC(2026, 10, 22, h, m, sec, ms);
        const { window, caller, quiet } = await measure(days);
        const at = `${new Date(now).toISOString()} --days ${days}`;
        expect({ at, readiness: caller?.readiness, sum: caller?.noToken?.sum }).toEqual({
          at,
          readiness: 'not-ready',
          sum: 1,
        });
        // Last seen: the start of the datapoint holding the call (a whole period, or a tail minute).
        const last = Date.parse(caller?.noToken?.lastNonZero ?? '');
        const call = now - 5 * 60_000;
        expect(last).toBeLessThanOrEqual(call);
        expect(last).toBeGreaterThan(
          call - (call >= window.periodsEndMs ? 60_000 : window.periodSeconds * 1000),
        );
        // The same instance without that call is ready: the window covers its whole life.
        expect({ at, readiness: quiet?.readiness, detail: quiet?.detail }).toMatchObject({
          at,
          readiness: 'ready',
        });
        expect(window.end).toBe(new Date(now).toISOString());
        seen.push(at);
      }
    }
    expect(seen).toHaveLength(TIMES.length * DAYS.length);
  });

  it('an instance launched after the last whole period is "new", and its detail does not lie', async () => {
    now = Date.UTC(2026, 10, 22, 22, 14);
    const fresh = record(QUIET);
    fresh.launchTime = new Date(Date.UTC(2026, 10, 22, 20, 30)).toISOString();
    publish();
    const window = usageWindow(now, 14);
    expect(window.periodsEnd).toBe('2026-11-22T18:00:00.000Z');
    const evidence = await collectUsage(
      factory,
      [{ accountId: ACCOUNT, name: null, roleArn: null }],
      [fresh],
      { window },
    );
    const [row] = assessFleet([fresh], evidence.series, window);
    expect(row).toMatchObject({ readiness: 'unknown', reason: 'new' });
    expect(row?.detail).toBe(
      `launched ${fresh.launchTime}, inside the 14-day window (${window.start} to ${window.end})`,
    );
    // The window reaches past that launch: it ends at now, not at 18:00.
    expect(Date.parse(fresh.launchTime ?? '')).toBeLessThan(window.endMs);
    expect(window.endMs - DAY * 14).toBeGreaterThan(window.startMs);
  });

  it('CloudWatch (the fake, as documented) returns no datapoints for a 60 s period 20 days back', async () => {
    now = Date.UTC(2026, 10, 22, 12);
    publish();
    const { CloudWatchClient, GetMetricDataCommand } = await import('@aws-sdk/client-cloudwatch');
    const cw = new CloudWatchClient({
      endpoint: aws.url,
      region: REGION,
      credentials: FAKE_CREDENTIALS,
      maxAttempts: 1,
    });
    const read = (periodSeconds: number, fromDaysAgo: number) =>
      cw.send(
        new GetMetricDataCommand({
          MetricDataQueries: [
            {
              Id: 'q0',
              MetricStat: {
                Metric: {
                  Namespace: 'AWS/EC2',
                  MetricName: 'MetadataNoToken',
                  Dimensions: [{ Name: 'InstanceId', Value: QUIET }],
                },
                Period: periodSeconds,
                Stat: 'Sum',
              },
            },
          ],
          StartTime: new Date(now - fromDaysAgo * DAY),
          EndTime: new Date(now - (fromDaysAgo - 1) * DAY),
        }),
      );
    expect((await read(60, 20)).MetricDataResults?.[0]?.Timestamps).toEqual([]);
    expect((await read(300, 20)).MetricDataResults?.[0]?.Timestamps).toHaveLength(288);
    expect((await read(60, 10)).MetricDataResults?.[0]?.Timestamps).toHaveLength(288);
    cw.destroy();
  });
});
