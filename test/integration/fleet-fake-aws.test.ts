/**
 * fake-aws itself, through the real SDK: the write actions the fleet changes use, validation, filters,
 * rate limits and session expiry. Other fleet tests rely on these semantics.
 */
import {
  CreateLaunchTemplateVersionCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataOptionsCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterEach, describe, expect, it } from 'vitest';
import { FAKE_CREDENTIALS, type FakeAws, generateFleet, startFakeAws } from '../support/fake-aws/index.js';

let aws: FakeAws | undefined;
const clients: Array<{ destroy(): void }> = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await aws?.close();
  aws = undefined;
});

function ec2(a: FakeAws, extra: Record<string, unknown> = {}): EC2Client {
  const c = new EC2Client({
    endpoint: a.url,
    region: 'us-east-1',
    credentials: FAKE_CREDENTIALS,
    maxAttempts: 1,
    ...extra,
  });
  clients.push(c);
  return c;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).name;
  }
  return 'no error';
}

describe('fake-aws', () => {
  it('generates the same fleet from the same seed, and a different one from another', () => {
    const ids = (seed: number) =>
      [...generateFleet({ accounts: 2, instancesPerRegion: 50, seed }).accounts.values()].flatMap((a) => [
        ...(a.regions.get('us-east-1')?.instances.keys() ?? []),
      ]);
    expect(ids(4)).toEqual(ids(4));
    expect(ids(4)).not.toEqual(ids(5));
    expect(new Set(ids(4)).size).toBe(100);
  });

  it('ModifyInstanceMetadataOptions: DryRun changes nothing; omitted fields follow the API reference; pending then applied', async () => {
    let now = Date.UTC(2026, 2, 1);
    aws = await startFakeAws({ generate: { instancesPerRegion: 5 }, pendingForMs: 30_000, clock: () => now });
    const region = aws.fleet.accounts.get(aws.fleet.managementAccountId)?.regions.get('us-east-1');
    const inst = [...(region?.instances.values() ?? [])].find((i) => i.state !== 'terminated');
    if (!inst || !region) throw new Error('no instance');
    inst.state = 'running';
    const image = region.images.get(inst.imageId);
    if (image) image.imdsSupport = undefined;
    region.defaults = {};
    inst.metadataOptions = {
      state: 'applied',
      httpTokens: 'required',
      httpEndpoint: 'disabled',
      httpPutResponseHopLimit: 3,
      httpProtocolIpv6: 'enabled',
      instanceMetadataTags: 'enabled',
    };
    const c = ec2(aws);
    const before = structuredClone(inst.metadataOptions);
    expect(
      await codeOf(
        c.send(
          new ModifyInstanceMetadataOptionsCommand({
            InstanceId: inst.instanceId,
            HttpPutResponseHopLimit: 2,
            DryRun: true,
          }),
        ),
      ),
    ).toBe('DryRunOperation');
    expect(inst.metadataOptions).toEqual(before);
    // Only the hop limit sent: endpoint and hop limit are "maintained" (documented); HttpTokens takes
    // its documented default (no account default, AMI without ImdsSupport: optional); IPv6 and tags are
    // not documented for a modify and take their launch defaults.
    const out = await c.send(
      new ModifyInstanceMetadataOptionsCommand({ InstanceId: inst.instanceId, HttpPutResponseHopLimit: 2 }),
    );
    expect(out.InstanceMetadataOptions).toEqual({
      State: 'pending',
      HttpTokens: 'optional',
      HttpEndpoint: 'disabled',
      HttpPutResponseHopLimit: 2,
      HttpProtocolIpv6: 'disabled',
      InstanceMetadataTags: 'disabled',
    });
    // The account default decides an omitted HttpTokens before the AMI does.
    region.defaults = { httpTokens: 'required' };
    await c.send(
      new ModifyInstanceMetadataOptionsCommand({ InstanceId: inst.instanceId, HttpEndpoint: 'enabled' }),
    );
    expect(inst.metadataOptions.httpTokens).toBe('required');
    region.defaults = {};
    if (image) image.imdsSupport = 'v2.0';
    await c.send(
      new ModifyInstanceMetadataOptionsCommand({ InstanceId: inst.instanceId, HttpEndpoint: 'enabled' }),
    );
    expect(inst.metadataOptions.httpTokens).toBe(image ? 'required' : 'optional');
    const state = async () =>
      (await c.send(new DescribeInstancesCommand({ InstanceIds: [inst.instanceId] }))).Reservations?.[0]
        ?.Instances?.[0]?.MetadataOptions?.State;
    expect(await state()).toBe('pending');
    now += 30_000;
    expect(await state()).toBe('applied');
    // A stopped instance's change stays pending until it starts.
    inst.state = 'stopped';
    await c.send(
      new ModifyInstanceMetadataOptionsCommand({ InstanceId: inst.instanceId, HttpTokens: 'required' }),
    );
    now += 3_600_000;
    expect(await state()).toBe('pending');
    inst.state = 'running';
    expect(await state()).toBe('applied');
    expect(
      await codeOf(
        c.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: 'i-nope', HttpTokens: 'required' })),
      ),
    ).toBe('InvalidInstanceID.NotFound');
    expect(
      await codeOf(
        c.send(
          new ModifyInstanceMetadataOptionsCommand({
            InstanceId: inst.instanceId,
            HttpPutResponseHopLimit: 65,
          }),
        ),
      ),
    ).toBe('InvalidParameterValue');
  });

  it('account-level enforcement: defaults report it, HttpTokens=optional is refused, a declarative policy makes the defaults read-only', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 5 } });
    const region = aws.fleet.accounts.get(aws.fleet.managementAccountId)?.regions.get('us-east-1');
    const inst = [...(region?.instances.values() ?? [])].find((i) => i.state !== 'terminated');
    if (!inst || !region) throw new Error('no instance');
    const c = ec2(aws);
    region.defaults = {};
    expect((await c.send(new GetInstanceMetadataDefaultsCommand({}))).AccountLevel).toEqual({
      ManagedBy: 'account',
    });
    await c.send(
      new ModifyInstanceMetadataDefaultsCommand({ HttpTokens: 'required', HttpTokensEnforced: 'enabled' }),
    );
    expect((await c.send(new GetInstanceMetadataDefaultsCommand({}))).AccountLevel).toEqual({
      HttpTokens: 'required',
      HttpTokensEnforced: 'enabled',
      ManagedBy: 'account',
    });
    inst.metadataOptions.httpTokens = 'required';
    const all = {
      InstanceId: inst.instanceId,
      HttpEndpoint: 'enabled' as const,
      HttpPutResponseHopLimit: 1,
      HttpProtocolIpv6: 'disabled' as const,
      InstanceMetadataTags: 'disabled' as const,
    };
    expect(
      await codeOf(c.send(new ModifyInstanceMetadataOptionsCommand({ ...all, HttpTokens: 'optional' }))),
    ).toBe('UnsupportedOperation');
    expect(inst.metadataOptions.httpTokens).toBe('required');
    await c.send(new ModifyInstanceMetadataOptionsCommand({ ...all, HttpTokens: 'required' }));
    region.defaults = {
      httpTokens: 'required',
      httpTokensEnforced: 'enabled',
      managedBy: 'declarative-policy',
      managedExceptionMessage: 'IMDSv2 only: ask platform-team',
    };
    expect((await c.send(new GetInstanceMetadataDefaultsCommand({}))).AccountLevel).toMatchObject({
      ManagedBy: 'declarative-policy',
      ManagedExceptionMessage: 'IMDSv2 only: ask platform-team',
    });
    const err = await c
      .send(new ModifyInstanceMetadataDefaultsCommand({ HttpTokensEnforced: 'disabled', DryRun: true }))
      .catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ name: 'UnsupportedOperation', message: 'IMDSv2 only: ask platform-team' });
  });

  it('deny: UnauthorizedOperation for DryRun calls and real ones, nothing changed', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 5 } });
    const region = aws.fleet.accounts.get(aws.fleet.managementAccountId)?.regions.get('us-east-1');
    const inst = [...(region?.instances.values() ?? [])].find((i) => i.state !== 'terminated');
    if (!inst) throw new Error('no instance');
    aws.faults.deny({ action: 'ModifyInstanceMetadataOptions' });
    const c = ec2(aws);
    const before = structuredClone(inst.metadataOptions);
    for (const DryRun of [true, false]) {
      expect(
        await codeOf(
          c.send(
            new ModifyInstanceMetadataOptionsCommand({
              InstanceId: inst.instanceId,
              HttpTokens: 'required',
              DryRun,
            }),
          ),
        ),
      ).toBe('UnauthorizedOperation');
    }
    expect(inst.metadataOptions).toEqual(before);
  });

  it('validates DescribeInstances MaxResults and filters, and pages by filter', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 40, seed: 2 } });
    const c = ec2(aws);
    expect(await codeOf(c.send(new DescribeInstancesCommand({ MaxResults: 4 })))).toBe(
      'InvalidParameterValue',
    );
    expect(await codeOf(c.send(new DescribeInstancesCommand({ MaxResults: 1001 })))).toBe(
      'InvalidParameterValue',
    );
    expect(
      await codeOf(c.send(new DescribeInstancesCommand({ Filters: [{ Name: 'bogus', Values: ['x'] }] }))),
    ).toBe('InvalidParameterValue');
    const region = aws.fleet.accounts.get(aws.fleet.managementAccountId)?.regions.get('us-east-1');
    const required = [...(region?.instances.values() ?? [])].filter(
      (i) => i.metadataOptions.httpTokens === 'required',
    );
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const page = await c.send(
        new DescribeInstancesCommand({
          MaxResults: 5,
          NextToken: token,
          Filters: [{ Name: 'metadata-options.http-tokens', Values: ['required'] }],
        }),
      );
      for (const r of page.Reservations ?? [])
        for (const i of r.Instances ?? []) ids.push(i.InstanceId as string);
      token = page.NextToken;
    } while (token);
    expect(ids.sort()).toEqual(required.map((i) => i.instanceId).sort());
  });

  it('CreateLaunchTemplateVersion inherits from SourceVersion, replacing MetadataOptions whole; ModifyLaunchTemplate sets the default', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 5, seed: 3 } });
    const region = aws.fleet.accounts.get(aws.fleet.managementAccountId)?.regions.get('us-east-1');
    const t = region?.launchTemplates[0];
    if (!t) throw new Error('no template');
    const src = t.versions[0];
    if (!src) throw new Error('no version');
    src.data.metadataOptions = { httpTokens: 'optional', httpPutResponseHopLimit: 2 };
    const c = ec2(aws);
    const out = await c.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: t.launchTemplateId,
        SourceVersion: String(src.versionNumber),
        LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' } },
      }),
    );
    const v = out.LaunchTemplateVersion;
    expect(v?.LaunchTemplateData?.ImageId).toBe(src.data.imageId);
    expect(v?.LaunchTemplateData?.MetadataOptions).toMatchObject({
      HttpTokens: 'required',
      HttpEndpoint: 'enabled',
    });
    expect(v?.LaunchTemplateData?.MetadataOptions?.HttpPutResponseHopLimit).toBeUndefined();
    await c.send(
      new ModifyLaunchTemplateCommand({
        LaunchTemplateId: t.launchTemplateId,
        DefaultVersion: String(v?.VersionNumber),
      }),
    );
    expect(t.defaultVersion).toBe(v?.VersionNumber);
    const d = await c.send(
      new DescribeLaunchTemplateVersionsCommand({
        LaunchTemplateId: t.launchTemplateId,
        Versions: ['$Default'],
      }),
    );
    expect(d.LaunchTemplateVersions?.[0]?.VersionNumber).toBe(v?.VersionNumber);
  });

  it('ModifyInstanceMetadataDefaults sets and clears account defaults per region', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 1, seed: 4 } });
    const c = ec2(aws);
    await c.send(
      new ModifyInstanceMetadataDefaultsCommand({ HttpTokens: 'required', HttpPutResponseHopLimit: 2 }),
    );
    expect((await c.send(new GetInstanceMetadataDefaultsCommand({}))).AccountLevel).toMatchObject({
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 2,
    });
    await c.send(
      new ModifyInstanceMetadataDefaultsCommand({ HttpTokens: 'no-preference', HttpPutResponseHopLimit: -1 }),
    );
    expect(
      (await c.send(new GetInstanceMetadataDefaultsCommand({}))).AccountLevel?.HttpTokens,
    ).toBeUndefined();
  });

  it('enforces token-bucket limits per account and region when enabled, and records refusals', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 2, seed: 5 } });
    aws.limits.enable('DescribeInstances', { burst: 3, refillPerSecond: 0.001 });
    const c = ec2(aws);
    for (let i = 0; i < 3; i++) await c.send(new DescribeInstancesCommand({}));
    expect(await codeOf(c.send(new DescribeInstancesCommand({})))).toBe('RequestLimitExceeded');
    expect(aws.limits.wasExceeded).toBe(true);
    expect(aws.limits.exceeded[0]).toMatchObject({ action: 'DescribeInstances', region: 'us-east-1' });
    // Another region has its own bucket.
    await ec2(aws, { region: 'eu-west-1' }).send(new DescribeInstancesCommand({}));
  });

  it('expires assumed-role sessions DurationSeconds after AssumeRole (server clock)', async () => {
    let now = Date.UTC(2026, 2, 1);
    aws = await startFakeAws({
      generate: { accounts: 2, instancesPerRegion: 1, seed: 6 },
      clock: () => now,
    });
    const target = [...aws.fleet.accounts.keys()][1] as string;
    const sts = new STSClient({ endpoint: aws.url, region: 'us-east-1', credentials: FAKE_CREDENTIALS });
    clients.push(sts);
    const creds = (
      await sts.send(
        new AssumeRoleCommand({
          RoleArn: `arn:aws:iam::${target}:role/ImdsguardAudit`,
          RoleSessionName: 'test',
          DurationSeconds: 900,
        }),
      )
    ).Credentials;
    expect(creds?.AccessKeyId?.startsWith(`ASIA${target}`)).toBe(true);
    expect(creds?.Expiration?.getTime()).toBe(now + 900_000);
    const c = ec2(aws, {
      credentials: {
        accessKeyId: creds?.AccessKeyId as string,
        secretAccessKey: creds?.SecretAccessKey as string,
        sessionToken: creds?.SessionToken,
      },
    });
    now += 899_000;
    const ok = await c.send(new DescribeInstancesCommand({}));
    expect(ok.Reservations?.[0]?.OwnerId).toBe(target);
    now += 1_000;
    expect(await codeOf(c.send(new DescribeInstancesCommand({})))).toBe('RequestExpired');
  });

  it('AssumeRole: DurationSeconds above the role MaxSessionDuration is a ValidationError', async () => {
    aws = await startFakeAws({ generate: { accounts: 2, instancesPerRegion: 1, seed: 6 } });
    const target = [...aws.fleet.accounts.keys()][1] as string;
    const account = aws.fleet.accounts.get(target);
    if (!account) throw new Error('no account');
    const sts = new STSClient({ endpoint: aws.url, region: 'us-east-1', credentials: FAKE_CREDENTIALS });
    clients.push(sts);
    const assume = (DurationSeconds: number) =>
      sts.send(
        new AssumeRoleCommand({
          RoleArn: `arn:aws:iam::${target}:role/ImdsguardAudit`,
          RoleSessionName: 'test',
          DurationSeconds,
        }),
      );
    // IAM's default MaxSessionDuration is one hour.
    expect((await assume(3600)).Credentials?.AccessKeyId).toMatch(/^ASIA/);
    const err = await assume(3601).catch((e: unknown) => e as { name?: string; message?: string });
    expect(err).toMatchObject({
      name: 'ValidationError',
      message: 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    });
    account.roleMaxSessionSeconds = new Map([['ImdsguardAudit', 4 * 3600]]);
    expect((await assume(4 * 3600)).Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(await codeOf(assume(4 * 3600 + 1))).toBe('ValidationError');
  });
});
