import { afterEach, describe, expect, it } from 'vitest';
import { callerRecord, putRecords } from '../support/caller-records.js';
import { runInProcess } from '../support/cli.js';
import { mixedUsageFleet, onlyKinds } from '../support/fake-aws/cloudwatch.js';
import { type FakeAws, fakeCredentialsEnv, startFakeAws } from '../support/fake-aws/index.js';

/**
 * `fleet usage` and `fleet report` with `--host-evidence cloudwatch-logs:...` through the CLI (in
 * process), against fake-aws: the per-account layout over two accounts (AssumeRole), a central group,
 * a failed query (its instances say unavailable, never "no guard"), the row limit through
 * --logs-query-limit, and bad sources refused before any AWS call. The real guards writing these
 * records are in test/e2e/fleet-host-evidence.test.ts.
 */

const ACCOUNTS = ['111111111111', '222222222222'];
const REGION = 'us-east-1';
const GROUP = '/imdsguard/callers';
let aws: FakeAws | undefined;

afterEach(async () => {
  await aws?.close();
  aws = undefined;
});

interface Row {
  accountId: string;
  instanceId: string;
  readiness: string;
  detail: string;
  hostV1Callers: Array<{
    exe: string | null;
    user: string | null;
    pod: string | null;
    v1Calls: number;
  }> | null;
}

/** 2 accounts, 6 not-ready and 2 ready instances each; records for some, written as guards would. */
async function fleet(central?: string) {
  const m = mixedUsageFleet({
    nowMs: Date.now(),
    accounts: ACCOUNTS,
    regions: [REGION],
    perRegion: onlyKinds({ v1: 6, quiet: 2 }),
  });
  aws = await startFakeAws({ fleet: m.fleet });
  const at = Date.now() - 3_600_000;
  const notReady: Array<{ id: string; accountId: string }> = [];
  for (const [accountId, acc] of m.fleet.accounts) {
    for (const i of acc.regions.get(REGION)?.instances.values() ?? []) {
      const kind = m.kinds.get(i.instanceId);
      const where = central ?? accountId;
      if (kind === 'v1') notReady.push({ id: i.instanceId, accountId });
      const k = notReady.length;
      // the last not-ready instance of each account has no guard
      if (kind === 'v1' && k % 6 === 0) continue;
      const recs =
        kind === 'v1'
          ? [
              callerRecord({
                instanceId: i.instanceId,
                accountId,
                region: REGION,
                atMs: at,
                exe: '/usr/bin/curl',
                calls: 4,
              }),
              callerRecord({
                instanceId: i.instanceId,
                accountId,
                region: REGION,
                atMs: at,
                exe: '/opt/app/bin/agent',
                user: 'agent',
                pod: 'web/api-1',
                calls: k,
              }),
            ]
          : [
              callerRecord({
                instanceId: i.instanceId,
                accountId,
                region: REGION,
                atMs: at,
                version: 'v2',
                exe: '/usr/bin/python3',
              }),
            ];
      putRecords(aws.logs, where, REGION, GROUP, recs);
    }
  }
  return { notReady };
}

function usage(extra: string[]) {
  const a = aws as FakeAws;
  return runInProcess(
    [
      'fleet',
      'usage',
      '--endpoint-url',
      a.url,
      '--accounts',
      ACCOUNTS.join(','),
      '--role',
      'ImdsguardAudit',
      '--regions',
      REGION,
      '--format',
      'json',
      ...extra,
    ],
    { env: fakeCredentialsEnv() },
  );
}

