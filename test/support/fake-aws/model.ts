/**
 * The in-memory fleet the fake AWS server serves: accounts -> regions -> instances (in reservations),
 * launch templates with versions, Auto Scaling groups, launch configurations, images and account
 * defaults. Everything is plain mutable data: tests may change it between calls, and the write
 * actions (ModifyInstanceMetadataOptions, CreateLaunchTemplateVersion, ...) change it too.
 */

export type Tokens = 'optional' | 'required';
export type OnOff = 'enabled' | 'disabled';

export interface FakeMetadataOptions {
  state: 'pending' | 'applied';
  httpTokens: Tokens;
  httpEndpoint: OnOff;
  httpPutResponseHopLimit: number;
  httpProtocolIpv6: OnOff;
  instanceMetadataTags: OnOff;
}

export interface FakeInstance {
  instanceId: string;
  reservationId: string;
  instanceType: string;
  imageId: string;
  /** pending | running | shutting-down | terminated | stopping | stopped */
  state: string;
  launchTime: Date;
  /** Full ARN, e.g. arn:aws:iam::123456789012:instance-profile/web */
  instanceProfileArn?: string | undefined;
  tags: Record<string, string>;
  metadataOptions: FakeMetadataOptions;
  /** Milliseconds a metadata change stays `pending` before it reads `applied` (0: at the next read). */
  pendingForMs?: number;
  /** When the last metadata change was made (set by ModifyInstanceMetadataOptions). */
  modifiedAt?: number;
}

export interface FakeReservation {
  reservationId: string;
  ownerId: string;
  instanceIds: string[];
}

export interface FakeTemplateMetadataOptions {
  httpTokens?: Tokens | undefined;
  httpEndpoint?: OnOff | undefined;
  httpPutResponseHopLimit?: number | undefined;
  httpProtocolIpv6?: OnOff | undefined;
  instanceMetadataTags?: OnOff | undefined;
}

export interface FakeTemplateData {
  imageId?: string | undefined;
  instanceType?: string | undefined;
  iamInstanceProfileArn?: string | undefined;
  /** Absent: the launch falls back to the AMI's ImdsSupport and the account defaults. */
  metadataOptions?: FakeTemplateMetadataOptions | undefined;
}

export interface FakeTemplateVersion {
  versionNumber: number;
  createTime: Date;
  description?: string | undefined;
  data: FakeTemplateData;
}

export interface FakeLaunchTemplate {
  launchTemplateId: string;
  launchTemplateName: string;
  createTime: Date;
  defaultVersion: number;
  versions: FakeTemplateVersion[];
}

export interface FakeTemplateRef {
  launchTemplateId: string;
  launchTemplateName: string;
  /** $Default, $Latest or a number as a string */
  version: string;
}

export interface FakeAutoScalingGroup {
  name: string;
  arn: string;
  createdTime: Date;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  launchTemplate?: FakeTemplateRef | undefined;
  mixedInstancesTemplate?: FakeTemplateRef | undefined;
  launchConfigurationName?: string | undefined;
  instanceIds: string[];
}

export interface FakeLaunchConfiguration {
  name: string;
  arn: string;
  createdTime: Date;
  imageId: string;
  instanceType: string;
  iamInstanceProfile?: string | undefined;
  metadataOptions?:
    | { httpTokens?: Tokens; httpEndpoint?: OnOff; httpPutResponseHopLimit?: number }
    | undefined;
}

export interface FakeImage {
  imageId: string;
  name: string;
  ownerId: string;
  creationDate: Date;
  imdsSupport?: 'v2.0' | undefined;
}

/**
 * GetInstanceMetadataDefaults (EC2 API reference, InstanceMetadataDefaultsResponse): an absent field
 * means "no preference". Since February 2026 also `httpTokensEnforced` (enabled | disabled), `managedBy`
 * (account | declarative-policy) and `managedExceptionMessage` (the declarative policy's custom message).
 */
export interface FakeAccountDefaults {
  httpTokens?: Tokens | undefined;
  httpPutResponseHopLimit?: number | undefined;
  httpEndpoint?: OnOff | undefined;
  instanceMetadataTags?: OnOff | undefined;
  /** enabled: launches that are not HttpTokens=required, and HttpTokens=optional on instances, are refused. */
  httpTokensEnforced?: OnOff | undefined;
  /** Who manages the defaults; absent reads as `account`. A declarative policy makes them read-only. */
  managedBy?: 'account' | 'declarative-policy' | undefined;
  managedExceptionMessage?: string | undefined;
}

export interface FakeRegion {
  name: string;
  /** false: every call in this region fails (OptInRequired / AuthFailure), like a region not opted in. */
  enabled: boolean;
  instances: Map<string, FakeInstance>;
  reservations: FakeReservation[];
  launchTemplates: FakeLaunchTemplate[];
  autoScalingGroups: FakeAutoScalingGroup[];
  launchConfigurations: FakeLaunchConfiguration[];
  images: Map<string, FakeImage>;
  defaults: FakeAccountDefaults;
  /** CloudWatch AWS/EC2 metrics per instance id (cloudwatch.ts). Absent: no metrics in this region. */
  metrics?: Map<string, FakeInstanceMetrics>;
}

