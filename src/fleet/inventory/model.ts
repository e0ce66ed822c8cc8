/**
 * The fleet inventory model: what `fleet discover` collects, and what the planner (harden, rollback)
 * and the usage report join on. Keep it stable: fields may be added, never renamed or retyped without
 * bumping INVENTORY_SCHEMA_VERSION. The JSON output of `fleet discover` embeds these shapes
 * (docs/fleet-json-schema.md).
 *
 * Conventions: AWS values are kept as the API spells them ('optional', 'required', 'enabled', ...);
 * a value the API did not return is `null`, never omitted; times are ISO 8601 strings (UTC).
 * An instance is identified by (accountId, region, instanceId): use instanceKey() to join.
 */

export const INVENTORY_SCHEMA_VERSION = 1 as const;

export type HttpTokens = 'optional' | 'required';
export type Toggle = 'enabled' | 'disabled';
export type MetadataOptionsState = 'pending' | 'applied';

/** An instance's MetadataOptions (DescribeInstances), all six fields. */
export interface InstanceMetadataOptions {
  state: MetadataOptionsState | null;
  httpTokens: HttpTokens | null;
  httpEndpoint: Toggle | null;
  httpPutResponseHopLimit: number | null;
  httpProtocolIpv6: Toggle | null;
  instanceMetadataTags: Toggle | null;
}

/** MetadataOptions of a launch template version or launch configuration: unset fields are null. */
export interface LaunchMetadataOptions {
  httpTokens: HttpTokens | null;
  httpEndpoint: Toggle | null;
  httpPutResponseHopLimit: number | null;
  httpProtocolIpv6: Toggle | null;
  instanceMetadataTags: Toggle | null;
}

/** pending | running | shutting-down | terminated | stopping | stopped */
export type InstanceStateName = string;

export interface LaunchTemplateRef {
  launchTemplateId: string;
  launchTemplateName: string | null;
  /** The version number the instance was launched from (from the aws:ec2launchtemplate:version tag). */
  version: string | null;
}

export interface InstanceRecord {
  instanceId: string;
  accountId: string;
  region: string;
  state: InstanceStateName;
  instanceType: string | null;
  /** ISO 8601 */
  launchTime: string | null;
  metadataOptions: InstanceMetadataOptions;
  /** arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME, or null when the instance has no profile. */
  instanceProfileArn: string | null;
  /** The profile name (last ARN segment). */
  instanceProfileName: string | null;
  /**
   * The role(s) in the instance profile (iam:GetInstanceProfile in the instance's account); [] when the
   * profile holds no role or no longer exists. null: not resolved (no profile, IAM refused, or roles
   * were not asked for).
   */
  roleNames: string[] | null;
  imageId: string | null;
  /** The AMI's ImdsSupport: 'v2.0', null when unset, 'unknown' when the AMI could not be described. */
  imageImdsSupport: 'v2.0' | null | 'unknown';
  launchTemplate: LaunchTemplateRef | null;
  autoScalingGroupName: string | null;
  tags: Record<string, string>;
}

export interface LaunchTemplateVersionRecord {
  versionNumber: number;
  isDefault: boolean;
  imageId: string | null;
  instanceProfileArn: string | null;
  /** null when the version sets no MetadataOptions at all (the AMI and account defaults decide). */
  metadataOptions: LaunchMetadataOptions | null;
  /** ISO 8601 */
  createTime: string | null;
}

export interface LaunchTemplateRecord {
  accountId: string;
  region: string;
  launchTemplateId: string;
  launchTemplateName: string;
  defaultVersionNumber: number;
  latestVersionNumber: number;
  /** The default and latest versions, plus any version an instance or group uses (when described). */
  versions: LaunchTemplateVersionRecord[];
}

export interface AutoScalingGroupRecord {
  accountId: string;
  region: string;
  name: string;
  arn: string | null;
  /** What new instances launch from: a template (with the version as configured) or a launch configuration. */
  launchTemplate: {
    launchTemplateId: string | null;
    launchTemplateName: string | null;
    version: string;
  } | null;
  /** The template came from a MixedInstancesPolicy. */
  mixedInstancesPolicy: boolean;
  launchConfigurationName: string | null;
  desiredCapacity: number | null;
  instanceIds: string[];
}

