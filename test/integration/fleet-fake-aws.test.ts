/**
 * fake-aws itself, through the real SDK: the write actions issue 8 builds on, validation, filters,
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

  it('ModifyInstanceMetadataOptions: DryRun changes nothing, unsent fields are kept, pending then applied', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 5 }, pendingForMs: 0 });
    const region = aws.fleet.accounts.get(aws.fleet.managementAccountId)?.regions.get('us-east-1');
    const inst = [...(region?.instances.values() ?? [])].find((i) => i.state !== 'terminated');
    if (!inst) throw new Error('no instance');
    inst.metadataOptions = {
      ...inst.metadataOptions,
      httpTokens: 'optional',
      httpEndpoint: 'disabled',
      httpPutResponseHopLimit: 3,
    };
    const c = ec2(aws);
    const before = structuredClone(inst.metadataOptions);
    expect(
      await codeOf(
        c.send(
          new ModifyInstanceMetadataOptionsCommand({
            InstanceId: inst.instanceId,
            HttpTokens: 'required',
            DryRun: true,
          }),
        ),
      ),
    ).toBe('DryRunOperation');
    expect(inst.metadataOptions).toEqual(before);
    const out = await c.send(
      new ModifyInstanceMetadataOptionsCommand({ InstanceId: inst.instanceId, HttpTokens: 'required' }),
    );
    expect(out.InstanceMetadataOptions).toMatchObject({
      State: 'pending',
      HttpTokens: 'required',
      HttpEndpoint: 'disabled',
      HttpPutResponseHopLimit: 3,
    });
    const read = await c.send(new DescribeInstancesCommand({ InstanceIds: [inst.instanceId] }));
    expect(read.Reservations?.[0]?.Instances?.[0]?.MetadataOptions?.State).toBe('applied');
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

  it('expires assumed-role sessions after sessionSeconds', async () => {
    aws = await startFakeAws({
      generate: { accounts: 2, instancesPerRegion: 1, seed: 6 },
      sessionSeconds: 1,
    });
    const target = [...aws.fleet.accounts.keys()][1] as string;
    const sts = new STSClient({ endpoint: aws.url, region: 'us-east-1', credentials: FAKE_CREDENTIALS });
    clients.push(sts);
    const creds = (
      await sts.send(
        new AssumeRoleCommand({
          RoleArn: `arn:aws:iam::${target}:role/ImdsguardAudit`,
          RoleSessionName: 'test',
        }),
      )
    ).Credentials;
    expect(creds?.AccessKeyId?.startsWith(`ASIA${target}`)).toBe(true);
    const c = ec2(aws, {
      credentials: {
        accessKeyId: creds?.AccessKeyId as string,
        secretAccessKey: creds?.SecretAccessKey as string,
        sessionToken: creds?.SessionToken,
      },
    });
    const ok = await c.send(new DescribeInstancesCommand({}));
    expect(ok.Reservations?.[0]?.OwnerId).toBe(target);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await codeOf(c.send(new DescribeInstancesCommand({})))).toBe('RequestExpired');
  });
});
