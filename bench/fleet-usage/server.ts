/**
 * fake-aws with a mixed usage fleet, in its own process for the bench (the server's CPU work stays off
 * the measured event loop, as with real AWS). Prints {"url": ...} first, then answers stdin lines:
 *   reset  -> {"ok":true}                                  forget calls and CloudWatch counters
 *   stats  -> {"cw": CloudWatchStats, "byRegion": {...}}   GetMetricData calls per region
 *   exit   -> closes and exits
 * Args: --instances N (per region) --regions a,b --latency-ms MS --now MS
 */
import { createInterface } from 'node:readline';
import {
  cloudWatchStats,
  mixedUsageFleet,
  resetCloudWatchStats,
  type UsageKind,
} from '../../test/support/fake-aws/cloudwatch.js';
import { startFakeAws } from '../../test/support/fake-aws/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

const regions = arg('regions', 'us-east-1').split(',');
const n = Number(arg('instances', '10000'));
// A realistic mix: most instances quiet, some v1 callers, some stopped, new, enforced, broken.
const share: Record<UsageKind, number> = {
  quiet: 0.6,
  v1: 0.1,
  stopped: 0.05,
  new: 0.05,
  enforced: 0.14,
  broken: 0.01,
  missing: 0.03,
  gaps: 0.02,
};
const perRegion = Object.fromEntries(Object.entries(share).map(([k, s]) => [k, Math.floor(n * s)])) as Record<
  UsageKind,
  number
>;
perRegion.quiet += n - Object.values(perRegion).reduce((a, b) => a + b, 0);
const m = mixedUsageFleet({ nowMs: Number(arg('now', String(Date.now()))), regions, perRegion });
const aws = await startFakeAws({ fleet: m.fleet, latencyMs: Number(arg('latency-ms', '0')) });
process.stdout.write(`${JSON.stringify({ url: aws.url, perRegion })}\n`);
const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = line.trim();
  if (cmd === 'reset') {
    aws.calls.clear();
    resetCloudWatchStats(aws.fleet);
    process.stdout.write('{"ok":true}\n');
  } else if (cmd === 'stats') {
    const byRegion: Record<string, number> = {};
    for (const r of regions) byRegion[r] = aws.calls.count({ action: 'GetMetricData', region: r });
    process.stdout.write(`${JSON.stringify({ cw: cloudWatchStats(aws.fleet), byRegion })}\n`);
  } else if (cmd === 'exit') {
    rl.close();
    await aws.close();
    process.exit(0);
  }
});
rl.on('close', () => {
  void aws.close().then(() => process.exit(0));
});
