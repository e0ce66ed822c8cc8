/**
 * The real CLI binary (dist/cli/main.js, built by `npm run build`) against fake-aws through
 * --endpoint-url, with fake credentials in the environment and empty AWS config files: the machine's
 * own AWS configuration is never read.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverDocumentSchema, rolesDocumentSchema } from '../../src/report/fleet-schema.js';
import { type CliRun, emptyAwsConfig, requireBuild, runBin } from '../support/bin.js';
import { countInstances, FAKE_CREDENTIALS, type FakeAws, startFakeAws } from '../support/fake-aws/index.js';

const REGIONS = ['eu-west-1', 'us-east-1'];
let aws: FakeAws;
let dir: string;
let env: Record<string, string>;
let accounts: string[];

function run(args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  // An empty value removes the variable.
  return runBin(args, {
    env: Object.fromEntries(Object.entries({ ...env, ...extraEnv }).filter(([, v]) => v !== '')),
  });
}

beforeAll(async () => {
  requireBuild();
  aws = await startFakeAws({
    generate: { accounts: 3, regions: REGIONS, instancesPerRegion: 400, seed: 99 },
  });
  accounts = [...aws.fleet.accounts.keys()];
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-fleet-e2e-'));
  env = emptyAwsConfig(dir);
});

afterAll(async () => {
  await aws?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function common(): string[] {
  return ['--endpoint-url', aws.url, '--regions', REGIONS.join(',')];
}

/**
 * Shared config and credentials files (named after `tag`) with a profile "audit" (region eu-west-1),
 * and the environment that makes the binary read only them.
 */
function auditProfile(tag: string): Record<string, string> {
  const config = join(dir, `config-${tag}`);
  const credentials = join(dir, `credentials-${tag}`);
  writeFileSync(config, '[profile audit]\nregion = eu-west-1\n');
  writeFileSync(
    credentials,
    `[audit]\naws_access_key_id = AKIAFAKEPROFILE00001\naws_secret_access_key = ${FAKE_CREDENTIALS.secretAccessKey}\n`,
  );
  return {
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_REGION: '',
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: credentials,
  };
}

