/**
 * The small EC2 interface the applier needs, owned by the core; `sdkChangeApi` implements it with the
 * AWS SDK v3 clients of an AwsClientFactory (rate-limited, counted, errors wrapped with account, region
 * and resource). Tests may pass their own implementation.
 */
import {
  CreateLaunchTemplateVersionCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataOptionsCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { ImdsguardError } from '../../errors.js';
import type { AccountTarget, AwsClientFactory } from '../aws/clients.js';
import { awsErrorCode, wrapAwsError } from '../aws/errors.js';
import { toDefaultsRecord, toInstanceRecord, toTemplateVersionRecord } from '../inventory/convert.js';
import type { AccountDefaultsRecord, InstanceMetadataOptions } from '../inventory/model.js';
import type { MetadataValues } from '../plan/types.js';
import { attachRateLimiter, type RateLimiter } from './rate-limit.js';

export interface Where {
  accountId: string;
  region: string;
}

/** What a read-back sees of one instance. */
export interface InstanceReadBack {
  metadataOptions: InstanceMetadataOptions;
  /** The instance's state (running, stopped, ...): a stopped instance's change reads pending until it starts. */
  instanceState: string;
}

export interface TemplateReadBack {
  defaultVersion: number;
  latestVersion: number;
  /** The default version's MetadataOptions (null: none set). */
  metadataOptions: MetadataValues | null;
}

export interface FleetChangeApi {
  /** ModifyInstanceMetadataOptions with every known field. With dryRun, resolves only on DryRunOperation. */
  modifyInstanceMetadata(
    where: Where,
    instanceId: string,
    options: MetadataValues,
    dryRun: boolean,
  ): Promise<void>;
  /** DescribeInstances by ids: each found instance's options and state. */
  readInstanceMetadata(where: Where, instanceIds: readonly string[]): Promise<Map<string, InstanceReadBack>>;
  /** CreateLaunchTemplateVersion from sourceVersion with these MetadataOptions; the new version number (dry run: null). */
  createTemplateVersion(
    where: Where,
    templateId: string,
    sourceVersion: number,
    options: MetadataValues,
    description: string,
    dryRun: boolean,
  ): Promise<number | null>;
  /** ModifyLaunchTemplate SetDefaultVersion. */
  setTemplateDefaultVersion(
    where: Where,
    templateId: string,
    version: number,
    dryRun: boolean,
  ): Promise<void>;
  readTemplate(where: Where, templateId: string): Promise<TemplateReadBack>;
  /** ModifyInstanceMetadataDefaults: every field, null sent as no-preference (hop limit -1). */
  setAccountDefaults(where: Where, values: AccountDefaultsRecord, dryRun: boolean): Promise<void>;
  readAccountDefaults(where: Where): Promise<AccountDefaultsRecord>;
}

/** The error a DryRun call answers when it would have succeeded. */
export function isDryRunSuccess(err: unknown): boolean {
  return awsErrorCode(err) === 'DryRunOperation';
}

/** The request fields for ModifyInstanceMetadataOptions: every known field, explicitly. */
export function modifyInput(instanceId: string, o: MetadataValues, dryRun: boolean) {
  return {
    InstanceId: instanceId,
    ...(o.httpTokens !== null ? { HttpTokens: o.httpTokens } : {}),
    ...(o.httpEndpoint !== null ? { HttpEndpoint: o.httpEndpoint } : {}),
    ...(o.httpPutResponseHopLimit !== null ? { HttpPutResponseHopLimit: o.httpPutResponseHopLimit } : {}),
    ...(o.httpProtocolIpv6 !== null ? { HttpProtocolIpv6: o.httpProtocolIpv6 } : {}),
    ...(o.instanceMetadataTags !== null ? { InstanceMetadataTags: o.instanceMetadataTags } : {}),
    DryRun: dryRun,
  };
}

/** Bounds, with units. */
export const API_LIMITS = {
  /** Instance ids per DescribeInstances call in the verification pass. */
  idsPerDescribe: 200,
} as const;

export function sdkChangeApi(
  factory: AwsClientFactory,
  accounts: readonly AccountTarget[],
  limiter?: RateLimiter,
): FleetChangeApi {
  const byId = new Map(accounts.map((a) => [a.accountId, a]));
  const ec2 = (w: Where): EC2Client => {
    const target = byId.get(w.accountId);
    if (!target)
      throw new ImdsguardError('IMDSGUARD_E_INTERNAL', `no credentials for account ${w.accountId}`);
    const c = factory.ec2(target, w.region);
    if (limiter) attachRateLimiter(c, limiter, w);
    return c;
  };
  const dryRunCall = async (
    w: Where,
    operation: string,
    resource: string | null,
    dryRun: boolean,
    fn: () => Promise<unknown>,
  ) => {
    try {
      await fn();
    } catch (err) {
      if (dryRun && isDryRunSuccess(err)) return;
      throw wrapAwsError(err, { operation, ...w, instanceId: resource });
    }
    if (dryRun) {
      throw new ImdsguardError(
        'IMDSGUARD_E_INTERNAL',
        `${operation}: a DryRun call answered without DryRunOperation`,
      );
    }
  };
  return {
    async modifyInstanceMetadata(w, instanceId, options, dryRun) {
      await dryRunCall(w, 'ec2:ModifyInstanceMetadataOptions', instanceId, dryRun, () =>
        ec2(w).send(new ModifyInstanceMetadataOptionsCommand(modifyInput(instanceId, options, dryRun))),
      );
    },
    async readInstanceMetadata(w, ids) {
      const out = new Map<string, InstanceReadBack>();
      for (let i = 0; i < ids.length; i += API_LIMITS.idsPerDescribe) {
        const chunk = ids.slice(i, i + API_LIMITS.idsPerDescribe);
        try {
          let token: string | undefined;
          do {
            const page = await ec2(w).send(
              new DescribeInstancesCommand({
                Filters: [{ Name: 'instance-id', Values: [...chunk] }],
                NextToken: token,
              }),
            );
            for (const r of page.Reservations ?? [])
              for (const inst of r.Instances ?? []) {
                const rec = toInstanceRecord(inst, w.accountId, w.region);
                out.set(rec.instanceId, { metadataOptions: rec.metadataOptions, instanceState: rec.state });
              }
            token = page.NextToken;
          } while (token);
        } catch (err) {
          throw wrapAwsError(err, { operation: 'ec2:DescribeInstances', ...w });
        }
      }
      return out;
    },
    async createTemplateVersion(w, templateId, sourceVersion, o, description, dryRun) {
      let created: number | null = null;
      await dryRunCall(w, 'ec2:CreateLaunchTemplateVersion', templateId, dryRun, async () => {
        const out = await ec2(w).send(
          new CreateLaunchTemplateVersionCommand({
            LaunchTemplateId: templateId,
            SourceVersion: String(sourceVersion),
            VersionDescription: description,
            LaunchTemplateData: {
              // MetadataOptions replaces the source's as a whole: every known field is sent.
              MetadataOptions: {
                ...(o.httpTokens !== null ? { HttpTokens: o.httpTokens } : {}),
                ...(o.httpEndpoint !== null ? { HttpEndpoint: o.httpEndpoint } : {}),
                ...(o.httpPutResponseHopLimit !== null
                  ? { HttpPutResponseHopLimit: o.httpPutResponseHopLimit }
                  : {}),
                ...(o.httpProtocolIpv6 !== null ? { HttpProtocolIpv6: o.httpProtocolIpv6 } : {}),
                ...(o.instanceMetadataTags !== null ? { InstanceMetadataTags: o.instanceMetadataTags } : {}),
              },
            },
            DryRun: dryRun,
          }),
        );
        created = out.LaunchTemplateVersion?.VersionNumber ?? null;
      });
      return created;
    },
    async setTemplateDefaultVersion(w, templateId, version, dryRun) {
      await dryRunCall(w, 'ec2:ModifyLaunchTemplate', templateId, dryRun, () =>
        ec2(w).send(
          new ModifyLaunchTemplateCommand({
            LaunchTemplateId: templateId,
            DefaultVersion: String(version),
            DryRun: dryRun,
          }),
        ),
      );
    },
    async readTemplate(w, templateId) {
      try {
        const t = await ec2(w).send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [templateId] }));
        const lt = t.LaunchTemplates?.[0];
        if (!lt) throw new Error(`launch template ${templateId} not found`);
        const v = await ec2(w).send(
          new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: templateId, Versions: ['$Default'] }),
        );
        const def = v.LaunchTemplateVersions?.[0];
        return {
          defaultVersion: lt.DefaultVersionNumber ?? 0,
          latestVersion: lt.LatestVersionNumber ?? 0,
          metadataOptions: def ? toTemplateVersionRecord(def).metadataOptions : null,
        };
      } catch (err) {
        throw wrapAwsError(err, { operation: 'ec2:DescribeLaunchTemplates', ...w, instanceId: templateId });
      }
    },
    async setAccountDefaults(w, d, dryRun) {
      await dryRunCall(w, 'ec2:ModifyInstanceMetadataDefaults', null, dryRun, () =>
        ec2(w).send(
          new ModifyInstanceMetadataDefaultsCommand({
            HttpTokens: d.httpTokens ?? 'no-preference',
            HttpEndpoint: d.httpEndpoint ?? 'no-preference',
            HttpPutResponseHopLimit: d.httpPutResponseHopLimit ?? -1,
            InstanceMetadataTags: d.instanceMetadataTags ?? 'no-preference',
            HttpTokensEnforced: d.httpTokensEnforced ?? 'no-preference',
            DryRun: dryRun,
          }),
        ),
      );
    },
    async readAccountDefaults(w) {
      try {
        const out = await ec2(w).send(new GetInstanceMetadataDefaultsCommand({}));
        return toDefaultsRecord(out.AccountLevel);
      } catch (err) {
        throw wrapAwsError(err, { operation: 'ec2:GetInstanceMetadataDefaults', ...w });
      }
    },
  };
}
