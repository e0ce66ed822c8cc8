/**
 * bench/fleet-discover: wall time and API calls of the fleet inventory against fake-aws, side by side
 * with a bare SDK paginator (paginateDescribeInstances) over the same data, in the same run.
 *
 *   npm run bench:fleet                                   # compiled; sizes 1000,10000,50000
 *   npm run bench:fleet -- --sizes 1000,10000 --runs 3
 *   npx vite-node bench/fleet-discover/run.ts -- --sizes 1000   # straight from TypeScript
 *
 * fake-aws runs in a child process (bench/fleet-discover/server.ts), as AWS would, so only the client
 * work is on the measured event loop.
 * Each size: one account, two regions with N/2 instances each. Each run alternates bare and
 * imdsguard; the table shows the median of `--runs` runs (default 3) after one warm-up of each.
 * imdsguard collects everything `fleet discover` does (instances, defaults, templates and versions,
 * groups, launch configurations, AMIs); the bare paginator only lists instances.
 */
import * as os from 'node:os';
import { DescribeInstancesCommand, EC2Client, paginateDescribeInstances } from '@aws-sdk/client-ec2';
import { AwsClientFactory } from '../../src/fleet/aws/clients.js';
import { resolveTargets } from '../../src/fleet/aws/targets.js';
import { collectInventory } from '../../src/fleet/inventory/collect.js';
import { findFindings } from '../../src/fleet/posture/findings.js';
import { summarize } from '../../src/fleet/posture/summary.js';
import { FAKE_CREDENTIALS } from '../../test/support/fake-aws/index.js';
import { arg, median, ServerProcess } from '../support/fake-aws-process.js';

const REGIONS = ['eu-west-1', 'us-east-1'];

interface Counts {
  byAction: Record<string, number>;
  byRegion: Record<string, number>;
}

async function bare(aws: { url: string }): Promise<number> {
  let n = 0;
  await Promise.all(
    REGIONS.map(async (region) => {
      const client = new EC2Client({ endpoint: aws.url, region, credentials: FAKE_CREDENTIALS });
      for await (const page of paginateDescribeInstances({ client, pageSize: 1000 }, {})) {
        for (const r of page.Reservations ?? []) n += r.Instances?.length ?? 0;
      }
      client.destroy();
    }),
  );
  return n;
}

async function imdsguard(aws: { url: string }): Promise<number> {
  const factory = new AwsClientFactory({
    endpointUrl: aws.url,
    credentials: FAKE_CREDENTIALS,
    defaultRegion: 'us-east-1',
  });
  try {
    const inv = await collectInventory(factory, await resolveTargets(factory, { regions: REGIONS }));
    summarize(inv);
    findFindings(inv);
    if (inv.failures.length > 0) throw new Error(`failures: ${JSON.stringify(inv.failures)}`);
    return inv.instances.length;
  } finally {
    factory.destroy();
  }
}

/** Wall time and this process's CPU time (user + system): CPU time is what the client itself costs,
 * and it holds up better than wall time on a busy machine. */
async function timed(fn: () => Promise<number>): Promise<{ ms: number; cpuMs: number; n: number }> {
  const t = performance.now();
  const c = process.cpuUsage();
  const n = await fn();
  const used = process.cpuUsage(c);
  return { ms: performance.now() - t, cpuMs: (used.user + used.system) / 1000, n };
}

const sizes = arg('sizes', '1000,10000,50000').split(',').map(Number);
const runs = Number(arg('runs', '3'));
const rows: string[] = [];
// Load the SDK's lazy modules once, outside the measurements.
new DescribeInstancesCommand({});

for (const size of sizes) {
  const aws = new ServerProcess(import.meta.url, [
    '--instances-per-region',
    String(Math.ceil(size / 2)),
    '--regions',
    REGIONS.join(','),
  ]);
  await aws.start();
  try {
    await timed(() => bare(aws));
    await timed(() => imdsguard(aws));
    const b: number[] = [];
    const g: number[] = [];
    const bc: number[] = [];
    const gc: number[] = [];
    let bareCalls = 0;
    let ours: Counts = { byAction: {}, byRegion: {} };
    for (let i = 0; i < runs; i++) {
      await aws.send('clear');
      const rb = await timed(() => bare(aws));
      bareCalls = (await aws.send<Counts>('counts')).byAction['ec2:DescribeInstances'] ?? 0;
      await aws.send('clear');
      const rg = await timed(() => imdsguard(aws));
      ours = await aws.send<Counts>('counts');
      if (rb.n !== rg.n) throw new Error(`instance counts differ: bare ${rb.n}, imdsguard ${rg.n}`);
      b.push(rb.ms);
      g.push(rg.ms);
      bc.push(rb.cpuMs);
      gc.push(rg.cpuMs);
    }
    const total = Object.values(ours.byAction).reduce((x, y) => x + y, 0);
    const ourDescribe = ours.byAction['ec2:DescribeInstances'] ?? 0;
    const perRegion = REGIONS.map((r) => ours.byRegion[r] ?? 0).join('+');
    const row = `| ${size.toLocaleString('en-US')} | ${REGIONS.length} | ${median(b).toFixed(0)} | ${median(g).toFixed(0)} | ${(median(g) / median(b)).toFixed(2)}x | ${median(bc).toFixed(0)} | ${median(gc).toFixed(0)} | ${(median(gc) / median(bc)).toFixed(2)}x | ${bareCalls} | ${ourDescribe} (${perRegion}) | ${total} |`;
    rows.push(row);
    process.stderr.write(`${row}\n  imdsguard calls: ${JSON.stringify(ours.byAction)}\n`);
  } finally {
    await aws.close();
  }
}

process.stdout.write(
  [
    `fleet-discover bench: node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(1)}, median of ${runs} runs`,
    '',
    '| instances | regions | bare wall ms | imdsguard wall ms | wall ratio | bare CPU ms | imdsguard CPU ms | CPU ratio | bare DescribeInstances | imdsguard DescribeInstances (per region) | imdsguard API calls, all |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n'),
);
