/**
 * Account-level IMDSv2 enforcement through the real CLI code and the real AWS SDK against fake-aws: each region's
 * effective state (defaults, HttpTokensEnforced, who manages them) in discover and defaults;
 * `fleet defaults --enforce` / `--no-enforce` with DryRun, the journal and exact rollback, refusing a
 * region a declarative policy manages before any call; enforcement-aware plans (blocked, never a
 * failure halfway); readiness to enforce.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChangeDocument } from '../../src/report/changes.js';
import { runInProcess } from '../support/cli.js';
import { mixedUsageFleet, onlyKinds } from '../support/fake-aws/cloudwatch.js';
import { attachDeclarativePolicy } from '../support/fake-aws/declarative.js';
import {
  type FakeAws,
  type FakeFleet,
  type FakeRegion,
  fakeCredentialsEnv,
  startFakeAws,
} from '../support/fake-aws/index.js';
import {
  ACCOUNT as A,
  add,
  fakeRegion,
  fleetCli,
  handFleet,
  numberedInstance,
} from '../support/fake-fleet.js';

// Whole commands run in-process against fake-aws over HTTP through the real SDK (whose first import
// the first test pays): seconds each on a quiet machine, many times that on a loaded one.
vi.setConfig({ testTimeout: 60_000 });

const POLICY_MESSAGE = 'IMDS settings are managed by the platform team: see go/imds';

let aws: FakeAws | undefined;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-enforce-'));
});

afterEach(async () => {
  await aws?.close();
  aws = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** us-east-1 and eu-west-1, `instancesEach` instances on optional in each. */
function twoRegions(instancesEach = 2): FakeFleet {
  let n = 0;
  return handFleet(['us-east-1', 'eu-west-1'], (r) => {
    for (let k = 0; k < instancesEach; k++) add(r, numberedInstance(++n));
  });
}

function region(name: string): FakeRegion {
  return fakeRegion(aws as FakeAws, name);
}

/** A fleet command in JSON; change commands (all but discover) get the test's journal. */
async function cli(args: string[], regions = 'us-east-1,eu-west-1') {
  const journal = args[0] === 'discover' ? [] : ['--journal', join(dir, 'j.db')];
  const r = await fleetCli(aws as FakeAws, regions.split(','), dir, [...args, ...journal]);
  // Untyped: each test reads what its command's document holds.
  return { ...r, json: r.doc as ReturnType<typeof JSON.parse> };
}

describe("each region's effective state", () => {
  it('discover and defaults show the defaults, enforcement and who manages them', async () => {
    aws = await startFakeAws({ fleet: twoRegions() });
    region('us-east-1').defaults = {
      httpTokens: 'required',
      httpTokensEnforced: 'enabled',
      managedBy: 'declarative-policy',
      managedExceptionMessage: POLICY_MESSAGE,
    };
    region('eu-west-1').defaults = { httpTokens: 'optional' };
    const d = await cli(['defaults']);
    expect(d.code, d.stderr).toBe(0);
    const byRegion = new Map(
      (d.json.defaults as Array<Record<string, unknown>>).map((x) => [x['region'], x]),
    );
    expect(byRegion.get('us-east-1')).toMatchObject({
      read: true,
      httpTokens: 'required',
      httpTokensEnforced: 'enabled',
      managedBy: 'declarative-policy',
      managedExceptionMessage: POLICY_MESSAGE,
    });
    expect(byRegion.get('eu-west-1')).toMatchObject({
      httpTokens: 'optional',
      httpTokensEnforced: null,
      managedBy: 'account',
    });
    const disc = await cli(['discover', '--fail-on', 'none']);
    const scans = new Map((disc.json.scans as Array<Record<string, unknown>>).map((s) => [s['region'], s]));
    expect(scans.get('us-east-1')).toMatchObject({
      defaults: { httpTokensEnforced: 'enabled' },
      defaultsManagement: { managedBy: 'declarative-policy', exceptionMessage: POLICY_MESSAGE },
    });
    const table = await runInProcess(
      [
        'fleet',
        'defaults',
        '--endpoint-url',
        aws.url,
        '--regions',
        'us-east-1,eu-west-1',
        '--format',
        'table',
      ],
      { env: fakeCredentialsEnv('us-east-1') },
    );
    expect(table.stdout).toContain('TOKENS_ENFORCED');
    expect(table.stdout).toMatch(/us-east-1 .*required .*enabled .*declarative-policy/);
    expect(table.stdout).toContain('declarative-policy');
    expect(table.stdout).toContain('go/imds');
  });
});

