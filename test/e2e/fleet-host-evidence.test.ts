import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { defaultInstance } from '../../src/emulator/instance.js';
import type { CallerRecord } from '../../src/guard/callers/interval.js';
import { CLI_MAIN, type CliRun, fakeAwsEnv, requireBuild, runBin } from '../support/bin.js';
import { mixedUsageFleet, onlyKinds } from '../support/fake-aws/cloudwatch.js';
import { type FakeAws, startFakeAws } from '../support/fake-aws/index.js';

/**
 * Host evidence end to end: 52 instances over 2 accounts and 2 regions; 50 of them run a real guard (the
 * CLI binary, monitor mode, attribution on) in front of their own emulator (its identity document
 * names the instance), with the CloudWatch Logs sink pointed at fake-aws in the instance's account
 * and region. Three real processes call each guard: curl, python3 and bash. On the instances
 * CloudWatch calls not ready, curl makes IMDSv1 calls (and bash too on every other one); elsewhere
 * everyone uses IMDSv2. Two more not-ready instances have no guard. Then `fleet usage
 * --host-evidence cloudwatch-logs:GROUP` (the binary, AssumeRole into both accounts) must name the
 * IMDSv1 process behind every not-ready instance, and say "no host evidence" for the two.
 */

const ACCOUNTS = ['111111111111', '222222222222'];
const REGIONS = ['us-east-1', 'eu-west-1'];
const GROUP = '/imdsguard/callers';
/** Guards started at once: each is a Node process (~50 MB) on a 2-core machine shared with others. */
const BATCH = 4;

let aws: FakeAws;
let dir: string;
const guarded = new Map<string, { accountId: string; region: string; v1: boolean; bashV1: boolean }>();
const unguarded: string[] = [];
const emulators: Emulator[] = [];
/** Not-ready instances whose curl (bash) IMDSv1 caller attribution named. */
const namedCurl = new Set<string>();
const namedBash = new Set<string>();

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`${cmd} failed (${err.code ?? err.signal}): ${stderr}${stdout}`.slice(0, 2000)))
        : resolve(),
    );
  });
}

/** The three callers of one instance, each a real process of its own. */
async function callers(port: number, v1: boolean, bashV1: boolean): Promise<void> {
  const base = `http://127.0.0.1:${port}`;
  const host = ['-H', 'Host: 169.254.169.254'];
  // curl: a tokenless GET (IMDSv1) on not-ready instances, else a token PUT (IMDSv2)
  await run(
    'curl',
    v1
      ? ['-sS', '-o', '/dev/null', ...host, `${base}/latest/meta-data/ami-id`]
      : [
          '-sS',
          '-o',
          '/dev/null',
          '-X',
          'PUT',
          ...host,
          '-H',
          'X-aws-ec2-metadata-token-ttl-seconds: 60',
          `${base}/latest/api/token`,
        ],
  );
  // python3: always IMDSv2 (token, then a GET with it)
  await run('python3', [
    '-c',
    [
      'import sys, urllib.request as u',
      "h={'Host':'169.254.169.254'}",
      "t=u.urlopen(u.Request(sys.argv[1]+'/latest/api/token',method='PUT',headers={**h,'X-aws-ec2-metadata-token-ttl-seconds':'60'}),timeout=10).read().decode()",
      "u.urlopen(u.Request(sys.argv[1]+'/latest/meta-data/instance-id',headers={**h,'X-aws-ec2-metadata-token':t}),timeout=10).read()",
    ].join('\n'),
    base,
  ]);
  // bash over /dev/tcp (no other process holds the socket): IMDSv1 or a token PUT
  const req = bashV1
    ? 'GET /latest/meta-data/hostname HTTP/1.1\\r\\nHost: 169.254.169.254\\r\\nConnection: close\\r\\n\\r\\n'
    : 'PUT /latest/api/token HTTP/1.1\\r\\nHost: 169.254.169.254\\r\\nX-aws-ec2-metadata-token-ttl-seconds: 60\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n';
  await run('bash', [
    '-c',
    `exec 3<>/dev/tcp/127.0.0.1/${port}; printf '${req}' >&3; while IFS= read -r -t 10 l <&3; do :; done`,
  ]);
}