describe('fleet usage --host-evidence cloudwatch-logs:', () => {
  it('per account: one query in each account (assumed role) and region, callers named, the unguarded said so', async () => {
    const { notReady } = await fleet();
    const r = await usage(['--host-evidence', `cloudwatch-logs:${GROUP}`]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      instances: Row[];
      hostEvidence: { layout: string; totals: Record<string, number> };
    };
    for (const acc of ACCOUNTS)
      expect(aws?.calls.count({ action: 'StartQuery', accountId: acc, region: REGION })).toBe(1);
    expect(doc.hostEvidence.layout).toBe('per-account');
    expect(doc.hostEvidence.totals).toMatchObject({ notReadyWithCallers: 10, notReadyWithoutRecords: 2 });
    for (const { id } of notReady) {
      const row = doc.instances.find((x) => x.instanceId === id) as Row;
      expect(row.readiness).toBe('not-ready');
      if (row.hostV1Callers === null) {
        expect(row.detail).toContain('no host evidence: guard not installed or not shipping');
        continue;
      }
      expect(row.hostV1Callers.map((c) => c.exe).sort()).toEqual(['/opt/app/bin/agent', '/usr/bin/curl']);
      expect(row.hostV1Callers.find((c) => c.exe === '/opt/app/bin/agent')?.pod).toBe('web/api-1');
      expect(row.detail).toMatch(/on the host: .*\/usr\/bin\/curl as app \(4 v1 call\(s\)\)/);
      expect(row.detail).toContain('/opt/app/bin/agent as agent in pod web/api-1');
    }
    expect(r.stderr).toMatch(/2 Logs Insights queries in 2 account\/region\(s\)/);
  }, 60_000);

  it('a record in one account that claims another account is not trusted (per-account layout)', async () => {
    const { notReady } = await fleet();
    const victim = notReady.find((n) => n.accountId === ACCOUNTS[1]) as { id: string };
    // account 1's group holds a record naming an instance of account 2
    putRecords((aws as FakeAws).logs, ACCOUNTS[0] as string, REGION, GROUP, [
      callerRecord({
        instanceId: victim.id,
        accountId: ACCOUNTS[1],
        region: REGION,
        atMs: Date.now() - 60_000,
        exe: '/tmp/forged',
      }),
    ]);
    const r = await usage(['--host-evidence', `cloudwatch-logs:${GROUP}`]);
    expect(r.stdout).not.toContain('/tmp/forged');
  }, 60_000);

  it('one central group (ARN): one query in that account covers every account', async () => {
    const { notReady } = await fleet(ACCOUNTS[1]);
    const arn = `arn:aws:logs:${REGION}:${ACCOUNTS[1]}:log-group:${GROUP}`;
    const r = await usage(['--host-evidence', `cloudwatch-logs:${arn}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(aws?.calls.count({ action: 'StartQuery' })).toBe(1);
    expect(aws?.calls.count({ action: 'StartQuery', accountId: ACCOUNTS[1] })).toBe(1);
    const doc = JSON.parse(r.stdout) as {
      instances: Row[];
      hostEvidence: { layout: string; source: string; totals: Record<string, number> };
    };
    expect(doc.hostEvidence).toMatchObject({ layout: 'central', source: `cloudwatch-logs:${arn}` });
    expect(doc.hostEvidence.totals).toMatchObject({ notReadyWithCallers: 10, notReadyWithoutRecords: 2 });
    const inFirst = notReady
      .filter((n) => n.accountId === ACCOUNTS[0])
      .map((n) => doc.instances.find((x) => x.instanceId === n.id) as Row);
    expect(inFirst.filter((x) => (x.hostV1Callers?.length ?? 0) > 0)).toHaveLength(5);
  }, 60_000);

  it('a central group in an account outside the run is refused with a hint', async () => {
    await fleet();
    const r = await usage([
      '--host-evidence',
      `cloudwatch-logs:arn:aws:logs:${REGION}:999999999999:log-group:${GROUP}`,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('IMDSGUARD_E_HOST_EVIDENCE');
    expect(r.stderr).toContain('999999999999');
  }, 60_000);

  it('a failed query: its instances say the evidence is unavailable (not "no guard"), listed, exit 1', async () => {
    await fleet();
    aws?.faults.fail({
      action: 'StartQuery',
      accountId: ACCOUNTS[1],
      code: 'AccessDeniedException',
      status: 400,
      message: 'not authorized to perform logs:StartQuery',
    });
    const r = await usage(['--host-evidence', `cloudwatch-logs:${GROUP}`]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as {
      instances: Row[];
      failures: Array<{ source: string; accountId: string; code: string }>;
    };
    expect(doc.failures).toEqual([
      expect.objectContaining({
        source: 'cloudwatch-logs',
        accountId: ACCOUNTS[1],
        code: 'IMDSGUARD_E_AWS_ACCESS',
      }),
    ]);
    const second = doc.instances.filter((x) => x.accountId === ACCOUNTS[1] && x.readiness === 'not-ready');
    expect(second).toHaveLength(6);
    for (const row of second) {
      expect(row.detail).toContain('host evidence unavailable');
      expect(row.detail).not.toContain('guard not installed');
    }
    expect(r.stderr).toContain('logs:StartQuery');
  }, 60_000);

  it('--logs-query-limit small: the results are split until they fit, and nothing is lost', async () => {
    await fleet();
    const whole = JSON.parse((await usage(['--host-evidence', `cloudwatch-logs:${GROUP}`])).stdout) as {
      instances: Row[];
    };
    const r = await usage(['--host-evidence', `cloudwatch-logs:${GROUP}`, '--logs-query-limit', '3']);
    expect(r.code, r.stderr).toBe(0);
    const split = JSON.parse(r.stdout) as {
      instances: Row[];
      hostEvidence: { queries: Array<{ splits: number; truncated: boolean }> };
    };
    expect(split.hostEvidence.queries.every((q) => q.splits > 0 && !q.truncated)).toBe(true);
    const key = (d: { instances: Row[] }) =>
      d.instances.map((x) => [x.instanceId, x.hostV1Callers?.map((c) => `${c.exe}:${c.v1Calls}`).sort()]);
    expect(key(split)).toEqual(key(whole));
  }, 60_000);

  it('refuses a malformed source before any AWS call (exit 2)', async () => {
    await fleet();
    for (const bad of [
      'cloudwatch-logs:',
      'cloudwatch-logs:bad group!',
      'cloudwatch-logs:arn:aws:s3:::bucket',
    ]) {
      const r = await usage(['--host-evidence', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain('IMDSGUARD_E_HOST_EVIDENCE');
    }
    expect(aws?.calls.count()).toBe(0);
  }, 60_000);
});

describe('fleet report --usage --host-evidence cloudwatch-logs:', () => {
  it('lists each not-ready instance with its IMDSv1 callers, and ranks the executables that block enforcement', async () => {
    await fleet();
    const a = aws as FakeAws;
    const base = [
      'fleet',
      'report',
      '--endpoint-url',
      a.url,
      '--accounts',
      ACCOUNTS.join(','),
      '--role',
      'ImdsguardAudit',
      '--regions',
      REGION,
      '--usage',
      '--no-history',
      '--host-evidence',
      `cloudwatch-logs:${GROUP}`,
    ];
    const json = await runInProcess([...base, '--format', 'json'], { env: fakeCredentialsEnv() });
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      hostEvidence: {
        blockers: Array<{ exe: string; instances: number }>;
        instances: Array<{ status: string }>;
      };
    };
    expect(doc.hostEvidence.blockers.map((b) => [b.exe, b.instances])).toEqual([
      ['/opt/app/bin/agent', 10],
      ['/usr/bin/curl', 10],
    ]);
    expect(doc.hostEvidence.instances).toHaveLength(12);
    expect(doc.hostEvidence.instances.filter((i) => i.status === 'no-guard')).toHaveLength(2);
    const html = await runInProcess(base, { env: fakeCredentialsEnv() });
    expect(html.code, html.stderr).toBe(0);
    expect(html.stdout).toContain('<section id="host-callers">');
    expect(html.stdout).toContain('id="blockers-table"');
    expect(html.stdout).toContain('/opt/app/bin/agent as agent in pod web/api-1');
    expect(html.stdout).toContain('no host evidence: guard not installed or not shipping');
  }, 60_000);

  it('--host-evidence without --usage is refused', async () => {
    await fleet();
    const r = await runInProcess(
      [
        'fleet',
        'report',
        '--endpoint-url',
        (aws as FakeAws).url,
        '--host-evidence',
        `cloudwatch-logs:${GROUP}`,
      ],
      { env: fakeCredentialsEnv() },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('add --usage');
  }, 60_000);
});
