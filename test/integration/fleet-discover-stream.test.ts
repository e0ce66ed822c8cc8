/**
 * fleet discover --format ndjson|csv streams: the real SDK against fake-aws. The
 * streamed records are exactly the whole document's, written page by page as the scans go (the next
 * page waits for the output), and nothing is written when every scan fails on credentials.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runDiscoverStream } from '../../src/fleet/run/discover-stream.js';
import type { RunIo } from '../../src/fleet/run/io.js';
import type {
  DiscoverScanPart,
  DiscoverStream,
  DiscoverStreamEnd,
} from '../../src/report/discover-stream.js';
import { capture, runInProcess } from '../support/cli.js';
import {
  allInstances,
  countInstances,
  type FakeAws,
  fakeCredentialsEnv,
  startFakeAws,
} from '../support/fake-aws/index.js';
import { waitFor } from '../support/wait.js';

const REGIONS = ['eu-west-1', 'us-east-1', 'us-west-2'];
let aws: FakeAws | undefined;
let dir: string | undefined;

afterEach(async () => {
  await aws?.close();
  aws = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function fleet(accounts = 2): Promise<FakeAws> {
  aws = await startFakeAws({
    generate: { accounts, regions: REGIONS, instancesPerRegion: 1200, maxReservationSize: 4, seed: 31 },
  });
  return aws;
}

function discover(a: FakeAws, args: string[]) {
  return runInProcess(
    [
      'fleet',
      'discover',
      '--endpoint-url',
      a.url,
      '--regions',
      REGIONS.join(','),
      '--org',
      '--role',
      'ImdsguardAudit',
      '--fail-on',
      'none',
      '--no-history',
      ...args,
    ],
    { env: fakeCredentialsEnv() },
  );
}

type Rec = { type: string } & Record<string, unknown>;
const records = (text: string): Rec[] =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Rec);
const key = (r: Rec) => JSON.stringify(r);
const sorted = (rs: Rec[]) => rs.map(key).sort();

// In-process over 7,200 fake instances, three runs: seconds, more on a loaded machine.
describe('fleet discover streams ndjson and csv', { timeout: 120_000 }, () => {
  it('writes exactly the records of the whole document, ending with an end record', async () => {
    const a = await fleet();
    const json = await discover(a, ['--format', 'json']);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as Record<string, unknown> & {
      instances: Rec[];
      findings: Rec[];
      scans: Rec[];
      failures: Rec[];
      summary: { overall: Record<string, unknown> };
    };
    const nd = await discover(a, ['--format', 'ndjson']);
    expect(nd.code).toBe(0);
    const recs = records(nd.stdout);
    expect(recs[0]).toMatchObject({ type: 'meta', kind: 'imdsguard.fleet.discover', regions: REGIONS });
    const end = recs.at(-1) as Rec;
    expect(end.type).toBe('end');
    expect(end['findingCounts']).toEqual(doc['findingCounts']);
    expect(end['accounts']).toEqual(doc['accounts']);
    const of = (t: string) => recs.filter((r) => r.type === t).map(({ type: _, ...r }) => r as Rec);
    expect(of('instance')).toHaveLength(countInstances(a.fleet));
    expect(sorted(of('instance'))).toEqual(sorted(doc.instances));
    expect(sorted(of('finding'))).toEqual(sorted(doc.findings));
    expect(sorted(of('scan'))).toEqual(sorted(doc.scans));
    expect(of('summary')).toEqual([doc.summary.overall]);
    // A scan record comes after every instance of its account and region.
    const closed = new Set<string>();
    for (const r of recs) {
      const k = `${r['accountId']}/${r['region']}`;
      if (r.type === 'scan') closed.add(k);
      if (r.type === 'instance') expect(closed.has(k)).toBe(false);
    }
    expect(closed.size).toBe(doc.scans.length);

    const csv = await discover(a, ['--format', 'csv']);
    expect(csv.code).toBe(0);
    const rows = csv.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^account_id,region,instance_id,/);
    expect(rows).toHaveLength(1 + countInstances(a.fleet));
    // The same rows as the CSV of the whole document (rendered from the same inventory).
    const { renderDiscover } = await import('../../src/report/fleet.js');
    const whole = renderDiscover(doc as never, 'csv')
      .trimEnd()
      .split('\n');
    expect([...rows].sort()).toEqual([...whole].sort());
  });

  it('hands on each page before the next is read: the scan waits for the output', async () => {
    const a = await fleet(1);
    const pages: Array<{ region: string; n: number; calls: number }> = [];
    const scans: DiscoverScanPart[] = [];
    let ended: DiscoverStreamEnd | undefined;
    let release: (() => void) | undefined;
    const stream: DiscoverStream = {
      start: async () => {},
      instances: async (p) => {
        const region = p.instances[0]?.region as string;
        pages.push({
          region,
          n: p.instances.length,
          calls: a.calls.count({ action: 'DescribeInstances', region }),
        });
        // The first page is held until the test has looked: no later page may be asked for meanwhile.
        if (pages.length === 1) await new Promise<void>((r) => (release = r));
      },
      scan: async (p) => {
        scans.push(p);
      },
      end: async (e) => {
        ended = e;
      },
    };
    const io: RunIo = { output: capture(), confirm: async () => false, signal: new AbortController().signal };
    const run = runDiscoverStream(
      {
        fleet: { regions: [REGIONS[0] as string], endpointUrl: a.url, concurrency: 1, maxAttempts: 3 },
        history: undefined,
      },
      stream,
      io,
      fakeCredentialsEnv(),
    );
    await waitFor(() => release !== undefined, 'the first page');
    // Let the SDK and the server run a while: the second page must still not be asked for.
    for (let n = 0; n < 20; n++) await new Promise((r) => setTimeout(r, 10));
    expect(a.calls.count({ action: 'DescribeInstances', region: REGIONS[0] })).toBe(1);
    release?.();
    const r = await run;
    // 1,200 instances: a page of 1,000, then one of 200, each handed on before the next call.
    expect(pages).toEqual([
      { region: REGIONS[0], n: 1000, calls: 1 },
      { region: REGIONS[0], n: 200, calls: 2 },
    ]);
    expect(scans.map((s) => [s.scan.region, s.scan.instanceCount, s.scan.status])).toEqual([
      [REGIONS[0], 1200, 'ok'],
    ]);
    expect(r.instances).toBe(1200);
    const live = [...allInstances(a.fleet)].filter(
      (x) =>
        x.region === REGIONS[0] && x.instance.state !== 'terminated' && x.instance.state !== 'shutting-down',
    );
    expect(ended?.summary.overall.instances).toBe(live.length);
    expect(r.failed).toBe(false);
  });

  it('writes nothing when every scan fails on credentials, and one clear error', async () => {
    const a = await fleet(2);
    // The member account's assumed sessions are expired: every scan fails, after the caller's own
    // calls succeeded (so the scans themselves fail, one by one).
    const member = [...a.fleet.accounts.keys()].find((id) => id !== a.fleet.managementAccountId) as string;
    a.faults.expireCredentials({ accountId: member });
    dir = mkdtempSync(join(tmpdir(), 'imdsguard-stream-'));
    const file = join(dir, 'out.csv');
    const args = (format: string) => [
      'fleet',
      'discover',
      '--endpoint-url',
      a.url,
      '--regions',
      REGIONS.join(','),
      '--accounts',
      member,
      '--role',
      'ImdsguardAudit',
      '--format',
      format,
    ];
    const r = await runInProcess(args('ndjson'), { env: fakeCredentialsEnv() });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('IMDSGUARD_E_AWS_AUTH');
    const f = await runInProcess([...args('csv'), '--output', file], { env: fakeCredentialsEnv() });
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('IMDSGUARD_E_AWS_AUTH');
    expect(() => readFileSync(file)).toThrow(/ENOENT/);
  });

  it('streams to --output: the file holds every record; partial failures are listed and exit 1', async () => {
    const a = await fleet(1);
    a.faults.disableRegion(a.fleet.managementAccountId, 'us-west-2');
    dir = mkdtempSync(join(tmpdir(), 'imdsguard-stream-'));
    const file = join(dir, 'out.ndjson');
    const r = await discover(a, ['--format', 'ndjson', '--output', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('us-west-2');
    const recs = records(readFileSync(file, 'utf8'));
    expect(recs.filter((x) => x.type === 'instance')).toHaveLength(2400);
    expect(recs.filter((x) => x.type === 'failure').map((x) => x['region'])).toContain('us-west-2');
    expect(recs.at(-1)?.type).toBe('end');
  });

  it('Ctrl-C while the output is full: exit 1, what was written stays, no end record, and it says so', async () => {
    const a = await fleet(1);
    // A reader that takes the first piece and then never drains: the scan waits on it.
    const stdout = Object.assign(new EventEmitter(), {
      text: '',
      write(chunk: string) {
        stdout.text += chunk;
        return false;
      },
    });
    let stop: (signal: string) => void = () => {};
    const shutdown = new Promise<string>((resolve) => {
      stop = resolve;
    });
    const pending = runInProcess(
      ['fleet', 'discover', '--endpoint-url', a.url, '--regions', REGIONS.join(','), '--format', 'ndjson'],
      { env: fakeCredentialsEnv(), shutdown, stdout },
    );
    await waitFor(() => stdout.text.includes('"type":"meta"'), 'the first record');
    stop('SIGINT');
    const r = await pending;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('IMDSGUARD_E_INTERRUPTED');
    expect(r.stderr).toContain('no end record');
    expect(stdout.text).not.toContain('"type":"end"');
  });
});