/** One guard process: start it, let its three callers call, stop it (the last interval ships on exit). */
async function guardOne(instanceId: string, accountId: string, region: string, v1: boolean, bashV1: boolean) {
  const emu = createEmulator({ instance: { ...defaultInstance(), instanceId, accountId, region } });
  await emu.start();
  emulators.push(emu);
  const config = join(dir, `${instanceId}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      // generous attribution and identity budgets: the machine running this is loaded
      guard: {
        listen: ['127.0.0.1:0'],
        upstream: emu.url,
        mode: 'monitor',
        attribution: { timeoutMs: 5000, eventWaitMs: 30_000 },
      },
      events: { file: join(dir, `${instanceId}.events.jsonl`) },
      alerts: {
        callers: { intervalMs: 600_000, identityTimeoutMs: 30_000 },
        drainTimeoutMs: 20_000,
        sinks: [{ type: 'cloudwatch-logs', group: GROUP, region, endpoint: aws.url }],
      },
    }),
  );
  const env = {
    ...fakeAwsEnv(dir, { config: join(dir, 'empty'), credentials: join(dir, 'empty') }),
    AWS_ACCESS_KEY_ID: `AKIAGUARD${accountId}`,
  };
  const child: ChildProcess = spawn(process.execPath, [CLI_MAIN, 'guard', '--config', config], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`guard ${instanceId} exited ${code}: ${stderr}`)));
  });
  try {
    await callers(port, v1, bashV1);
  } finally {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
  }
}

function records(): CallerRecord[] {
  const out: CallerRecord[] = [];
  for (const a of ACCOUNTS)
    for (const r of REGIONS)
      for (const e of aws.logs.events(a, r, GROUP)) {
        const m = JSON.parse(e.message) as CallerRecord;
        if (m.kind === 'callers') out.push(m);
      }
  return out;
}

function fleet(args: string[]): Promise<CliRun> {
  return runBin(
    [
      'fleet',
      ...args,
      '--endpoint-url',
      aws.url,
      '--accounts',
      ACCOUNTS.join(','),
      '--role',
      'ImdsguardAudit',
      '--regions',
      REGIONS.join(','),
    ],
    {
      env: fakeAwsEnv(dir, { config: join(dir, 'empty'), credentials: join(dir, 'empty') }),
      cwd: dir,
      timeoutMs: 120_000,
    },
  );
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'imdsg-host-evidence-'));
  writeFileSync(join(dir, 'empty'), '');
  // 13 instances per account and region: 10 not ready (IMDSv1 calls in CloudWatch), 3 ready
  const m = mixedUsageFleet({
    nowMs: Date.now(),
    accounts: ACCOUNTS,
    regions: REGIONS,
    perRegion: onlyKinds({ v1: 10, quiet: 3 }),
  });
  aws = await startFakeAws({
    fleet: m.fleet,
    accessKeys: Object.fromEntries(ACCOUNTS.map((a) => [`AKIAGUARD${a}`, a])),
  });
  const all: Array<{ id: string; accountId: string; region: string; v1: boolean }> = [];
  for (const [accountId, acc] of m.fleet.accounts)
    for (const [region, reg] of acc.regions)
      for (const i of reg.instances.values())
        all.push({ id: i.instanceId, accountId, region, v1: m.kinds.get(i.instanceId) === 'v1' });
  expect(all).toHaveLength(52);
  // the first not-ready instance of account 1 / us-east-1 and of account 2 / eu-west-1 have no guard
  for (const [a, r] of [
    [ACCOUNTS[0], REGIONS[0]],
    [ACCOUNTS[1], REGIONS[1]],
  ]) {
    const i = all.find((x) => x.v1 && x.accountId === a && x.region === r);
    unguarded.push(i?.id as string);
  }
  let n = 0;
  for (const i of all) {
    if (unguarded.includes(i.id)) continue;
    guarded.set(i.id, { accountId: i.accountId, region: i.region, v1: i.v1, bashV1: i.v1 && n++ % 2 === 0 });
  }
  expect(guarded.size).toBe(50);
  const queue = [...guarded.entries()];
  await Promise.all(
    Array.from({ length: BATCH }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [id, g] = next;
        await guardOne(id, g.accountId, g.region, g.v1, g.bashV1);
      }
    }),
  );
}, 1_500_000);

afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
  await aws?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('fleet usage --host-evidence cloudwatch-logs: (real guards, 2 accounts x 2 regions)', () => {
  it('every guard shipped its caller summary to its own account and region, one stream per instance', () => {
    const recs = records();
    expect(new Set(recs.map((r) => r.instanceId))).toEqual(new Set(guarded.keys()));
    for (const r of recs) {
      const g = guarded.get(r.instanceId as string);
      expect(r.accountId).toBe(g?.accountId);
      expect(r.region).toBe(g?.region);
    }
    for (const a of ACCOUNTS)
      for (const rg of REGIONS) {
        const streams = [...(aws.logs.groups.get(`${a}|${rg}|${GROUP}`)?.keys() ?? [])].sort();
        const expected = [...guarded]
          .filter(([, g]) => g.accountId === a && g.region === rg)
          .map(([id]) => id)
          .sort();
        expect(streams).toEqual(expected);
      }
  });

  it('names the IMDSv1 process behind every not-ready instance, and says which have no guard', async () => {
    const r = await fleet(['usage', '--host-evidence', `cloudwatch-logs:${GROUP}`, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      instances: Array<{
        instanceId: string;
        readiness: string;
        detail: string;
        hostV1Callers: Array<{ exe: string | null; v1Calls: number }> | null;
      }>;
      hostEvidence: {
        totals: Record<string, number>;
        queries: Array<{ accountId: string; region: string; status: string; bytesScanned: number }>;
      };
    };
    expect(doc.instances).toHaveLength(52);
    // one Logs Insights query per account and region, each in its own account (AssumeRole) and region
    for (const a of ACCOUNTS)
      for (const rg of REGIONS)
        expect(aws.calls.count({ action: 'StartQuery', accountId: a, region: rg })).toBe(1);
    expect(doc.hostEvidence.queries.map((q) => q.status)).toEqual([
      'complete',
      'complete',
      'complete',
      'complete',
    ]);
    expect(doc.hostEvidence.totals['bytesScanned']).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/4 Logs Insights queries in 4 account\/region\(s\), [\d.]+ MB scanned/);
    for (const row of doc.instances) {
      const g = guarded.get(row.instanceId);
      if (unguarded.includes(row.instanceId)) {
        expect(row.readiness).toBe('not-ready');
        expect(row.hostV1Callers).toBeNull();
        expect(row.detail).toContain('no host evidence: guard not installed or not shipping');
        continue;
      }
      if (!g?.v1) {
        expect(row.readiness).toBe('ready');
        expect(row.hostV1Callers).toEqual([]);
        continue;
      }
      expect(row.readiness).toBe('not-ready');
      // every IMDSv1 call the guard saw is there: curl's, and bash's where it made one
      const callers = row.hostV1Callers ?? [];
      expect(
        callers.reduce((n, c) => n + c.v1Calls, 0),
        row.instanceId,
      ).toBe(g.bashV1 ? 2 : 1);
      // named as attribution found them (a lookup that ran out of time on a loaded machine leaves a
      // caller unattributed: counted, never misnamed); python made IMDSv2 calls only
      const exes = callers.map((c) => c.exe).filter((e): e is string => e !== null);
      for (const e of exes) expect(e, row.instanceId).toMatch(g.bashV1 ? /\/(curl|bash)$/ : /\/curl$/);
      if (exes.some((e) => e.endsWith('/curl'))) namedCurl.add(row.instanceId);
      if (exes.some((e) => e.endsWith('/bash'))) namedBash.add(row.instanceId);
      expect(row.detail).toMatch(/on the host: \S+ /);
    }
    // attribution named the processes end to end (on an idle machine: on every instance)
    expect(namedCurl.size).toBeGreaterThan(0);
    expect(namedBash.size).toBeGreaterThan(0);
    expect(doc.hostEvidence.totals['notReadyWithCallers']).toBe(38);
    expect(doc.hostEvidence.totals['notReadyWithoutRecords']).toBe(2);
  }, 180_000);

  it("fleet report --usage --host-evidence lists each not-ready instance's callers and ranks the blocking executables", async () => {
    const r = await fleet([
      'report',
      '--usage',
      '--host-evidence',
      `cloudwatch-logs:${GROUP}`,
      '--format',
      'json',
      '--no-history',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      hostEvidence: {
        blockers: Array<{ exe: string; instances: number }>;
        instances: Array<{
          instanceId: string;
          status: string;
          callers: Array<{ exe: string | null }> | null;
        }>;
      };
    };
    // ranked by the instances they block, the same instances fleet usage named
    const rank = new Map(doc.hostEvidence.blockers.map((b) => [b.exe.replace(/^.*\//, ''), b.instances]));
    expect(rank.get('curl')).toBe(namedCurl.size);
    expect(rank.get('bash')).toBe(namedBash.size);
    const order = doc.hostEvidence.blockers.map((b) => b.instances);
    expect(order).toEqual([...order].sort((x, y) => y - x));
    expect(doc.hostEvidence.instances).toHaveLength(40);
    expect(
      doc.hostEvidence.instances
        .filter((i) => i.status === 'no-guard')
        .map((i) => i.instanceId)
        .sort(),
    ).toEqual([...unguarded].sort());
    const html = await fleet([
      'report',
      '--usage',
      '--host-evidence',
      `cloudwatch-logs:${GROUP}`,
      '--no-history',
    ]);
    expect(html.code, html.stderr).toBe(0);
    expect(html.stdout).toContain('id="host-callers"');
    expect(html.stdout).toContain('no host evidence: guard not installed or not shipping');
  }, 180_000);
});
