/**
 * The real AWS SDK v3 against fake-aws over HTTP: pagination, reservations with many instances,
 * throttling, AssumeRole failure, disabled regions, expired sessions, a fleet of thousands.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AwsClientFactory } from '../../src/fleet/aws/clients.js';
import { resolveTargets } from '../../src/fleet/aws/targets.js';
import { collectInventory } from '../../src/fleet/inventory/collect.js';
import { allowsImdsV1, type Inventory } from '../../src/fleet/inventory/model.js';
import { findFindings } from '../../src/fleet/posture/findings.js';
import { groupByRole } from '../../src/fleet/posture/roles.js';
import { discoverDocumentSchema } from '../../src/report/fleet-schema.js';
import { runInProcess } from '../support/cli.js';
import {
  allInstances,
  countInstances,
  FAKE_CREDENTIALS,
  type FakeAws,
  fakeCredentialsEnv,
  type GenerateFleetOptions,
  startFakeAws,
} from '../support/fake-aws/index.js';
import { waitFor } from '../support/wait.js';

let aws: FakeAws | undefined;
let factory: AwsClientFactory | undefined;

afterEach(async () => {
  factory?.destroy();
  factory = undefined;
  await aws?.close();
  aws = undefined;
});

async function setup(gen: GenerateFleetOptions): Promise<FakeAws> {
  aws = await startFakeAws({ generate: gen });
  return aws;
}

function makeFactory(a: FakeAws, maxAttempts = 8): AwsClientFactory {
  factory = new AwsClientFactory({
    endpointUrl: a.url,
    credentials: FAKE_CREDENTIALS,
    defaultRegion: 'us-east-1',
    maxAttempts,
  });
  return factory;
}

function cliEnv(a: FakeAws): Record<string, string> {
  return { ...fakeCredentialsEnv(), FAKE_URL: a.url };
}

function accountIds(a: FakeAws): string[] {
  return [...a.fleet.accounts.keys()];
}

describe('fleet discover against fake-aws (real SDK)', () => {
  // In-process, over thousands of fake instances: seconds, more on a loaded machine.
  it('pages through several DescribeInstances pages and keeps every instance of every reservation', async () => {
    const a = await setup({
      accounts: 1,
      regions: ['us-east-1'],
      instancesPerRegion: 2345,
      maxReservationSize: 6,
      seed: 7,
    });
    const region = a.fleet.accounts.get(a.fleet.managementAccountId)?.regions.get('us-east-1');
    const multi = region?.reservations.filter((r) => r.instanceIds.length > 1) ?? [];
    expect(multi.length).toBeGreaterThan(50);
    const f = makeFactory(a);
    const targets = await resolveTargets(f, { regions: ['us-east-1'] });
    const inv = await collectInventory(f, targets);
    expect(inv.failures).toEqual([]);
    expect(inv.instances).toHaveLength(2345);
    const got = new Set(inv.instances.map((i) => i.instanceId));
    for (const { instance } of allInstances(a.fleet)) expect(got.has(instance.instanceId)).toBe(true);
    for (const r of multi) for (const id of r.instanceIds) expect(got.has(id)).toBe(true);
    // ceil(2345 / 1000) pages, each with MaxResults=1000.
    expect(a.calls.count({ action: 'DescribeInstances' })).toBe(3);
    // One send() per page, no retries.
    expect(f.counter.snapshot().byOperation['ec2:DescribeInstances']).toEqual({
      calls: 3,
      attempts: 3,
      throttled: 0,
      errors: 0,
    });
  }, 60_000);

  it('records the full metadata options, profile, AMI support, template and group of each instance', async () => {
    const a = await setup({
      accounts: 1,
      regions: ['us-east-1'],
      instancesPerRegion: 300,
      seed: 3,
      asgShare: 0.6,
    });
    const f = makeFactory(a);
    const inv = await collectInventory(f, await resolveTargets(f, { regions: ['us-east-1'] }));
    const region = a.fleet.accounts.get(a.fleet.managementAccountId)?.regions.get('us-east-1');
    if (!region) throw new Error('no region');
    for (const rec of inv.instances) {
      const src = region.instances.get(rec.instanceId);
      if (!src) throw new Error(`unknown ${rec.instanceId}`);
      expect(rec.metadataOptions).toEqual({
        state: src.metadataOptions.state,
        httpTokens: src.metadataOptions.httpTokens,
        httpEndpoint: src.metadataOptions.httpEndpoint,
        httpPutResponseHopLimit: src.metadataOptions.httpPutResponseHopLimit,
        httpProtocolIpv6: src.metadataOptions.httpProtocolIpv6,
        instanceMetadataTags: src.metadataOptions.instanceMetadataTags,
      });
      expect(rec.state).toBe(src.state);
      expect(rec.instanceProfileArn).toBe(src.instanceProfileArn ?? null);
      const profileName = src.instanceProfileArn?.split('/').pop();
      const profile = profileName
        ? a.fleet.accounts.get(rec.accountId)?.instanceProfiles.get(profileName)
        : undefined;
      expect(rec.roleNames).toEqual(profile ? profile.roles : null);
      expect(rec.launchTime).toBe(src.launchTime.toISOString());
      expect(rec.imageImdsSupport).toBe(region.images.get(src.imageId)?.imdsSupport ?? null);
      expect(rec.autoScalingGroupName).toBe(src.tags['aws:autoscaling:groupName'] ?? null);
      expect(rec.launchTemplate?.launchTemplateId ?? null).toBe(src.tags['aws:ec2launchtemplate:id'] ?? null);
      if (rec.launchTemplate) expect(rec.launchTemplate.launchTemplateName).toMatch(/^tmpl-/);
    }
    const scan = inv.scans[0];
    if (!scan) throw new Error('no scan');
    expect(scan.launchTemplates).toHaveLength(region.launchTemplates.length);
    for (const t of scan.launchTemplates) {
      const src = region.launchTemplates.find((x) => x.launchTemplateId === t.launchTemplateId);
      expect(t.defaultVersionNumber).toBe(src?.defaultVersion);
      expect(t.versions.some((v) => v.versionNumber === t.defaultVersionNumber && v.isDefault)).toBe(true);
      expect(t.versions.some((v) => v.versionNumber === t.latestVersionNumber)).toBe(true);
    }
    // Versions pinned by groups are described too.
    for (const g of scan.autoScalingGroups) {
      const ver = g.launchTemplate?.version;
      if (ver && /^\d+$/.test(ver)) {
        const t = scan.launchTemplates.find((x) => x.launchTemplateId === g.launchTemplate?.launchTemplateId);
        expect(t?.versions.some((v) => v.versionNumber === Number(ver))).toBe(true);
      }
    }
    expect(scan.autoScalingGroups).toHaveLength(region.autoScalingGroups.length);
    expect(scan.launchConfigurations).toHaveLength(region.launchConfigurations.length);
    expect(scan.defaults).not.toBeNull();
    // Findings agree with the fleet itself.
    const findings = findFindings(inv);
    const expectedWithRole = [...region.instances.values()].filter(
      (i) =>
        i.state !== 'terminated' &&
        i.instanceProfileArn !== undefined &&
        allowsImdsV1({
          httpTokens: i.metadataOptions.httpTokens,
          httpEndpoint: i.metadataOptions.httpEndpoint,
        }),
    ).length;
    expect(findings.filter((x) => x.id === 'instance-imdsv1-with-role')).toHaveLength(expectedWithRole);
    expect(expectedWithRole).toBeGreaterThan(0);
  });

  // In-process, through the SDK's retry backoff: seconds, more on a loaded machine.
  it('retries throttled calls (RequestLimitExceeded) with the adaptive retry and completes', async () => {
    const a = await setup({ accounts: 1, regions: ['us-east-1'], instancesPerRegion: 2100, seed: 11 });
    a.faults.throttle({ action: 'DescribeInstances', next: 2 });
    const f = makeFactory(a);
    const inv = await collectInventory(f, await resolveTargets(f, { regions: ['us-east-1'] }));
    expect(inv.failures).toEqual([]);
    expect(inv.instances).toHaveLength(2100);
    expect(a.calls.count({ action: 'DescribeInstances', errorCode: 'RequestLimitExceeded' })).toBe(2);
    expect(a.calls.count({ action: 'DescribeInstances', failed: false })).toBe(3);
    expect(f.counter.snapshot().byOperation['ec2:DescribeInstances']).toMatchObject({
      calls: 3,
      attempts: 5,
      throttled: 2,
    });
  }, 60_000);

  // In-process, through the SDK's retry backoff: seconds, more on a loaded machine.
  it('reports a throttling storm that outlasts the retries as a failure of that region only', async () => {
    const a = await setup({
      accounts: 1,
      regions: ['us-east-1', 'eu-west-1'],
      instancesPerRegion: 20,
      seed: 12,
    });
    a.faults.throttle({ action: 'DescribeInstances', region: 'eu-west-1' });
    const f = makeFactory(a, 2);
    const inv = await collectInventory(f, await resolveTargets(f, { regions: ['us-east-1', 'eu-west-1'] }));
    expect(inv.instances).toHaveLength(20);
    expect(inv.failures).toHaveLength(1);
    expect(inv.failures[0]).toMatchObject({
      region: 'eu-west-1',
      stage: 'instances',
      code: 'IMDSGUARD_E_AWS_THROTTLED',
    });
  }, 60_000);

  it('keeps scanning other accounts when AssumeRole is denied in one, and exits 1', async () => {
    const a = await setup({
      accounts: 3,
      regions: ['us-east-1', 'eu-west-1'],
      instancesPerRegion: 40,
      seed: 5,
    });
    const [mgmt, second, third] = accountIds(a) as [string, string, string];
    a.faults.denyAssumeRole(second);
    const r = await runInProcess(
      [
        'fleet',
        'discover',
        '--endpoint-url',
        a.url,
        '--regions',
        'us-east-1,eu-west-1',
        '--accounts',
        [mgmt, second, third].join(','),
        '--role',
        'ImdsguardAudit',
        '--format',
        'json',
        '--fail-on',
        'none',
      ],
      { env: cliEnv(a) },
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as Inventory & { failures: Inventory['failures'] };
    expect(doc.failures).toHaveLength(1);
    expect(doc.failures[0]).toMatchObject({
      accountId: second,
      region: null,
      stage: 'assume-role',
      code: 'IMDSGUARD_E_AWS_ASSUME_ROLE',
      awsCode: 'AccessDenied',
    });
    expect(doc.accounts.find((x) => x.accountId === second)?.status).toBe('failed');
    expect(doc.instances.filter((i) => i.accountId === mgmt)).toHaveLength(80);
    expect(doc.instances.filter((i) => i.accountId === third)).toHaveLength(80);
    expect(doc.instances.filter((i) => i.accountId === second)).toHaveLength(0);
    expect(r.stderr).toContain('partial failure');
    // The caller's own account is scanned with its own credentials, not through AssumeRole.
    expect(a.calls.count({ action: 'AssumeRole' })).toBe(2);
  });

  it('reports a disabled region for its account and keeps the rest', async () => {
    const a = await setup({
      accounts: 2,
      regions: ['us-east-1', 'eu-west-1'],
      instancesPerRegion: 30,
      seed: 6,
    });
    const [, second] = accountIds(a) as [string, string];
    a.faults.disableRegion(second, 'eu-west-1');
    const f = makeFactory(a);
    const targets = await resolveTargets(f, {
      regions: ['us-east-1', 'eu-west-1'],
      org: true,
      role: 'ImdsguardAudit',
    });
    expect(targets.accounts.map((x) => x.accountId).sort()).toEqual(accountIds(a).sort());
    const inv = await collectInventory(f, targets);
    expect(inv.failures).toHaveLength(1);
    expect(inv.failures[0]).toMatchObject({
      accountId: second,
      region: 'eu-west-1',
      stage: 'instances',
      code: 'IMDSGUARD_E_AWS_REGION',
      awsCode: 'OptInRequired',
    });
    expect(inv.instances).toHaveLength(90);
    expect(inv.scans.find((s) => s.accountId === second && s.region === 'eu-west-1')?.status).toBe('failed');
  });

  it('--all-regions lists the regions DescribeRegions reports as enabled', async () => {
    const a = await setup({ accounts: 1, regions: ['us-east-1'], instancesPerRegion: 3, seed: 13 });
    a.faults.disableRegion(a.fleet.managementAccountId, 'ap-southeast-2');
    const f = makeFactory(a);
    const targets = await resolveTargets(f, { allRegions: true });
    expect(targets.regions).toEqual(a.fleet.regionNames.filter((r) => r !== 'ap-southeast-2').sort());
    expect(targets.accounts).toEqual([{ accountId: a.fleet.managementAccountId, name: null, roleArn: null }]);
    const inv = await collectInventory(f, targets);
    expect(inv.failures).toEqual([]);
    expect(inv.scans).toHaveLength(targets.regions.length);
    expect(inv.instances).toHaveLength(3);
  });

  it('marks a scan partial when one resource type is denied', async () => {
    const a = await setup({ accounts: 1, regions: ['us-east-1'], instancesPerRegion: 10, seed: 8 });
    a.faults.fail({
      action: 'DescribeLaunchConfigurations',
      code: 'AccessDenied',
      status: 403,
      message: 'not allowed',
    });
    const f = makeFactory(a);
    const inv = await collectInventory(f, await resolveTargets(f, { regions: ['us-east-1'] }));
    expect(inv.instances).toHaveLength(10);
    expect(inv.scans[0]?.status).toBe('partial');
    expect(inv.failures).toEqual([
      expect.objectContaining({
        stage: 'launch-configurations',
        code: 'IMDSGUARD_E_AWS_ACCESS',
        awsCode: 'AccessDenied',
      }),
    ]);
  });

  it('resolves instance profile roles once per profile and account, and reports an IAM refusal', async () => {
    const a = await setup({
      accounts: 2,
      regions: ['us-east-1', 'eu-west-1'],
      instancesPerRegion: 200,
      seed: 17,
    });
    const [mgmt, second] = accountIds(a) as [string, string];
    const f = makeFactory(a);
    const targets = await resolveTargets(f, {
      regions: ['us-east-1', 'eu-west-1'],
      org: true,
      role: 'ImdsguardAudit',
    });
    a.faults.fail({
      service: 'iam',
      accountId: second,
      code: 'AccessDenied',
      status: 403,
      message: 'no iam',
    });
    const inv = await collectInventory(f, targets);
    const profilesInUse = new Set(
      inv.instances
        .filter((i) => i.accountId === mgmt && i.instanceProfileName)
        .map((i) => i.instanceProfileName),
    );
    expect(a.calls.count({ action: 'GetInstanceProfile', accountId: mgmt })).toBe(profilesInUse.size);
    const web = inv.instances.find((i) => i.accountId === mgmt && i.instanceProfileName === 'web');
    expect(web?.roleNames).toEqual(['web-role']);
    expect(
      inv.instances.find((i) => i.accountId === mgmt && i.instanceProfileName === 'batch')?.roleNames,
    ).toEqual([]);
    expect(inv.instances.filter((i) => i.accountId === second).every((i) => i.roleNames === null)).toBe(true);
    expect(inv.failures).toEqual([
      expect.objectContaining({
        accountId: second,
        region: null,
        stage: 'roles',
        code: 'IMDSGUARD_E_AWS_ACCESS',
      }),
    ]);
    expect(inv.instances).toHaveLength(800);
    const finding = findFindings(inv).find(
      (x) => x.id === 'instance-imdsv1-with-role' && x.message.includes('(role web-role)'),
    );
    expect(finding).toBeDefined();
  });

  it('stops on Ctrl-C during a scan with IMDSGUARD_E_INTERRUPTED and writes nothing', async () => {
    aws = await startFakeAws({
      generate: { accounts: 1, regions: ['us-east-1'], instancesPerRegion: 20 },
      latencyMs: 400,
    });
    const a = aws;
    let stop: (signal: string) => void = () => {};
    const shutdown = new Promise<string>((resolve) => {
      stop = resolve;
    });
    const pending = runInProcess(
      ['fleet', 'discover', '--endpoint-url', a.url, '--regions', 'us-east-1', '--format', 'json'],
      {
        env: cliEnv(a),
        shutdown,
      },
    );
    // Ctrl-C once the scan has begun: each call takes 400 ms, a whole scan makes a dozen.
    await waitFor(() => a.calls.totalCalls > 0, 'the first AWS call');
    const callsAtStop = a.calls.totalCalls;
    stop('SIGINT');
    const r = await pending;
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('stopped by SIGINT');
    expect(r.stderr).toContain('IMDSGUARD_E_INTERRUPTED');
    // Nothing more was asked of AWS after the interrupt.
    expect(a.calls.totalCalls).toBe(callsAtStop);
  });

  it('fails with a clear IMDSGUARD_E_AWS_AUTH error when the session expired', async () => {
    const a = await setup({ accounts: 1, regions: ['us-east-1'], instancesPerRegion: 5 });
    a.faults.expireCredentials({ accountId: a.fleet.managementAccountId });
    const r = await runInProcess(
      ['fleet', 'discover', '--endpoint-url', a.url, '--regions', 'us-east-1', '--format', 'json'],
      {
        env: cliEnv(a),
      },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('IMDSGUARD_E_AWS_AUTH');
    expect(r.stderr).toContain('ExpiredToken');
    expect(r.stderr).toContain('hint: refresh your SSO session');
  });

  // In-process, over thousands of fake instances: seconds, more on a loaded machine.
  it('covers a multi-region, multi-account fleet of several thousand instances completely', async () => {
    const regions = ['eu-west-1', 'us-east-1', 'us-west-2'];
    const a = await setup({ accounts: 3, regions, instancesPerRegion: 700, seed: 21 });
    const total = countInstances(a.fleet);
    expect(total).toBe(3 * 3 * 700);
    const r = await runInProcess(
      [
        'fleet',
        'discover',
        '--endpoint-url',
        a.url,
        '--regions',
        regions.join(','),
        '--org',
        '--role',
        'ImdsguardAudit',
        '--format',
        'json',
        '--verbose',
      ],
      { env: cliEnv(a) },
    );
    const doc = JSON.parse(r.stdout) as {
      schemaVersion: number;
      instances: Array<{ accountId: string; region: string; instanceId: string }>;
      failures: unknown[];
      summary: {
        overall: { instances: number };
        byAccountRegion: Array<{ accountId: string; region: string; instances: number }>;
      };
      stats: { apiCalls: { calls: number } };
    };
    expect(doc.schemaVersion).toBe(1);
    expect(() => discoverDocumentSchema.parse(doc)).not.toThrow();
    expect(doc.failures).toEqual([]);
    expect(doc.instances).toHaveLength(total);
    expect(new Set(doc.instances.map((i) => `${i.accountId}/${i.region}/${i.instanceId}`)).size).toBe(total);
    for (const acct of accountIds(a)) {
      for (const region of regions) {
        expect(doc.instances.filter((i) => i.accountId === acct && i.region === region)).toHaveLength(
          countInstances(a.fleet, { accountId: acct, region }),
        );
        // One page of 1,000 per account and region.
        expect(a.calls.count({ action: 'DescribeInstances', accountId: acct, region })).toBe(1);
      }
    }
    expect(r.stderr).toContain('ec2:DescribeInstances');
    expect(r.code).toBe(1); // high findings exist in a generated fleet
  }, 60_000);

  it('fleet roles groups every live instance by profile, across pages and reservations', async () => {
    const a = await setup({
      accounts: 2,
      regions: ['us-east-1'],
      instancesPerRegion: 1500,
      maxReservationSize: 5,
      seed: 9,
    });
    const f = makeFactory(a);
    const inv = await collectInventory(
      f,
      await resolveTargets(f, { regions: ['us-east-1'], org: true, role: 'ImdsguardAudit' }),
      {
        include: { defaults: false, templates: false, autoScaling: false, images: false },
      },
    );
    const groups = groupByRole(inv.instances);
    const live = [...allInstances(a.fleet)].filter((x) => x.instance.state !== 'terminated');
    expect(groups.reduce((n, g) => n + g.instanceIds.length, 0)).toBe(live.length);
    for (const { accountId, instance } of live) {
      const g = groups.find(
        (x) => x.accountId === accountId && x.instanceProfileArn === (instance.instanceProfileArn ?? null),
      );
      expect(g?.instanceIds).toContain(instance.instanceId);
    }
    // Only instances were asked for.
    expect(a.calls.count({ action: 'DescribeLaunchTemplates' })).toBe(0);
    expect(a.calls.count({ action: 'DescribeInstances' })).toBe(4);
  });
});
