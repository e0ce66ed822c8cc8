/**
 * fake-aws in its own process for the bench, so the server's CPU work does not run on the event loop
 * being measured (as with real AWS). Prints {"url": ...} on the first line, then answers stdin lines:
 *   clear            -> {"ok":true}           forget recorded calls
 *   counts           -> {"byAction":{...},"byRegion":{...}}  DescribeInstances calls per region
 *   exit             -> closes and exits
 * Args: --instances-per-region N --regions a,b --seed S
 */
import { startFakeAws } from '../../test/support/fake-aws/index.js';
import { arg, serveFakeAws } from '../support/fake-aws-process.js';

const regions = arg('regions', 'us-east-1').split(',');
const aws = await startFakeAws({
  generate: {
    accounts: 1,
    regions,
    instancesPerRegion: Number(arg('instances-per-region', '500')),
    seed: Number(arg('seed', '1')),
  },
});
serveFakeAws(
  aws,
  { url: aws.url },
  {
    clear: () => {
      aws.calls.clear();
      return { ok: true };
    },
    counts: () => {
      const byRegion: Record<string, number> = {};
      for (const r of regions) byRegion[r] = aws.calls.count({ action: 'DescribeInstances', region: r });
      return { byAction: aws.calls.byAction(), byRegion };
    },
  },
);