export interface LaunchConfigurationRecord {
  accountId: string;
  region: string;
  name: string;
  arn: string | null;
  imageId: string | null;
  instanceProfile: string | null;
  /** null when the launch configuration sets no MetadataOptions. */
  metadataOptions: Pick<
    LaunchMetadataOptions,
    'httpTokens' | 'httpEndpoint' | 'httpPutResponseHopLimit'
  > | null;
}

export interface ImageRecord {
  accountId: string;
  region: string;
  imageId: string;
  name: string | null;
  ownerId: string | null;
  imdsSupport: 'v2.0' | null;
}

/** GetInstanceMetadataDefaults (account level, per region). null fields: no preference. */
export interface AccountDefaultsRecord {
  httpTokens: HttpTokens | null;
  httpEndpoint: Toggle | null;
  httpPutResponseHopLimit: number | null;
  instanceMetadataTags: Toggle | null;
  /**
   * HttpTokensEnforced (since February 2026): `enabled` refuses launches that are not
   * HttpTokens=required and HttpTokens=optional on existing instances. null: not returned (no
   * preference, or an endpoint that does not know it): not enforced.
   */
  httpTokensEnforced: Toggle | null;
}

/**
 * Who manages a region's IMDS defaults (GetInstanceMetadataDefaults ManagedBy): `account`, or
 * `declarative-policy` (an AWS Organizations declarative policy: the account cannot change them, and
 * noncompliant actions fail with the policy's exception message). null: not returned.
 */
export interface DefaultsManagement {
  managedBy: 'account' | 'declarative-policy' | null;
  exceptionMessage: string | null;
}

/** What part of a scan a failure hit. */
export type ScanStage =
  | 'accounts'
  | 'regions'
  | 'assume-role'
  | 'instances'
  | 'account-defaults'
  | 'launch-templates'
  | 'launch-template-versions'
  | 'auto-scaling-groups'
  | 'launch-configurations'
  | 'images'
  | 'roles';

export interface ScanFailure {
  accountId: string | null;
  region: string | null;
  stage: ScanStage;
  /** An IMDSGUARD_E_ code (docs/errors.md). */
  code: string;
  /** The AWS error code (e.g. AccessDenied, OptInRequired), when the failure came from AWS. */
  awsCode: string | null;
  message: string;
  hint: string | null;
}

/** One account and region that was scanned. */
export interface RegionScan {
  accountId: string;
  region: string;
  /** ok: complete; partial: instances complete but some other resource failed; failed: instances missing. */
  status: 'ok' | 'partial' | 'failed';
  instanceCount: number;
  /** null: not read (see failures). */
  defaults: AccountDefaultsRecord | null;
  /** Who manages the defaults; null when they were not read. */
  defaultsManagement: DefaultsManagement | null;
  launchTemplates: LaunchTemplateRecord[];
  autoScalingGroups: AutoScalingGroupRecord[];
  launchConfigurations: LaunchConfigurationRecord[];
  images: ImageRecord[];
}

export interface AccountRecord {
  accountId: string;
  name: string | null;
  /** caller: the credentials' own account; assumed: reached through AssumeRole. */
  access: 'caller' | 'assumed';
  roleArn: string | null;
  status: 'ok' | 'failed';
}

export interface Inventory {
  schemaVersion: typeof INVENTORY_SCHEMA_VERSION;
  /** ISO 8601 */
  generatedAt: string;
  regions: string[];
  accounts: AccountRecord[];
  scans: RegionScan[];
  /** Every instance of every scan, flat, sorted by account, region, instance id. */
  instances: InstanceRecord[];
  failures: ScanFailure[];
}

/** The key that joins an instance's inventory record, its usage and its changes. */
export function instanceKey(i: { accountId: string; region: string; instanceId: string }): string {
  return `${i.accountId}/${i.region}/${i.instanceId}`;
}

/** IMDSv1 (tokenless) calls work: tokens optional and the endpoint not disabled. */
export function allowsImdsV1(m: { httpTokens: HttpTokens | null; httpEndpoint: Toggle | null }): boolean {
  return m.httpTokens !== 'required' && m.httpEndpoint !== 'disabled';
}

/** Plain code-unit string order (stable across locales, and much faster than localeCompare). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
