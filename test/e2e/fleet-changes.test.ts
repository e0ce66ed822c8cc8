/**
 * The real CLI binary (dist/cli/main.js) against fake-aws via --endpoint-url, with fake credentials
 * and empty AWS config files: harden + rollback across accounts and regions leaves every instance
 * exactly as before; a SIGKILL midway leaves a journal that accounts for every call, a re-run is
 * idempotent and the crashed change set rolls back exactly; templates --fix and defaults --set roll
 * back; a failed change exits 1; guardrails prints valid JSON.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../src/fleet/journal/store.js';
import { CLI_MAIN, type CliRun, emptyAwsConfig, requireBuild, runBin } from '../support/bin.js';
import { allInstances, type FakeAws, type FakeFleet, startFakeAws } from '../support/fake-aws/index.js';
import { waitFor } from '../support/wait.js';

const REGIONS = ['eu-west-1', 'us-east-1'];
let aws: FakeAws | undefined;
let dir: string;
let env: Record<string, string>;
const children: ChildProcess[] = [];

function run(args: string[]): Promise<CliRun> {
  return runBin(args, { env, cwd: dir, timeoutMs: 90_000 });
}

beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-changes-e2e-'));
  env = emptyAwsConfig(dir);
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await aws?.close();
  aws = undefined;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function fake(): FakeAws {
  return aws as FakeAws;
}

/** Every instance's options (without the pending/applied state AWS moves by itself). */
function instanceSnapshot(fleet: FakeFleet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { accountId, region, instance } of allInstances(fleet)) {
    const { state: _s, ...rest } = instance.metadataOptions;
    out[`${accountId}/${region}/${instance.instanceId}`] = { ...rest };
  }
  return out;
}

function templatesAndDefaults(fleet: FakeFleet): unknown {
  const out: Record<string, unknown> = {};
  for (const a of fleet.accounts.values())
    for (const r of a.regions.values())
      out[`${a.accountId}/${r.name}`] = {
        defaults: { ...r.defaults },
        templates: r.launchTemplates.map((t) => ({
          id: t.launchTemplateId,
          defaultVersion: t.defaultVersion,
        })),
      };
  return out;
}

function common(extra: string[] = []): string[] {
  return ['--endpoint-url', fake().url, '--regions', REGIONS.join(','), '--format', 'json', ...extra];
}

