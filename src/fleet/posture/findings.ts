/**
 * PURE: findings from an inventory. Every finding id is in FINDINGS with its severity, and explained
 * with its fix in docs/findings.md (a test keeps the two in sync).
 */
import {
  allowsImdsV1,
  compareStrings,
  type HttpTokens,
  type InstanceRecord,
  type Inventory,
  type LaunchMetadataOptions,
  type LaunchTemplateRecord,
  type RegionScan,
} from '../inventory/model.js';
import { groupLaunch, launchIn } from './launch.js';
import { isLive } from './summary.js';

export const SEVERITIES = ['high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const FINDINGS = {
  'instance-imdsv1-with-role': {
    severity: 'high',
    title: 'IMDSv1 allowed on an instance with an instance profile',
  },
  'instance-imdsv1-no-role': {
    severity: 'medium',
    title: 'IMDSv1 allowed on an instance without an instance profile',
  },
  'instance-hop-limit': { severity: 'medium', title: 'Hop limit above 1 with no sign of containers' },
  'instance-metadata-pending': { severity: 'low', title: 'Metadata options change still pending' },
  'instance-ipv6-endpoint': { severity: 'info', title: 'IMDS IPv6 endpoint enabled' },
  'instance-tags-in-metadata': { severity: 'info', title: 'Instance tags readable from IMDS' },
  'template-default-imdsv1': {
    severity: 'high',
    title: "Launch template's default version launches IMDSv1 instances",
  },
  'template-latest-imdsv1': {
    severity: 'medium',
    title: "Launch template's latest version launches IMDSv1 instances",
  },
  'asg-launches-imdsv1': {
    severity: 'high',
    title: 'Auto Scaling group launches IMDSv1 instances (regression source)',
  },
  'launch-config-imdsv1': { severity: 'medium', title: 'Launch configuration launches IMDSv1 instances' },
  'template-launch-refused': {
    severity: 'medium',
    title: "Launch template's launches are refused: it asks for IMDSv1 where IMDSv2 is enforced",
  },
  'asg-launch-refused': {
    severity: 'high',
    title: 'Auto Scaling group cannot launch: it asks for IMDSv1 where IMDSv2 is enforced',
  },
  'launch-config-launch-refused': {
    severity: 'medium',
    title: "Launch configuration's launches are refused: it asks for IMDSv1 where IMDSv2 is enforced",
  },
  'account-default-imdsv1': { severity: 'medium', title: 'Account default does not require IMDSv2 tokens' },
  'image-no-imdsv2-support': { severity: 'low', title: 'AMI in use without ImdsSupport v2.0' },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type FindingId = keyof typeof FINDINGS;

export type ResourceType =
  | 'instance'
  | 'launch-template'
  | 'auto-scaling-group'
  | 'launch-configuration'
  | 'account-defaults'
  | 'image';

export interface Finding {
  id: FindingId;
  severity: Severity;
  resourceType: ResourceType;
  /** Instance id, template id, group name, configuration name, image id, or "ACCOUNT/REGION" for defaults. */
  resourceId: string;
  accountId: string;
  region: string;
  message: string;
  details: Record<string, string | number | boolean | null>;
}

/** Tags that say an instance runs containers (a hop limit of 2 is then expected). */
const CONTAINER_TAG_PATTERNS: readonly RegExp[] = [
  /^eks:cluster-name$/,
  /^aws:eks:cluster-name$/,
  /^kubernetes\.io\/cluster\//,
  /^k8s\.io\//,
  /^alpha\.eksctl\.io\//,
  /^eks:nodegroup-name$/,
  /^aws:ecs:/,
  /^ecs:/,
  /^AmazonECSManaged$/,
  /^karpenter\.sh\//,
  /^nomad/i,
  /^docker/i,
];

export function hasContainerHint(tags: Record<string, string>): boolean {
  return Object.keys(tags).some((k) => CONTAINER_TAG_PATTERNS.some((re) => re.test(k)));
}

export { effectiveLaunchEndpoint, effectiveLaunchTokens } from './launch.js';

function launchAllowsV1(
  options: Pick<LaunchMetadataOptions, 'httpTokens' | 'httpEndpoint'> | null,
  scan: RegionScan,
  imageId: string | null,
): { allows: boolean; refused: boolean; tokens: HttpTokens; source: string } {
  const r = launchIn(scan, options, imageId);
  return { allows: r.allowsV1, refused: r.refused, tokens: r.tokens, source: r.source };
}

function make(
  id: FindingId,
  resourceType: ResourceType,
  resourceId: string,
  accountId: string,
  region: string,
  message: string,
  details: Finding['details'] = {},
): Finding {
  return {
    id,
    severity: FINDINGS[id].severity,
    resourceType,
    resourceId,
    accountId,
    region,
    message,
    details,
  };
}

function instanceFindings(i: InstanceRecord, out: Finding[]): void {
  if (!isLive(i)) return;
  const m = i.metadataOptions;
  const base = { state: i.state, autoScalingGroup: i.autoScalingGroupName };
  if (allowsImdsV1(m)) {
    if (i.instanceProfileArn) {
      out.push(
        make(
          'instance-imdsv1-with-role',
          'instance',
          i.instanceId,
          i.accountId,
          i.region,
          `${i.instanceId} allows IMDSv1 and has instance profile ${i.instanceProfileName ?? i.instanceProfileArn}${i.roleNames && i.roleNames.length > 0 ? ` (role ${i.roleNames.join(', ')})` : ''}: an SSRF can read its role credentials`,
          {
            ...base,
            instanceProfileArn: i.instanceProfileArn,
            roleNames: i.roleNames ? i.roleNames.join(',') : null,
          },
        ),
      );
    } else {
      out.push(
        make(
          'instance-imdsv1-no-role',
          'instance',
          i.instanceId,
          i.accountId,
          i.region,
          `${i.instanceId} allows IMDSv1`,
          base,
        ),
      );
    }
  }
  const hop = m.httpPutResponseHopLimit ?? 1;
  if (m.httpEndpoint !== 'disabled' && hop > 1 && !hasContainerHint(i.tags)) {
    out.push(
      make(
        'instance-hop-limit',
        'instance',
        i.instanceId,
        i.accountId,
        i.region,
        `${i.instanceId} has hop limit ${hop} but no container tags: tokens reach one network hop further than needed`,
        { ...base, hopLimit: hop },
      ),
    );
  }
  if (m.state === 'pending') {
    out.push(
      make(
        'instance-metadata-pending',
        'instance',
        i.instanceId,
        i.accountId,
        i.region,
        `${i.instanceId} has metadata options still pending: the last change is not in effect yet`,
        base,
      ),
    );
  }
  if (m.httpEndpoint !== 'disabled' && m.httpProtocolIpv6 === 'enabled') {
    out.push(
      make(
        'instance-ipv6-endpoint',
        'instance',
        i.instanceId,
        i.accountId,
        i.region,
        `${i.instanceId} serves IMDS on [fd00:ec2::254] too: firewall rules and the guard must cover IPv6`,
        base,
      ),
    );
  }
  if (m.httpEndpoint !== 'disabled' && m.instanceMetadataTags === 'enabled') {
    out.push(
      make(
        'instance-tags-in-metadata',
        'instance',
        i.instanceId,
        i.accountId,
        i.region,
        `${i.instanceId} exposes its tags in IMDS: keep secrets out of tags`,
        base,
      ),
    );
  }
}

function templateFindings(t: LaunchTemplateRecord, scan: RegionScan, out: Finding[]): void {
  const def = t.versions.find((v) => v.versionNumber === t.defaultVersionNumber);
  const latest = t.versions.find((v) => v.versionNumber === t.latestVersionNumber);
  const checked = [
    { which: 'default', rule: 'template-default-imdsv1', version: def },
    {
      which: 'latest',
      rule: 'template-latest-imdsv1',
      version: latest && latest.versionNumber !== t.defaultVersionNumber ? latest : undefined,
    },
  ] as const;
  for (const { which, rule, version } of checked) {
    if (!version) continue;
    const r = launchAllowsV1(version.metadataOptions, scan, version.imageId);
    if (r.refused) {
      out.push(
        make(
          'template-launch-refused',
          'launch-template',
          t.launchTemplateId,
          t.accountId,
          t.region,
          `launch template ${t.launchTemplateName} (${which} version ${version.versionNumber}) asks for HttpTokens=${r.tokens} (from ${r.source}) in a region that enforces IMDSv2: AWS refuses its launches`,
          {
            launchTemplateName: t.launchTemplateName,
            version: version.versionNumber,
            tokensFrom: r.source,
            which,
          },
        ),
      );
    }
    if (r.allows) {
      out.push(
        make(
          rule,
          'launch-template',
          t.launchTemplateId,
          t.accountId,
          t.region,
          `launch template ${t.launchTemplateName} (${which} version ${version.versionNumber}) launches instances with IMDSv1 allowed (from ${r.source})`,
          { launchTemplateName: t.launchTemplateName, version: version.versionNumber, tokensFrom: r.source },
        ),
      );
    }
  }
}

function groupFindings(scan: RegionScan, out: Finding[]): void {
  for (const g of scan.autoScalingGroups) {
    const launch = groupLaunch(scan, g);
    if (!launch) continue;
    const r = launchAllowsV1(launch.options, scan, launch.imageId);
    const details = { launches: launch.what, tokensFrom: r.source, instances: g.instanceIds.length };
    if (r.refused) {
      out.push(
        make(
          'asg-launch-refused',
          'auto-scaling-group',
          g.name,
          g.accountId,
          g.region,
          `Auto Scaling group ${g.name} launches from ${launch.what}, which asks for HttpTokens=${r.tokens} (from ${r.source}) in a region that enforces IMDSv2: AWS refuses its launches, so it cannot scale out or replace instances`,
          details,
        ),
      );
    }
    if (r.allows) {
      out.push(
        make(
          'asg-launches-imdsv1',
          'auto-scaling-group',
          g.name,
          g.accountId,
          g.region,
          `Auto Scaling group ${g.name} launches IMDSv1 instances from ${launch.what} (from ${r.source}): instances hardened by hand come back with IMDSv1 when it replaces them`,
          details,
        ),
      );
    }
  }
}

function configFindings(scan: RegionScan, out: Finding[]): void {
  for (const c of scan.launchConfigurations) {
    const r = launchAllowsV1(c.metadataOptions, scan, c.imageId);
    if (!r.allows && !r.refused) continue;
    const usedBy = scan.autoScalingGroups
      .filter((g) => g.launchConfigurationName === c.name)
      .map((g) => g.name);
    const used = usedBy.length > 0 ? `; used by ${usedBy.join(', ')}` : '';
    out.push(
      r.refused
        ? make(
            'launch-config-launch-refused',
            'launch-configuration',
            c.name,
            c.accountId,
            c.region,
            `launch configuration ${c.name} asks for HttpTokens=${r.tokens} (from ${r.source}) in a region that enforces IMDSv2: AWS refuses its launches${used}`,
            { tokensFrom: r.source, usedByGroups: usedBy.length },
          )
        : make(
            'launch-config-imdsv1',
            'launch-configuration',
            c.name,
            c.accountId,
            c.region,
            `launch configuration ${c.name} launches instances with IMDSv1 allowed (from ${r.source})${used}`,
            { tokensFrom: r.source, usedByGroups: usedBy.length },
          ),
    );
  }
}

function defaultsFindings(scan: RegionScan, out: Finding[]): void {
  if (scan.defaults === null) return;
  const d = scan.defaults;
  const enforced = d.httpTokensEnforced === 'enabled';
  // Under enforcement a default of no preference launches with tokens required: nothing to report.
  if (d.httpTokens === 'required' || (enforced && d.httpTokens === null)) return;
  out.push(
    make(
      'account-default-imdsv1',
      'account-defaults',
      `${scan.accountId}/${scan.region}`,
      scan.accountId,
      scan.region,
      enforced
        ? `account ${scan.accountId} in ${scan.region}: the IMDS default is optional while IMDSv2 is enforced, so launches that set nothing are refused`
        : `account ${scan.accountId} in ${scan.region}: the IMDS default is ${d.httpTokens ?? 'no-preference'}, so launches that set nothing may allow IMDSv1`,
      { httpTokens: d.httpTokens, httpTokensEnforced: d.httpTokensEnforced },
    ),
  );
}

/** Live instances per AMI id, of instances in one account and region (added to `into`). */
export function countImageUsers(
  instances: readonly InstanceRecord[],
  into: Map<string, number> = new Map(),
): Map<string, number> {
  for (const i of instances) {
    if (!isLive(i) || !i.imageId) continue;
    into.set(i.imageId, (into.get(i.imageId) ?? 0) + 1);
  }
  return into;
}

function imageFindings(scan: RegionScan, users: ReadonlyMap<string, number>, out: Finding[]): void {
  for (const img of scan.images) {
    const n = users.get(img.imageId) ?? 0;
    if (n === 0 || img.imdsSupport === 'v2.0') continue;
    out.push(
      make(
        'image-no-imdsv2-support',
        'image',
        img.imageId,
        scan.accountId,
        scan.region,
        `AMI ${img.imageId}${img.name ? ` (${img.name})` : ''} is used by ${n} instance(s) and does not set ImdsSupport v2.0`,
        { instances: n, imageName: img.name },
      ),
    );
  }
}

const SEVERITY_RANK: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

function sortFindings(out: Finding[]): Finding[] {
  return out.sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      compareStrings(a.accountId, b.accountId) ||
      compareStrings(a.region, b.region) ||
      compareStrings(a.id, b.id) ||
      compareStrings(a.resourceId, b.resourceId),
  );
}

