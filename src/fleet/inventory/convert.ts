/** PURE: SDK response shapes -> inventory records. No I/O. */
import type {
  AutoScalingGroup as SdkAutoScalingGroup,
  LaunchConfiguration as SdkLaunchConfiguration,
} from '@aws-sdk/client-auto-scaling';
import type {
  InstanceMetadataDefaultsResponse,
  Image as SdkImage,
  Instance as SdkInstance,
  LaunchTemplateVersion as SdkLaunchTemplateVersion,
} from '@aws-sdk/client-ec2';
import type {
  AccountDefaultsRecord,
  AutoScalingGroupRecord,
  DefaultsManagement,
  HttpTokens,
  ImageRecord,
  InstanceRecord,
  LaunchConfigurationRecord,
  LaunchMetadataOptions,
  LaunchTemplateVersionRecord,
  MetadataOptionsState,
  Toggle,
} from './model.js';

export const TAG_TEMPLATE_ID = 'aws:ec2launchtemplate:id';
export const TAG_TEMPLATE_VERSION = 'aws:ec2launchtemplate:version';
export const TAG_ASG = 'aws:autoscaling:groupName';

function tokens(v: unknown): HttpTokens | null {
  return v === 'optional' || v === 'required' ? v : null;
}
function toggle(v: unknown): Toggle | null {
  return v === 'enabled' || v === 'disabled' ? v : null;
}
function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
function iso(v: unknown): string | null {
  if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString();
  if (typeof v === 'string' && v.length > 0) return v;
  return null;
}

/** The last path segment of an instance-profile ARN. */
export function profileNameFromArn(arn: string | null | undefined): string | null {
  if (!arn) return null;
  const i = arn.indexOf(':instance-profile/');
  if (i < 0) return null;
  const path = arn.slice(i + ':instance-profile/'.length);
  return path.split('/').pop() || null;
}

export function toInstanceRecord(i: SdkInstance, accountId: string, region: string): InstanceRecord {
  const tags: Record<string, string> = {};
  for (const t of i.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
  const m = i.MetadataOptions;
  const state = m?.State;
  const templateId = tags[TAG_TEMPLATE_ID];
  return {
    instanceId: i.InstanceId ?? '',
    accountId,
    region,
    state: i.State?.Name ?? 'unknown',
    instanceType: i.InstanceType ?? null,
    launchTime: iso(i.LaunchTime),
    metadataOptions: {
      state: state === 'pending' || state === 'applied' ? (state as MetadataOptionsState) : null,
      httpTokens: tokens(m?.HttpTokens),
      httpEndpoint: toggle(m?.HttpEndpoint),
      httpPutResponseHopLimit: num(m?.HttpPutResponseHopLimit),
      httpProtocolIpv6: toggle(m?.HttpProtocolIpv6),
      instanceMetadataTags: toggle(m?.InstanceMetadataTags),
    },
    instanceProfileArn: i.IamInstanceProfile?.Arn ?? null,
    instanceProfileName: profileNameFromArn(i.IamInstanceProfile?.Arn),
    roleNames: null,
    imageId: i.ImageId ?? null,
    imageImdsSupport: 'unknown',
    launchTemplate: templateId
      ? {
          launchTemplateId: templateId,
          launchTemplateName: null,
          version: tags[TAG_TEMPLATE_VERSION] ?? null,
        }
      : null,
    autoScalingGroupName: tags[TAG_ASG] ?? null,
    tags,
  };
}

export function toDefaultsRecord(d: InstanceMetadataDefaultsResponse | undefined): AccountDefaultsRecord {
  return {
    httpTokens: tokens(d?.HttpTokens),
    httpEndpoint: toggle(d?.HttpEndpoint),
    httpPutResponseHopLimit: num(d?.HttpPutResponseHopLimit),
    instanceMetadataTags: toggle(d?.InstanceMetadataTags),
    httpTokensEnforced: toggle(d?.HttpTokensEnforced),
  };
}

export function toDefaultsManagement(d: InstanceMetadataDefaultsResponse | undefined): DefaultsManagement {
  const by = d?.ManagedBy;
  return {
    managedBy: by === 'account' || by === 'declarative-policy' ? by : null,
    exceptionMessage:
      typeof d?.ManagedExceptionMessage === 'string' && d.ManagedExceptionMessage.length > 0
        ? d.ManagedExceptionMessage.slice(0, 2048)
        : null,
  };
}

export function toTemplateVersionRecord(v: SdkLaunchTemplateVersion): LaunchTemplateVersionRecord {
  const d = v.LaunchTemplateData;
  const m = d?.MetadataOptions;
  const metadataOptions: LaunchMetadataOptions | null = m
    ? {
        httpTokens: tokens(m.HttpTokens),
        httpEndpoint: toggle(m.HttpEndpoint),
        httpPutResponseHopLimit: num(m.HttpPutResponseHopLimit),
        httpProtocolIpv6: toggle(m.HttpProtocolIpv6),
        instanceMetadataTags: toggle(m.InstanceMetadataTags),
      }
    : null;
  return {
    versionNumber: v.VersionNumber ?? 0,
    isDefault: v.DefaultVersion === true,
    imageId: d?.ImageId ?? null,
    instanceProfileArn: d?.IamInstanceProfile?.Arn ?? null,
    metadataOptions,
    createTime: iso(v.CreateTime),
  };
}

export function toAutoScalingGroupRecord(
  g: SdkAutoScalingGroup,
  accountId: string,
  region: string,
): AutoScalingGroupRecord {
  const direct = g.LaunchTemplate;
  const mixed = g.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
  const spec = direct ?? mixed;
  return {
    accountId,
    region,
    name: g.AutoScalingGroupName ?? '',
    arn: g.AutoScalingGroupARN ?? null,
    launchTemplate: spec
      ? {
          launchTemplateId: spec.LaunchTemplateId ?? null,
          launchTemplateName: spec.LaunchTemplateName ?? null,
          version: spec.Version ?? '$Default',
        }
      : null,
    mixedInstancesPolicy: !direct && mixed !== undefined,
    launchConfigurationName: g.LaunchConfigurationName ?? null,
    desiredCapacity: num(g.DesiredCapacity),
    instanceIds: (g.Instances ?? [])
      .map((x) => x.InstanceId)
      .filter((x): x is string => typeof x === 'string'),
  };
}

export function toLaunchConfigurationRecord(
  c: SdkLaunchConfiguration,
  accountId: string,
  region: string,
): LaunchConfigurationRecord {
  const m = c.MetadataOptions;
  return {
    accountId,
    region,
    name: c.LaunchConfigurationName ?? '',
    arn: c.LaunchConfigurationARN ?? null,
    imageId: c.ImageId ?? null,
    instanceProfile: c.IamInstanceProfile ?? null,
    metadataOptions: m
      ? {
          httpTokens: tokens(m.HttpTokens),
          httpEndpoint: toggle(m.HttpEndpoint),
          httpPutResponseHopLimit: num(m.HttpPutResponseHopLimit),
        }
      : null,
  };
}

export function toImageRecord(img: SdkImage, accountId: string, region: string): ImageRecord {
  return {
    accountId,
    region,
    imageId: img.ImageId ?? '',
    name: img.Name ?? null,
    ownerId: img.OwnerId ?? null,
    imdsSupport: img.ImdsSupport === 'v2.0' ? 'v2.0' : null,
  };
}