describe('fleet defaults --enforce / --no-enforce', () => {
  it('DryRun, journal and exact rollback; a region a declarative policy manages is refused before any call', async () => {
    aws = await startFakeAws({ fleet: twoRegions() });
    region('us-east-1').defaults = {
      managedBy: 'declarative-policy',
      managedExceptionMessage: POLICY_MESSAGE,
    };
    region('eu-west-1').defaults = { httpPutResponseHopLimit: 2 };
    const modify = (r: string) =>
      (aws as FakeAws).calls.count({ action: 'ModifyInstanceMetadataDefaults', region: r });

    const dry = await cli(['defaults', '--enforce', '--dry-run']);
    expect(dry.code).toBe(1);
    expect(modify('us-east-1')).toBe(0);
    expect(
      aws.calls.count({
        action: 'ModifyInstanceMetadataDefaults',
        region: 'eu-west-1',
        errorCode: 'DryRunOperation',
      }),
    ).toBe(1);
    expect(dry.stderr).toContain('1 change(s) blocked (1 managed-by-policy)');
    const blocked = (dry.json as ChangeDocument).items.find((i) => i.region === 'us-east-1');
    expect(blocked).toMatchObject({ action: 'blocked', status: 'blocked' });
    expect(blocked?.blocked?.detail).toContain(POLICY_MESSAGE);
    expect(region('eu-west-1').defaults.httpTokensEnforced).toBeUndefined();

    const on = await cli(['defaults', '--enforce', '--yes']);
    expect(on.code).toBe(1); // one region blocked
    expect(modify('us-east-1')).toBe(0);
    expect(region('eu-west-1').defaults).toEqual({
      httpPutResponseHopLimit: 2,
      httpTokensEnforced: 'enabled',
    });
    expect((on.json as ChangeDocument).items.find((i) => i.region === 'eu-west-1')?.status).toBe('verified');

    const back = await cli(['rollback', '--yes']);
    expect(back.code, back.stderr).toBe(0);
    // Exactly as before: no preference again (not "disabled"), the hop limit kept.
    expect(region('eu-west-1').defaults).toEqual({ httpPutResponseHopLimit: 2 });
    expect(modify('us-east-1')).toBe(0);

    const off = await cli(['defaults', '--no-enforce', '--yes'], 'eu-west-1');
    expect(off.code, off.stderr).toBe(0);
    expect(region('eu-west-1').defaults.httpTokensEnforced).toBe('disabled');
  });
});

describe('enforcement-aware plans', () => {
  it('a rollback to IMDSv1 in a region that enforces IMDSv2 since is blocked in the plan, never sent', async () => {
    aws = await startFakeAws({ fleet: twoRegions() });
    const h = await cli(['harden', '--yes'], 'eu-west-1');
    expect(h.code, h.stderr).toBe(0);
    region('eu-west-1').defaults = { httpTokensEnforced: 'enabled' };
    aws.calls.clear();
    const r = await cli(['rollback', '--yes'], 'eu-west-1');
    expect(r.code).toBe(1);
    const doc = r.json as ChangeDocument;
    expect(doc.counts).toMatchObject({ change: 0, blocked: 2 });
    for (const i of doc.items) {
      expect(i.action).toBe('blocked');
      expect(i.blocked?.detail).toContain('HttpTokensEnforced=enabled');
    }
    expect(r.stderr).toContain('2 change(s) blocked (2 tokens-enforced)');
    expect(r.stderr).toContain('[IMDSGUARD_E_CHANGE_BLOCKED]');
    // Never sent: no UnsupportedOperation halfway, nothing changed.
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(0);
    for (const i of region('eu-west-1').instances.values())
      expect(i.metadataOptions.httpTokens).toBe('required');
  });

  it('a hop-limit change under enforcement goes ahead on required instances and is blocked on optional ones', async () => {
    aws = await startFakeAws({ fleet: twoRegions() });
    const eu = region('eu-west-1');
    const [first] = [...eu.instances.values()];
    if (!first) throw new Error('no instance');
    first.metadataOptions.httpTokens = 'required';
    eu.defaults = { httpTokensEnforced: 'enabled' };
    const r = await cli(['hop-limit', '2', '--yes'], 'eu-west-1');
    expect(r.code).toBe(1);
    const byId = new Map((r.json as ChangeDocument).items.map((i) => [i.resourceId, i]));
    expect(byId.get(first.instanceId)?.status).toBe('verified');
    expect([...byId.values()].filter((i) => i.action === 'blocked')).toHaveLength(1);
    expect(
      aws.calls.count({ action: 'ModifyInstanceMetadataOptions', errorCode: 'UnsupportedOperation' }),
    ).toBe(0);
  });
});