/** The findings of these instances alone, sorted as findFindings sorts. */
export function findInstanceFindings(instances: readonly InstanceRecord[]): Finding[] {
  const out: Finding[] = [];
  for (const i of instances) instanceFindings(i, out);
  return sortFindings(out);
}

/**
 * The findings of one account and region scan besides its instances' (templates, groups, launch
 * configurations, defaults, AMIs in use), given the live instances per AMI of that scan.
 */
export function findScanFindings(scan: RegionScan, imageUsers: ReadonlyMap<string, number>): Finding[] {
  const out: Finding[] = [];
  if (scan.status === 'failed') return out;
  for (const t of scan.launchTemplates) templateFindings(t, scan, out);
  groupFindings(scan, out);
  configFindings(scan, out);
  defaultsFindings(scan, out);
  imageFindings(scan, imageUsers, out);
  return sortFindings(out);
}

/** Every finding of the inventory, sorted by severity, then account, region, id and resource. */
export function findFindings(inv: Pick<Inventory, 'instances' | 'scans'>): Finding[] {
  const out: Finding[] = findInstanceFindings(inv.instances);
  const users = new Map<string, Map<string, number>>();
  for (const i of inv.instances) {
    const k = `${i.accountId}/${i.region}`;
    let m = users.get(k);
    if (!m) {
      m = new Map();
      users.set(k, m);
    }
    countImageUsers([i], m);
  }
  for (const scan of inv.scans) {
    out.push(...findScanFindings(scan, users.get(`${scan.accountId}/${scan.region}`) ?? new Map()));
  }
  return sortFindings(out);
}

/** Counts per severity. */
export function countBySeverity(findings: readonly Finding[]): Record<Severity, number> {
  const out: Record<Severity, number> = { high: 0, medium: 0, low: 0, info: 0 };
  for (const f of findings) out[f.severity] += 1;
  return out;
}
