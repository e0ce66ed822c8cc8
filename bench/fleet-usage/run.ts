/**
 * bench/fleet-usage: reading 14 days of IMDS usage evidence for 10,000 instances in a region, the
 * imdsguard way (GetMetricData, 500 queries per call) side by side with the naive way metabadger uses
 * (one GetMetricStatistics call per instance and metric, one at a time), in the same run.
 *
 *   npm run bench:fleet-usage
 *   npm run bench:fleet-usage -- --instances 10000 --latency-ms 0,20 --naive-sample 1000 --runs 3
 *
 * fake-aws runs in a child process (server.ts) with a mixed fleet (60% quiet, 10% v1 callers, stopped,
 * new, enforced, broken, missing, gaps). For each --latency-ms value (an artificial delay the server
 * adds to every response, standing in for the network round trip to AWS):
 *   imdsguard auto   collectUsage, one series per instance (the default): must be <= 20 calls/region
 *   imdsguard both   both metrics for every instance: ceil(N/250) calls
 *   naive            GetMetricStatistics per instance, sequential, on the first --naive-sample
 *                    instances; its wall time is extrapolated to N (calls scale linearly). Its sums
 *                    are checked against imdsguard's for the same instances.
 * Wall times (and this process's CPU time: the client's own cost, steadier than wall time on a busy
 * machine) are medians of --runs runs after one warm-up.
 */
import * as os from 'node:os';
import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { AwsClientFactory } from '../../src/fleet/aws/clients.js';
import { resolveTargets } from '../../src/fleet/aws/targets.js';
import { collectInventory } from '../../src/fleet/inventory/collect.js';
import type { InstanceRecord } from '../../src/fleet/inventory/model.js';
import { assessFleet, countReadiness } from '../../src/fleet/posture/readiness.js';
import { collectUsage } from '../../src/fleet/usage/collect.js';
import type { UsageMode } from '../../src/fleet/usage/queries.js';
import { type UsageWindow, usageWindow } from '../../src/fleet/usage/window.js';
import { FAKE_CREDENTIALS } from '../../test/support/fake-aws/index.js';
import { arg, median, ServerProcess } from '../support/fake-aws-process.js';

const REGION = 'us-east-1';

interface Stats {
  cw: {
    getMetricDataCalls: number;
    getMetricStatisticsCalls: number;
    queries: number;
    maxQueriesInCall: number;
  };
  byRegion: Record<string, number>;
}

async function inventory(url: string): Promise<InstanceRecord[]> {
  const factory = new AwsClientFactory({
    endpointUrl: url,
    credentials: FAKE_CREDENTIALS,
    defaultRegion: REGION,
  });
  try {
    const inv = await collectInventory(factory, await resolveTargets(factory, { regions: [REGION] }), {
      include: { defaults: false, templates: false, autoScaling: false, images: false },
    });
    return inv.instances;
  } finally {
    factory.destroy();
  }
}

async function ours(url: string, instances: InstanceRecord[], window: UsageWindow, mode: UsageMode) {
  const factory = new AwsClientFactory({
    endpointUrl: url,
    credentials: FAKE_CREDENTIALS,
    defaultRegion: REGION,
  });
  try {
    const targets = await resolveTargets(factory, { regions: [REGION] });
    const t = performance.now();
    const c = process.cpuUsage();
    const ev = await collectUsage(factory, targets.accounts, instances, { window, mode });
    const rows = assessFleet(instances, ev.series, window);
    const ms = performance.now() - t;
    const used = process.cpuUsage(c);
    const cpuMs = (used.user + used.system) / 1000;
    if (ev.failures.length > 0) throw new Error(`failures: ${JSON.stringify(ev.failures)}`);
    return {
      ms,
      cpuMs,
      rows,
      calls: factory.counter.snapshot().byOperation['cloudwatch:GetMetricData']?.calls ?? 0,
    };
  } finally {
    factory.destroy();
  }
}

/** metabadger's way: one GetMetricStatistics per instance (and metric), one after the other. */
async function naive(url: string, instances: InstanceRecord[], window: UsageWindow) {
  const cw = new CloudWatchClient({ endpoint: url, region: REGION, credentials: FAKE_CREDENTIALS });
  const sums = new Map<string, number>();
  const t = performance.now();
  const c = process.cpuUsage();
  try {
    for (const i of instances) {
      const metric =
        i.metadataOptions.httpTokens === 'required' ? 'MetadataNoTokenRejected' : 'MetadataNoToken';
      const out = await cw.send(
        new GetMetricStatisticsCommand({
          Namespace: 'AWS/EC2',
          MetricName: metric,
          Dimensions: [{ Name: 'InstanceId', Value: i.instanceId }],
          StartTime: new Date(window.startMs),
          EndTime: new Date(window.endMs),
          Period: window.periodSeconds,
          Statistics: ['Sum'],
        }),
      );
      sums.set(
        i.instanceId,
        (out.Datapoints ?? []).reduce((a, d) => a + (d.Sum ?? 0), 0),
      );
    }
  } finally {
    cw.destroy();
  }
  const used = process.cpuUsage(c);
  return { ms: performance.now() - t, cpuMs: (used.user + used.system) / 1000, sums };
}