// Each test runs the binary one to four times over 2,400 fake instances (runBin kills a run after
// 60 s): 1-3 s a run on a quiet machine, 10-20 s with the machine loaded.
describe('imdsguard fleet (real binary)', { timeout: 120_000 }, () => {
  it('discover --accounts --role --format json: one valid document covering every instance', async () => {
    const r = await run([
      'fleet',
      'discover',
      ...common(),
      '--accounts',
      accounts.join(','),
      '--role',
      'ImdsguardAudit',
      '--format',
      'json',
      '--fail-on',
      'none',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      schemaVersion: number;
      kind: string;
      instances: Array<{ accountId: string; region: string; metadataOptions: { httpTokens: string } }>;
      accounts: Array<{ accountId: string; access: string }>;
      failures: unknown[];
    };
    expect(doc.schemaVersion).toBe(1);
    expect(doc.kind).toBe('imdsguard.fleet.discover');
    expect(() => discoverDocumentSchema.parse(doc)).not.toThrow();
    expect(doc.failures).toEqual([]);
    expect(doc.instances).toHaveLength(countInstances(aws.fleet));
    expect(doc.accounts.find((a) => a.accountId === aws.fleet.managementAccountId)?.access).toBe('caller');
    for (const a of accounts) {
      for (const region of REGIONS) {
        expect(doc.instances.filter((i) => i.accountId === a && i.region === region)).toHaveLength(
          countInstances(aws.fleet, { accountId: a, region }),
        );
      }
    }
  });

  it('discover exits 1 on high findings by default, and writes JSON when stdout is not a terminal', async () => {
    const r = await run(['fleet', 'discover', ...common()]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { findingCounts: { high: number }; instances: unknown[] };
    expect(doc.findingCounts.high).toBeGreaterThan(0);
    expect(doc.instances).toHaveLength(
      countInstances(aws.fleet, { accountId: aws.fleet.managementAccountId }),
    );
  });

  it('discover --format table prints the posture, findings and per account/region rows', async () => {
    const r = await run(['fleet', 'discover', ...common(), '--format', 'table', '--fail-on', 'none']);
    expect(r.code).toBe(0);
    let live = 0;
    for (const region of aws.fleet.accounts.get(aws.fleet.managementAccountId)?.regions.values() ?? []) {
      for (const i of region.instances.values()) if (i.state !== 'terminated') live += 1;
    }
    expect(r.stdout).toMatch(
      new RegExp(`^IMDS posture: ${live} instances in 1 account\\(s\\) x 2 region\\(s\\)`),
    );
    expect(r.stdout).toContain('Findings:');
    expect(r.stdout).toContain('eu-west-1');
    expect(r.stdout).toContain('V1 ALLOWED');
  });

  it('discover --format csv --output FILE writes one row per instance', async () => {
    const file = join(dir, 'fleet.csv');
    const r = await run([
      'fleet',
      'discover',
      ...common(),
      '--org',
      '--role',
      'ImdsguardAudit',
      '--format',
      'csv',
      '--output',
      file,
      '--fail-on',
      'none',
      '--verbose',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('AWS API calls');
    expect(r.stderr).toMatch(/ec2:DescribeInstances\s+6\s+6/);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^account_id,region,instance_id,name,state,/);
    expect(lines).toHaveLength(1 + countInstances(aws.fleet));
  });

  it('discover --format ndjson: every line is a JSON record', async () => {
    const r = await run(['fleet', 'discover', ...common(), '--format', 'ndjson', '--fail-on', 'none']);
    expect(r.code).toBe(0);
    const records = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(records[0]?.type).toBe('meta');
    expect(records.filter((x) => x.type === 'instance')).toHaveLength(800);
  });

  it('roles --org --role: groups cover every live instance', async () => {
    const r = await run([
      'fleet',
      'roles',
      ...common(),
      '--org',
      '--role',
      'ImdsguardAudit',
      '--format',
      'json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { kind: string; groups: Array<{ instanceIds: string[] }> };
    expect(doc.kind).toBe('imdsguard.fleet.roles');
    expect(() => rolesDocumentSchema.parse(doc)).not.toThrow();
    let live = 0;
    for (const acct of aws.fleet.accounts.values()) {
      for (const region of acct.regions.values()) {
        for (const i of region.instances.values()) if (i.state !== 'terminated') live += 1;
      }
    }
    expect(doc.groups.reduce((n, g) => n + g.instanceIds.length, 0)).toBe(live);
    const table = await run(['fleet', 'roles', ...common(), '--format', 'table']);
    expect(table.stdout).toContain('INSTANCE PROFILE');
    expect(table.stdout).toContain('(none)');
    expect(table.stdout).toContain('web-role');
  });

  it('reports a role that cannot be assumed, scans the rest and exits 1', async () => {
    aws.faults.denyAssumeRole(accounts[2] as string);
    try {
      const r = await run([
        'fleet',
        'discover',
        ...common(),
        '--accounts',
        accounts.join(','),
        '--role',
        'ImdsguardAudit',
        '--format',
        'json',
        '--fail-on',
        'none',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('IMDSGUARD_E_AWS_ASSUME_ROLE');
      const doc = JSON.parse(r.stdout) as {
        failures: Array<{ accountId: string; stage: string }>;
        instances: unknown[];
      };
      expect(doc.failures).toEqual([
        expect.objectContaining({ accountId: accounts[2], stage: 'assume-role' }),
      ]);
      expect(doc.instances).toHaveLength(
        countInstances(aws.fleet) - countInstances(aws.fleet, { accountId: accounts[2] as string }),
      );
    } finally {
      aws.faults.reset();
    }
  });

  it('--profile reads credentials and region from the (temporary) shared config files', async () => {
    const r = await run(
      ['fleet', 'roles', '--endpoint-url', aws.url, '--profile', 'audit', '--format', 'json'],
      auditProfile('profile'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { regions: string[]; accounts: Array<{ accountId: string }> };
    expect(doc.regions).toEqual(['eu-west-1']);
    expect(doc.accounts.map((a) => a.accountId)).toEqual([aws.fleet.managementAccountId]);
  });

  it('-p and -r as metabadger had them, --json, and --output refusing a format name', async () => {
    const r = await run(
      ['fleet', 'roles', '--endpoint-url', aws.url, '-p', 'audit', '-r', 'us-east-1', '--json'],
      auditProfile('short'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      kind: string;
      regions: string[];
      accounts: Array<{ accountId: string }>;
    };
    expect(doc.kind).toBe('imdsguard.fleet.roles');
    // -r wins over the profile's region (eu-west-1); -p gave the credentials (the caller's account).
    expect(doc.regions).toEqual(['us-east-1']);
    expect(doc.accounts.map((a) => a.accountId)).toEqual([aws.fleet.managementAccountId]);
    const bad = await run(['fleet', 'discover', ...common(), '--output', 'json']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('--output: "json" is a format name, not a file');
    expect(bad.stderr).toContain('hint: --output is always a file; choose the format with --format json');
  }, 60_000);

  it('gives usage errors exit 2', async () => {
    const r = await run(['fleet', 'discover', '--org']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('IMDSGUARD_E_USAGE');
  });
});