describe('fleet changes through the real binary', () => {
  it('harden across accounts and regions, then rollback: every instance exactly as before', async () => {
    aws = await startFakeAws({
      generate: { accounts: 2, regions: REGIONS, instancesPerRegion: 120, seed: 5 },
    });
    const accounts = [...fake().fleet.accounts.keys()].join(',');
    const original = instanceSnapshot(fake().fleet);
    const acct = ['--accounts', accounts, '--role', 'ImdsguardAudit'];
    const h = await run([
      'fleet',
      'harden',
      ...common(acct),
      '--yes',
      '--journal',
      'multi.db',
      '--change-log',
      'changes.jsonl',
    ]);
    expect(h.code, h.stderr).toBe(0);
    const doc = JSON.parse(h.stdout);
    expect(doc.counts.change).toBeGreaterThan(100);
    expect(doc.result.counts.verified).toBe(doc.counts.change);
    const lines = readFileSync(join(dir, 'changes.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const applied = lines.filter((l) => l.status === 'applied');
    expect(applied).toHaveLength(doc.counts.change);
    expect(applied[0]).toMatchObject({
      change: 'harden',
      dryRun: false,
      action: 'ModifyInstanceMetadataOptions',
    });
    expect(typeof applied[0].timestamp).toBe('string');
    // Disabled endpoints stayed disabled.
    for (const { accountId, region, instance } of allInstances(fake().fleet)) {
      const before = original[`${accountId}/${region}/${instance.instanceId}`] as { httpEndpoint: string };
      expect(instance.metadataOptions.httpEndpoint).toBe(before.httpEndpoint);
    }
    const rb = await run(['fleet', 'rollback', ...common(), '--journal', 'multi.db', '--yes']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(JSON.parse(rb.stdout).rollbackOf).toBe(doc.changeSetId);
    expect(instanceSnapshot(fake().fleet)).toEqual(original);
  }, 120_000);

  it('SIGKILL midway: the journal accounts for every call; a re-run is idempotent; the crashed change set rolls back', async () => {
    aws = await startFakeAws({
      generate: {
        accounts: 1,
        regions: ['us-east-1'],
        instancesPerRegion: 150,
        requiredShare: 0,
        disabledShare: 0,
        seed: 8,
      },
      latencyMs: 20,
    });
    const original = instanceSnapshot(fake().fleet);
    const args = [
      'fleet',
      'harden',
      '--endpoint-url',
      fake().url,
      '--regions',
      'us-east-1',
      '--format',
      'json',
      '--yes',
      '--journal',
      'crash.db',
      '--concurrency',
      '2',
    ];
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, cwd: dir, stdio: 'ignore' });
    children.push(child);
    let gone = false;
    const exited = new Promise<void>((r) =>
      child.once('exit', () => {
        gone = true;
        r();
      }),
    );
    await waitFor(
      () => gone || fake().calls.count({ action: 'ModifyInstanceMetadataOptions' }) >= 15,
      '15 changes sent',
      5,
    );
    expect(gone, 'the CLI exited before it was killed').toBe(false);
    child.kill('SIGKILL');
    await exited;
    const calls = fake().calls.count({ action: 'ModifyInstanceMetadataOptions' });
    expect(calls).toBeGreaterThanOrEqual(15);
    const j = Journal.open(join(dir, 'crash.db'), { mustExist: true });
    const set = j.listChangeSets()[0];
    expect(set?.status).toBe('applying'); // never finished: the process died
    const items = j.items(String(set?.id));
    j.close();
    const changes = items.filter((i) => i.item.action === 'change');
    expect(calls).toBeLessThan(changes.length);
    const written = new Set(
      items.filter((i) => i.status !== 'planned' && i.status !== 'skipped').map((i) => i.item.resourceId),
    );
    const changed = [...allInstances(fake().fleet)].filter((x) => x.instance.modifiedAt !== undefined);
    // Every call the server answered has a journal row written before it.
    for (const x of changed) expect(written.has(x.instance.instanceId)).toBe(true);
    expect(written.size).toBeGreaterThanOrEqual(calls);

    const again = await run(args);
    expect(again.code, again.stderr).toBe(0);
    const doc = JSON.parse(again.stdout);
    expect(doc.counts.bySkipReason['already-compliant']).toBe(changed.length);
    expect(fake().calls.count({ action: 'ModifyInstanceMetadataOptions' }) - calls).toBe(
      changes.length - changed.length,
    );

    // Roll back the re-run, then the crashed change set: back to the original.
    const r1 = await run([
      'fleet',
      'rollback',
      '--endpoint-url',
      fake().url,
      '--format',
      'json',
      '--journal',
      'crash.db',
      '--yes',
    ]);
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await run([
      'fleet',
      'rollback',
      '--endpoint-url',
      fake().url,
      '--format',
      'json',
      '--journal',
      'crash.db',
      '--change-set',
      String(set?.id),
      '--yes',
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(instanceSnapshot(fake().fleet)).toEqual(original);
  }, 120_000);

  it('templates --fix and defaults --set, each rolled back', async () => {
    aws = await startFakeAws({
      generate: { accounts: 1, regions: REGIONS, instancesPerRegion: 30, seed: 3 },
    });
    const original = templatesAndDefaults(fake().fleet);
    const t = await run(['fleet', 'templates', ...common(), '--fix', '--yes', '--journal', 'tpl.db']);
    expect(t.code, t.stderr).toBe(0);
    const tdoc = JSON.parse(t.stdout);
    expect(tdoc.counts.change).toBeGreaterThan(0);
    expect(tdoc.result.counts.verified).toBe(tdoc.counts.change);
    const d = await run([
      'fleet',
      'defaults',
      ...common(),
      '--set',
      'required',
      '--yes',
      '--journal',
      'tpl.db',
    ]);
    expect(d.code, d.stderr).toBe(0);
    for (const a of fake().fleet.accounts.values())
      for (const r of a.regions.values())
        if (REGIONS.includes(r.name)) expect(r.defaults.httpTokens).toBe('required');
    expect(templatesAndDefaults(fake().fleet)).not.toEqual(original);
    const r1 = await run(['fleet', 'rollback', ...common(), '--journal', 'tpl.db', '--yes']);
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await run([
      'fleet',
      'rollback',
      ...common(),
      '--journal',
      'tpl.db',
      '--change-set',
      tdoc.changeSetId,
      '--yes',
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(templatesAndDefaults(fake().fleet)).toEqual(original);
  }, 120_000);

  it('exit codes: 1 when a change fails (with its context), 2 on a usage error; guardrails prints JSON', async () => {
    aws = await startFakeAws({
      generate: {
        accounts: 1,
        regions: ['us-east-1'],
        instancesPerRegion: 20,
        requiredShare: 0,
        disabledShare: 0,
        seed: 4,
      },
    });
    fake().faults.fail({
      action: 'ModifyInstanceMetadataOptions',
      code: 'UnauthorizedOperation',
      status: 403,
      next: 1,
    });
    const r = await run([
      'fleet',
      'hop-limit',
      '3',
      '--endpoint-url',
      fake().url,
      '--regions',
      'us-east-1',
      '--format',
      'json',
      '--yes',
      '--journal',
      'x.db',
    ]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.result.counts.failed).toBe(1);
    const failed = doc.items.find((i: { status: string }) => i.status === 'failed');
    expect(failed.errorCode).toBe('UnauthorizedOperation');
    expect(failed.errorMessage).toContain(`us-east-1 ec2:ModifyInstanceMetadataOptions ${failed.resourceId}`);
    expect(r.stderr).toContain('IMDSGUARD_E_CHANGE_FAILED');
    const usage = await run(['fleet', 'hop-limit', '0', '--endpoint-url', fake().url]);
    expect(usage.code).toBe(2);
    const g = await run(['fleet', 'guardrails', '--admin-role', 'arn:aws:iam::123456789012:role/admin']);
    expect(g.code).toBe(0);
    const policies = JSON.parse(g.stdout);
    expect(JSON.stringify(policies.scp)).toContain('ec2:RoleDelivery');
    expect(JSON.stringify(policies.iam)).toContain('ec2:MetadataHttpTokens');
  }, 120_000);
});
