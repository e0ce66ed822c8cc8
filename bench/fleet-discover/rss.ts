/**
 * bench/fleet-discover/rss: the peak memory (RSS) of the real CLI, `imdsguard fleet discover`, beside
 * the number of instances it inventories, per output format, against fake-aws in a child process (one
 * account, several regions). `--format json` is one document built in memory: the baseline of the same
 * run; `ndjson` and `csv` stream page by page. A format written `ndjson@128` runs with
 * --max-old-space-size=128: it completes only if what the run keeps alive fits, which shows the bound
 * apart from the garbage V8 lets pile up before it collects (most of the default run's peak).
 *
 *   npm run bench:fleet-rss                                  # builds; 10,000 and 100,000 instances
 *   npm run bench:fleet-rss -- --sizes 100000 --formats ndjson,csv
 *
 * Peak RSS is the CLI process's own (process.resourceUsage().maxRSS at exit, written by a preloaded
 * hook, which also samples the peak V8 heap in use every 100 ms), so the fake-aws server's memory
 * never counts. Each run checks that the output holds every instance.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fakeCredentialsEnv } from '../../test/support/fake-aws/index.js';
import { arg, ServerProcess } from '../support/fake-aws-process.js';

/** dist/cli/main.js of this checkout, from bench/fleet-discover (vite-node) or build/bench/fleet-discover. */
function cliMain(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'cli', 'main.js');
  }
  throw new Error('package.json not found above this bench');
}
/** Writes the process's peak RSS (KiB) and sampled peak heap used (bytes) to $IMDSGUARD_BENCH_MAXRSS at exit. */
const HOOK = `data:text/javascript,${encodeURIComponent(
  "import{writeFileSync}from'node:fs';let heap=0;setInterval(()=>{heap=Math.max(heap,process.memoryUsage().heapUsed);},100).unref();process.on('exit',()=>writeFileSync(process.env.IMDSGUARD_BENCH_MAXRSS,JSON.stringify({maxRss:process.resourceUsage().maxRSS,heap:Math.max(heap,process.memoryUsage().heapUsed)})));",
)}`;

interface Run {
  format: string;
  instances: number;
  outputBytes: number;
  wallMs: number;
  maxRssKiB: number;
  heapBytes: number;
  code: number;
}

/** Counts the instances of a discover output as it streams by (nothing is kept but a line tail). */
function counter(format: string): { feed(chunk: Buffer): void; end(): number } {
  let tail = '';
  let lines = 0;
  let instances = 0;
  const json: Buffer[] = [];
  const line = (l: string) => {
    lines += 1;
    if (format === 'ndjson' && l.startsWith('{"type":"instance"')) instances += 1;
  };
  return {
    feed(chunk) {
      if (format === 'json') {
        json.push(chunk);
        return;
      }
      const parts = (tail + chunk.toString('utf8')).split('\n');
      tail = parts.pop() ?? '';
      for (const p of parts) line(p);
    },
    end() {
      if (format === 'json') {
        return (JSON.parse(Buffer.concat(json).toString('utf8')) as { instances: unknown[] }).instances
          .length;
      }
      if (tail !== '') line(tail);
      return format === 'csv' ? lines - 1 : instances;
    },
  };
}

async function discover(url: string, regions: string[], spec: string, dir: string): Promise<Run> {
  const [format = spec, heapCap] = spec.split('@');
  const rssFile = join(dir, `maxrss-${format}`);
  const count = counter(format);
  let outputBytes = 0;
  const t = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...(heapCap ? [`--max-old-space-size=${heapCap}`] : []),
      '--import',
      HOOK,
      cliMain(),
      'fleet',
      'discover',
      '--endpoint-url',
      url,
      '--regions',
      regions.join(','),
      '--format',
      format,
      '--fail-on',
      'none',
      '--no-history',
    ],
    {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: dir,
        ...fakeCredentialsEnv(regions[0]),
        AWS_CONFIG_FILE: join(dir, 'none'),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
        AWS_EC2_METADATA_DISABLED: 'true',
        IMDSGUARD_BENCH_MAXRSS: rssFile,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  child.stdout.on('data', (c: Buffer) => {
    outputBytes += c.length;
    count.feed(c);
  });
  const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)));
  const wallMs = performance.now() - t;
  const mem = JSON.parse(readFileSync(rssFile, 'utf8')) as { maxRss: number; heap: number };
  return {
    format: spec,
    instances: count.end(),
    outputBytes,
    wallMs,
    maxRssKiB: mem.maxRss,
    heapBytes: mem.heap,
    code,
  };
}

const sizes = arg('sizes', '10000,100000').split(',').map(Number);
const formats = arg('formats', 'json,ndjson,csv,ndjson@128').split(',');
const regions = arg('regions', 'us-east-1,us-west-2,eu-west-1,ap-southeast-2').split(',');
const dir = mkdtempSync(join(os.tmpdir(), 'imdsguard-bench-rss-'));
const rows: string[] = [];
try {
  for (const size of sizes) {
    const aws = new ServerProcess(import.meta.url, [
      '--instances-per-region',
      String(Math.ceil(size / regions.length)),
      '--regions',
      regions.join(','),
    ]);
    await aws.start();
    try {
      let baseline: number | undefined;
      for (const format of formats) {
        const r = await discover(aws.url, regions, format, dir);
        if (r.code !== 0) throw new Error(`fleet discover --format ${format} exited ${r.code}`);
        if (r.instances !== Math.ceil(size / regions.length) * regions.length) {
          throw new Error(`--format ${format}: ${r.instances} instances in the output, expected ${size}`);
        }
        const mb = r.maxRssKiB / 1024;
        baseline ??= mb;
        const heap = r.heapBytes / 1024 / 1024;
        const row = `| ${r.instances.toLocaleString('en-US')} | ${regions.length} | ${format} | ${mb.toFixed(0)} | ${(mb / baseline).toFixed(2)}x | ${heap.toFixed(0)} | ${(r.wallMs / 1000).toFixed(1)} | ${(r.outputBytes / 1024 / 1024).toFixed(1)} |`;
        rows.push(row);
        process.stderr.write(`${row}\n`);
      }
    } finally {
      await aws.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

process.stdout.write(
  [
    `fleet-discover RSS bench: node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(1)}; peak RSS of the CLI process (fake-aws runs in another process); baseline: the first format of each size`,
    '',
    '| instances | regions | format | peak RSS MB | vs baseline | peak heap used MB | wall s | output MB |',
    '| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n'),
);
