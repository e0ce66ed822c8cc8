/**
 * fake-aws with a mixed usage fleet, in its own process for the bench (the server's CPU work stays off
 * the measured event loop, as with real AWS). Prints {"url": ...} first, then answers stdin lines:
 *   reset  -> {"ok":true}                                  forget calls and CloudWatch counters
 *   stats  -> {"cw": CloudWatchStats, "byRegion": {...}}   GetMetricData calls per region
 *   exit   -> closes and exits
 * Args: --instances N (per region) --regions a,b --latency-ms MS --now MS
 */
import {
  cloudWatchStats,
  mixedUsageFleet,
  resetCloudWatchStats,
  type UsageKind,
} from '../../test/support/fake-aws/cloudwatch.js';
import { startFakeAws } from '../../test/support/fake-aws/index.js';
import { arg, serveFakeAws } from '../support/fake-aws-process.js';

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
serveFakeAws(
  aws,
  { url: aws.url, perRegion },
  {
    reset: () => {
      aws.calls.clear();
      resetCloudWatchStats(aws.fleet);
      return { ok: true };
    },
    stats: () => {
      const byRegion: Record<string, number> = {};
      for (const r of regions) byRegion[r] = aws.calls.count({ action: 'GetMetricData', region: r });
      return { cw: cloudWatchStats(aws.fleet), byRegion };
    },
  },
);