describe('readiness to enforce', () => {
  it('per region: refused launches and instances still making IMDSv1 calls, with their evidence', async () => {
    const m = mixedUsageFleet({
      nowMs: Date.now(),
      accounts: [A],
      regions: ['us-east-1'],
      perRegion: onlyKinds({ v1: 1, quiet: 1 }),
    });
    const r = m.fleet.accounts.get(A)?.regions.get('us-east-1') as FakeRegion;
    r.launchTemplates.push({
      launchTemplateId: 'lt-0000000000000000a',
      launchTemplateName: 'web',
      createTime: new Date(Date.UTC(2025, 0, 1)),
      defaultVersion: 1,
      versions: [
        {
          versionNumber: 1,
          createTime: new Date(Date.UTC(2025, 0, 1)),
          data: { imageId: 'ami-00000000000000001', metadataOptions: { httpTokens: 'optional' } },
        },
      ],
    });
    r.autoScalingGroups.push({
      name: 'web-asg',
      arn: 'arn:aws:autoscaling:us-east-1:111111111111:autoScalingGroup:x:autoScalingGroupName/web-asg',
      createdTime: new Date(Date.UTC(2025, 0, 1)),
      minSize: 1,
      maxSize: 4,
      desiredCapacity: 2,
      launchTemplate: {
        launchTemplateId: 'lt-0000000000000000a',
        launchTemplateName: 'web',
        version: '$Default',
      },
      instanceIds: [],
    });
    aws = await startFakeAws({ fleet: m.fleet });
    const d = await cli(['defaults', '--readiness'], 'us-east-1');
    expect(d.code, d.stderr).toBe(0);
    const rec = (d.json.defaults as Array<Record<string, unknown>>)[0] as {
      readiness: {
        verdict: string;
        counts: Record<string, number>;
        launches: Array<{ kind: string; resourceId: string }>;
        instances: Array<{ resourceId: string; evidence: { v1Calls: number | null } | null }>;
      };
    };
    expect(rec.readiness.verdict).toBe('would-break');
    expect(rec.readiness.launches.map((b) => `${b.kind}:${b.resourceId}`).sort()).toEqual([
      'auto-scaling-group:web-asg',
      'launch-template:lt-0000000000000000a',
    ]);
    const caller = [...m.kinds].find(([, k]) => k === 'v1')?.[0];
    const quiet = [...m.kinds].find(([, k]) => k === 'quiet')?.[0];
    const ev = new Map(rec.readiness.instances.map((b) => [b.resourceId, b.evidence?.v1Calls]));
    expect(ev.get(caller as string)).toBeGreaterThan(0);
    expect(ev.get(quiet as string)).toBe(0);
    expect(rec.readiness.counts).toMatchObject({ optional: 2, v1Calls: 1 });
    // --enforce shows the same in its plan, before anything is applied.
    const plan = await cli(['defaults', '--enforce'], 'us-east-1');
    expect(plan.code).toBe(0);
    const notes = (plan.json as ChangeDocument).notes.join('\n');
    expect(notes).toContain('readiness to enforce: would-break');
    expect(notes).toContain('web-asg');
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataDefaults' })).toBe(0);
  });
});

describe('the declarative policy of fleet guardrails, attached', () => {
  it('every region it covers reads enforced and managed by the policy, with its message; changes there are blocked before any call', async () => {
    aws = await startFakeAws({ fleet: twoRegions() });
    const printed = await runInProcess([
      'fleet',
      'guardrails',
      '--policy',
      'declarative',
      '--exception-message',
      POLICY_MESSAGE,
    ]);
    expect(printed.code, printed.stderr).toBe(0);
    attachDeclarativePolicy(aws.fleet, [A], printed.stdout);
    const d = await cli(['defaults']);
    expect(d.code, d.stderr).toBe(0);
    for (const rec of d.json.defaults as Array<Record<string, unknown>>) {
      expect(rec).toMatchObject({
        httpTokens: 'required',
        httpPutResponseHopLimit: 2,
        httpEndpoint: 'enabled',
        instanceMetadataTags: null,
        httpTokensEnforced: 'enabled',
        managedBy: 'declarative-policy',
        managedExceptionMessage: POLICY_MESSAGE,
      });
    }
    const set = await cli(['defaults', '--no-enforce', '--yes']);
    expect(set.code).toBe(1);
    expect(set.stderr).toContain('2 change(s) blocked (2 managed-by-policy)');
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataDefaults' })).toBe(0);
    // Instances still on optional cannot be relaxed or rolled back to it there either.
    const hop = await cli(['hop-limit', '3', '--yes']);
    expect((hop.json as ChangeDocument).counts).toMatchObject({ change: 0, blocked: 4 });
    expect((hop.json as ChangeDocument).items[0]?.blocked?.detail).toContain('declarative policy');
  });

  it('a malformed policy is refused as AWS refuses it, and nothing is attached', async () => {
    aws = await startFakeAws({ fleet: twoRegions() });
    const bad = JSON.stringify({
      ec2_attributes: { instance_metadata_defaults: { http_tokens: { '@@assign': 'no-preference' } } },
    });
    expect(() => attachDeclarativePolicy((aws as FakeAws).fleet, [A], bad)).toThrow(
      /does not meet the requirements/,
    );
    expect(region('us-east-1').defaults.managedBy).toBeUndefined();
  });
});