/**
 * A stretch of samples of one metric: one sample every `everyMs` (default 300,000: EC2's 5-minute
 * basic monitoring) at fromMs, fromMs+everyMs, ... < toMs, each with `value`. Segments of a metric
 * that overlap add up.
 */
export interface FakeMetricSegment {
  fromMs: number;
  toMs: number;
  value: number;
  everyMs?: number;
}

/** The IMDS metrics EC2 publishes for an instance (namespace AWS/EC2, dimension InstanceId). */
export interface FakeInstanceMetrics {
  MetadataNoToken?: FakeMetricSegment[];
  MetadataNoTokenRejected?: FakeMetricSegment[];
}

export interface FakeAccount {
  accountId: string;
  name: string;
  email: string;
  status: 'ACTIVE' | 'SUSPENDED' | 'PENDING_CLOSURE';
  regions: Map<string, FakeRegion>;
  /** Role names that can be assumed in this account (AssumeRole on another name: AccessDenied). */
  roles: Set<string>;
  /**
   * A role's MaxSessionDuration, seconds (IAM: 3600 to 43200; 3600 when not set, like IAM's default).
   * AssumeRole with a DurationSeconds above it fails with ValidationError.
   */
  roleMaxSessionSeconds?: Map<string, number>;
  /** IAM instance profiles by name (GetInstanceProfile), with the roles in each. */
  instanceProfiles: Map<string, FakeInstanceProfile>;
}

export interface FakeInstanceProfile {
  /** "/" or "/path/" */
  path: string;
  /** Role names (an instance profile holds at most one role in practice; may be empty). */
  roles: string[];
}

export interface FakeFleet {
  /** The account the caller's own (non-assumed) credentials belong to; also the organization's management account. */
  managementAccountId: string;
  accounts: Map<string, FakeAccount>;
  /** Region names DescribeRegions lists (the partition's regions). */
  regionNames: string[];
  /** Monotonic counter for ids the server creates. */
  nextId: number;
}

export function emptyRegion(name: string): FakeRegion {
  return {
    name,
    enabled: true,
    instances: new Map(),
    reservations: [],
    launchTemplates: [],
    autoScalingGroups: [],
    launchConfigurations: [],
    images: new Map(),
    defaults: {},
  };
}

export function emptyAccount(
  accountId: string,
  regionNames: readonly string[],
  roleNames: string[] = [],
): FakeAccount {
  return {
    accountId,
    name: `account-${accountId}`,
    email: `aws+${accountId}@example.com`,
    status: 'ACTIVE',
    regions: new Map(regionNames.map((r) => [r, emptyRegion(r)])),
    roles: new Set(roleNames),
    instanceProfiles: new Map(),
  };
}

export function getRegion(fleet: FakeFleet, accountId: string, region: string): FakeRegion | undefined {
  return fleet.accounts.get(accountId)?.regions.get(region);
}

/** Adds an instance to a region, in a new reservation unless one is given. */
export function addInstance(region: FakeRegion, ownerId: string, instance: FakeInstance): void {
  region.instances.set(instance.instanceId, instance);
  let res = region.reservations.find((r) => r.reservationId === instance.reservationId);
  if (!res) {
    res = { reservationId: instance.reservationId, ownerId, instanceIds: [] };
    region.reservations.push(res);
  }
  res.instanceIds.push(instance.instanceId);
}

/** Every instance of the fleet (optionally of one account), with where it lives. */
export function* allInstances(
  fleet: FakeFleet,
  accountId?: string,
): Generator<{ accountId: string; region: string; instance: FakeInstance }> {
  for (const account of fleet.accounts.values()) {
    if (accountId !== undefined && account.accountId !== accountId) continue;
    for (const region of account.regions.values()) {
      for (const instance of region.instances.values()) {
        yield { accountId: account.accountId, region: region.name, instance };
      }
    }
  }
}

export function countInstances(
  fleet: FakeFleet,
  filter: { accountId?: string; region?: string } = {},
): number {
  let n = 0;
  for (const account of fleet.accounts.values()) {
    if (filter.accountId !== undefined && account.accountId !== filter.accountId) continue;
    for (const region of account.regions.values()) {
      if (filter.region !== undefined && region.name !== filter.region) continue;
      n += region.instances.size;
    }
  }
  return n;
}

/** Resolves $Default / $Latest / "N" to a version of the template. */
export function resolveTemplateVersion(
  template: FakeLaunchTemplate,
  version: string | undefined,
): FakeTemplateVersion | undefined {
  const v = version ?? '$Default';
  let n: number;
  if (v === '$Default') n = template.defaultVersion;
  else if (v === '$Latest') n = Math.max(...template.versions.map((x) => x.versionNumber));
  else n = Number(v);
  return template.versions.find((x) => x.versionNumber === n);
}

export function latestVersionNumber(template: FakeLaunchTemplate): number {
  return Math.max(...template.versions.map((x) => x.versionNumber));
}