const n = Number(arg('instances', '10000'));
const latencies = arg('latency-ms', '0,20').split(',').map(Number);
const sampleArg = Number(arg('naive-sample', '1000'));
const runs = Number(arg('runs', '3'));
const nowMs = Date.now();
const window = usageWindow(nowMs, 14);
const rows: string[] = [];
let readiness = '';

for (const latency of latencies) {
  const aws = new ServerProcess(import.meta.url, [
    '--instances',
    String(n),
    '--regions',
    REGION,
    '--latency-ms',
    String(latency),
    '--now',
    String(nowMs),
  ]);
  await aws.start();
  try {
    const instances = await inventory(aws.url);
    if (instances.length !== n) throw new Error(`inventory has ${instances.length} instances, expected ${n}`);
    // With latency, a smaller naive sample keeps the run short; the time is extrapolated.
    const sample = instances.slice(0, Math.min(n, latency > 0 ? Math.min(sampleArg, 200) : sampleArg));
    await ours(aws.url, instances, window, 'auto');
    await naive(aws.url, sample.slice(0, 20), window);
    const auto: number[] = [];
    const autoCpu: number[] = [];
    const both: number[] = [];
    const nv: number[] = [];
    const nvCpu: number[] = [];
    let autoCalls = 0;
    let bothCalls = 0;
    let maxQ = 0;
    let naiveCalls = 0;
    for (let r = 0; r < runs; r++) {
      await aws.send('reset');
      const a = await ours(aws.url, instances, window, 'auto');
      const sa = await aws.send<Stats>('stats');
      autoCalls = sa.byRegion[REGION] ?? 0;
      if (autoCalls !== a.calls) throw new Error(`client counted ${a.calls} calls, server ${autoCalls}`);
      maxQ = Math.max(maxQ, sa.cw.maxQueriesInCall);
      auto.push(a.ms);
      autoCpu.push(a.cpuMs);
      readiness = JSON.stringify(countReadiness(a.rows));
      await aws.send('reset');
      const b = await ours(aws.url, instances, window, 'both');
      bothCalls = (await aws.send<Stats>('stats')).byRegion[REGION] ?? 0;
      both.push(b.ms);
      await aws.send('reset');
      const nres = await naive(aws.url, sample, window);
      naiveCalls = (await aws.send<Stats>('stats')).cw.getMetricStatisticsCalls;
      nv.push(nres.ms);
      nvCpu.push(nres.cpuMs);
      // Same evidence: the naive sums equal imdsguard's for every sampled instance.
      const byId = new Map(a.rows.map((x) => [x.instanceId, (x.noToken?.sum ?? 0) + (x.rejected?.sum ?? 0)]));
      for (const [id, s] of nres.sums) {
        if (byId.get(id) !== s)
          throw new Error(`sums differ for ${id}: naive ${s}, imdsguard ${byId.get(id)}`);
      }
    }
    if (autoCalls > 20)
      throw new Error(`imdsguard made ${autoCalls} GetMetricData calls for ${n} instances (> 20)`);
    const naiveFull = (median(nv) / sample.length) * n;
    const naiveCpuFull = (median(nvCpu) / sample.length) * n;
    const row = `| ${n.toLocaleString('en-US')} | ${latency} | ${autoCalls} | ${maxQ} | ${median(auto).toFixed(0)} | ${median(autoCpu).toFixed(0)} | ${bothCalls} | ${median(both).toFixed(0)} | ${naiveCalls} of ${sample.length} | ${median(nv).toFixed(0)} | ${n.toLocaleString('en-US')} | ${naiveFull.toFixed(0)} | ${naiveCpuFull.toFixed(0)} | ${(naiveFull / median(auto)).toFixed(0)}x |`;
    rows.push(row);
    process.stderr.write(`${row}\n`);
  } finally {
    await aws.close();
  }
}

process.stdout.write(
  [
    `fleet-usage bench: node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(1)}, 14-day window at ${window.periodSeconds} s, median of ${runs} runs`,
    `readiness of the fleet: ${readiness}`,
    '',
    '| instances in region | added latency ms | imdsguard GetMetricData calls (auto) | max queries per call | imdsguard wall ms (auto) | imdsguard client CPU ms (auto) | calls (both metrics) | wall ms (both) | naive GetMetricStatistics calls (sample) | naive wall ms (sample) | naive calls for all | naive wall ms, extrapolated | naive client CPU ms, extrapolated | wall speed-up |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n'),
);
