/**
 * PURE: launch templates whose default version launches instances that allow IMDSv1, and the fix: a
 * new version created from the default (SourceVersion: everything else inherited) with HttpTokens
 * required and every other metadata field of the source kept, made the new default. Also what it
 * reports and never changes: Auto Scaling groups on launch configurations or pinned old versions,
 * and AMIs without ImdsSupport v2.0 (that change cannot be undone).
 */
import type {
  AccountDefaultsRecord,
  Inventory,
  LaunchTemplateRecord,
  RegionScan,
} from '../inventory/model.js';
import { type Finding, findFindings } from '../posture/findings.js';
import { imageSupport, launchOutcome } from '../posture/launch.js';
import { type ChangePlan, type MetadataValues, skip, type TemplateItem } from './types.js';

const EMPTY: MetadataValues = {
  httpTokens: null,
  httpEndpoint: null,
  httpPutResponseHopLimit: null,
  httpProtocolIpv6: null,
  instanceMetadataTags: null,
};

/**
 * Whether this version needs the fix: its launches do not get tokens required (launch settings,
 * account default, AMI, enforcement: posture/launch.ts) and keep the endpoint enabled. Under
 * enforcement that includes a version whose launches are refused (it asks for optional).
 */
export function versionAllowsV1(
  metadata: MetadataValues | null,
  defaults: AccountDefaultsRecord | null,
  support: 'v2.0' | null | 'unknown',
): boolean {
  const r = launchOutcome(metadata, defaults, support);
  return r.tokens !== 'required' && r.endpoint !== 'disabled';
}

function templateItem(t: LaunchTemplateRecord, scan: RegionScan, seq: number): TemplateItem | null {
  const def = t.versions.find((v) => v.versionNumber === t.defaultVersionNumber);
  if (!def) return null;
  const before = { defaultVersion: t.defaultVersionNumber, metadataOptions: def.metadataOptions };
  const base = {
    type: 'launch-template' as const,
    seq,
    accountId: t.accountId,
    region: t.region,
    resourceId: t.launchTemplateId,
    templateName: t.launchTemplateName,
    latestVersion: t.latestVersionNumber,
    before,
  };
  const metadataOptions: MetadataValues = { ...(def.metadataOptions ?? EMPTY), httpTokens: 'required' };
  const after = { op: 'fix' as const, sourceVersion: t.defaultVersionNumber, metadataOptions };
  if (!versionAllowsV1(def.metadataOptions, scan.defaults, imageSupport(scan, def.imageId))) {
    return {
      ...base,
      action: 'skip',
      skip: skip('already-compliant', 'the default version requires tokens'),
      after,
    };
  }
  if (t.latestVersionNumber !== t.defaultVersionNumber) {
    return {
      ...base,
      action: 'skip',
      skip: skip(
        'latest-not-default',
        `version ${t.latestVersionNumber} is newer than the default ${t.defaultVersionNumber}: make the version you mean the default, then run again`,
      ),
      after,
    };
  }
  return { ...base, action: 'change', skip: null, after };
}

export interface TemplatesReport {
  plan: ChangePlan;
  /** Groups that launch IMDSv1 instances (launch configurations, or template versions that allow it). */
  groupFindings: Finding[];
  launchConfigurationFindings: Finding[];
  /** Templates whose latest (not default) version allows IMDSv1. */
  latestFindings: Finding[];
  /** AMIs in use without ImdsSupport v2.0: reported, never changed. */
  imageFindings: Finding[];
}

/** Plans the template fix for every template of the inventory, and gathers what is only reported. */
export function planTemplates(inv: Pick<Inventory, 'instances' | 'scans'>): TemplatesReport {
  const items: TemplateItem[] = [];
  for (const scan of inv.scans) {
    if (scan.status === 'failed') continue;
    for (const t of scan.launchTemplates) {
      const it = templateItem(t, scan, items.length);
      if (it) items.push(it);
    }
  }
  const findings = findFindings(inv);
  const groupFindings = findings.filter(
    (f) => f.id === 'asg-launches-imdsv1' || f.id === 'asg-launch-refused',
  );
  const notes: string[] = [];
  for (const f of groupFindings) notes.push(f.message);
  // Under enforcement: templates whose launches AWS refuses (the fix above gives them a required version).
  for (const f of findings) if (f.id === 'template-launch-refused') notes.push(f.message);
  const pinned = pinnedGroups(inv.scans, items);
  notes.push(...pinned);
  return {
    plan: { kind: 'templates', rollbackOf: null, items, missing: [], notes },
    groupFindings,
    launchConfigurationFindings: findings.filter(
      (f) => f.id === 'launch-config-imdsv1' || f.id === 'launch-config-launch-refused',
    ),
    latestFindings: findings.filter((f) => f.id === 'template-latest-imdsv1'),
    imageFindings: findings.filter((f) => f.id === 'image-no-imdsv2-support'),
  };
}

/** Groups pinned to a numbered version: the fix (a new default) does not reach them. */
function pinnedGroups(scans: readonly RegionScan[], items: readonly TemplateItem[]): string[] {
  const fixed = new Set(
    items.filter((i) => i.action === 'change').map((i) => `${i.accountId}/${i.region}/${i.resourceId}`),
  );
  const out: string[] = [];
  for (const s of scans) {
    for (const g of s.autoScalingGroups) {
      const lt = g.launchTemplate;
      if (!lt?.launchTemplateId || !/^\d+$/.test(lt.version)) continue;
      if (fixed.has(`${g.accountId}/${g.region}/${lt.launchTemplateId}`)) {
        out.push(
          `Auto Scaling group ${g.name} (${g.accountId} ${g.region}) is pinned to version ${lt.version} of ${lt.launchTemplateId}: point it at $Default after the fix`,
        );
      }
    }
  }
  return out;
}
