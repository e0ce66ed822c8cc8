/**
 * fake-aws in its own process for the bench, so the server's CPU work does not run on the event loop
 * being measured (as with real AWS). Prints {"url": ...} on the first line, then answers stdin lines:
 *   clear            -> {"ok":true}           forget recorded calls
 *   counts           -> {"byAction":{...},"byRegion":{...}}  DescribeInstances calls per region
 *   exit             -> closes and exits
 * Args: --instances-per-region N --regions a,b --seed S
 */
import { createInterface } from 'node:readline';
import { startFakeAws } from '../../test/support/fake-aws/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

const regions = arg('regions', 'us-east-1').split(',');
const aws = await startFakeAws({
  generate: {
    accounts: 1,
    regions,
    instancesPerRegion: Number(arg('instances-per-region', '500')),
    seed: Number(arg('seed', '1')),
  },
});
process.stdout.write(`${JSON.stringify({ url: aws.url })}\n`);
const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = line.trim();
  if (cmd === 'clear') {
    aws.calls.clear();
    process.stdout.write('{"ok":true}\n');
  } else if (cmd === 'counts') {
    const byRegion: Record<string, number> = {};
    for (const r of regions) byRegion[r] = aws.calls.count({ action: 'DescribeInstances', region: r });
    process.stdout.write(`${JSON.stringify({ byAction: aws.calls.byAction(), byRegion })}\n`);
  } else if (cmd === 'exit') {
    rl.close();
    await aws.close();
    process.exit(0);
  }
});
rl.on('close', () => {
  void aws.close().then(() => process.exit(0));
});
