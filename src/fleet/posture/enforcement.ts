/**
 * PURE: account-level IMDSv2 enforcement per account and region (GetInstanceMetadataDefaults:
 * HttpTokensEnforced, ManagedBy, ManagedExceptionMessage; since February 2026), and readiness to turn
 * it on: what would break.
 *
 * Enforcement refuses every launch that is not HttpTokens=required and every attempt to set
 * HttpTokens=optional on an instance (UnsupportedOperation). It does not change running instances: an
 * instance still on optional keeps answering IMDSv1. What breaks when it is turned on:
 *   - templates, launch configurations and Auto Scaling groups whose launches ask for optional: every
 *     launch from them is refused (a group can no longer scale out or replace instances);
 *   - instances on optional whose software still makes IMDSv1 calls: nothing can set them back to
 *     optional once they are hardened, and their replacements launch with tokens required, so the
 *     caller breaks then;
 *   - instances on optional whose IMDSv1 use is not known: they may be either.
 */
import {
  type AccountDefaultsRecord,
  allowsImdsV1,
  type InstanceRecord,
  type Inventory,
  instanceKey,
  type RegionScan,
} from '../inventory/model.js';
import { type GroupLaunch, groupLaunch, launchIn } from './launch.js';
import { isLive } from './summary.js';

/** A region's effective state. */
export interface RegionEnforcement {
  accountId: string;
  region: string;
  /** enabled: HttpTokensEnforced=enabled; disabled: off or no preference; unknown: defaults not read. */
  enforcement: 'enabled' | 'disabled' | 'unknown';
  managedBy: 'account' | 'declarative-policy' | 'unknown';
  /** The declarative policy's custom exception message, when it has one. */
  exceptionMessage: string | null;
  /** The defaults as read (null: not read). */
  defaults: AccountDefaultsRecord | null;
}

export function regionEnforcement(
  scan: Pick<RegionScan, 'accountId' | 'region' | 'defaults' | 'defaultsManagement'>,
): RegionEnforcement {
  const d = scan.defaults;
  return {
    accountId: scan.accountId,
    region: scan.region,
    enforcement: d === null ? 'unknown' : d.httpTokensEnforced === 'enabled' ? 'enabled' : 'disabled',
    managedBy: scan.defaultsManagement?.managedBy ?? (d === null ? 'unknown' : 'account'),
    exceptionMessage: scan.defaultsManagement?.exceptionMessage ?? null,
    defaults: d,
  };
}

/** Each scanned region's state, by accountId/region. */
export function enforcementByRegion(
  scans: ReadonlyArray<Pick<RegionScan, 'accountId' | 'region' | 'defaults' | 'defaultsManagement'>>,
): Map<string, RegionEnforcement> {
  return new Map(scans.map((s) => [`${s.accountId}/${s.region}`, regionEnforcement(s)]));
}

/** IMDSv1 evidence of one instance, from fleet usage (readiness rows). */
export interface V1Evidence {
  /** MetadataNoToken sum over the window; null: not read. */
  v1Calls: number | null;
  lastV1: string | null;
  /** The usage readiness (ready, not-ready, unknown, ...). */
  readiness: string;
}

export interface EnforcementBlocker {
  kind: 'instance' | 'launch-template' | 'auto-scaling-group' | 'launch-configuration';
  resourceId: string;
  name: string | null;
  /** One line: why it breaks (or may) under enforcement. */
  detail: string;
  /** Instances: their IMDSv1 evidence (null: not measured). */
  evidence?: V1Evidence | null;
}

export interface EnforcementReadiness extends RegionEnforcement {
  /**
   * enforced: already on (blockers are what is refused now); ready: nothing would break; would-break:
   * something would (blockers); unknown: the defaults, or the IMDSv1 use of instances still on
   * optional, could not be read.
   */
  verdict: 'enforced' | 'ready' | 'would-break' | 'unknown';
  /** Launch sources whose launches would be (or are) refused. */
  launches: EnforcementBlocker[];
  /** Instances still on optional (endpoint enabled), with their IMDSv1 evidence. */
  instances: EnforcementBlocker[];
  /** Instances on optional that make IMDSv1 calls, and those whose use is not known. */
  counts: { optional: number; v1Calls: number; unknownUse: number };
  /** One sentence for people. */
  summary: string;
}

function optionalInstanceBlocker(i: InstanceRecord, evidence: V1Evidence | null): EnforcementBlocker {
  const name = i.tags['Name'] ?? null;
  const detail =
    evidence === null
      ? 'still on HttpTokens=optional; its IMDSv1 use was not measured'
      : evidence.v1Calls !== null && evidence.v1Calls > 0
        ? `still on HttpTokens=optional and makes IMDSv1 calls (${evidence.v1Calls}, last ${evidence.lastV1}): its replacements launch with tokens required and break that caller`
        : evidence.readiness === 'ready'
          ? 'still on HttpTokens=optional, no IMDSv1 call in the usage window'
          : `still on HttpTokens=optional; IMDSv1 use not known (${evidence.readiness})`;
  return { kind: 'instance', resourceId: i.instanceId, name, detail, evidence };
}

/** What refuses launches in this region if enforcement is on. */
function refusedLaunches(scan: RegionScan): EnforcementBlocker[] {
  if (scan.defaults === null) return [];
  const asIf: RegionScan = { ...scan, defaults: { ...scan.defaults, httpTokensEnforced: 'enabled' } };
  const out: EnforcementBlocker[] = [];
  /** A blocker for `who` when its launch is refused; `detail` gets what it asks for and where from. */
  const ifRefused = (
    who: Pick<EnforcementBlocker, 'kind' | 'resourceId' | 'name'>,
    launch: Pick<GroupLaunch, 'options' | 'imageId'>,
    detail: (asks: string) => string,
  ) => {
    const r = launchIn(asIf, launch.options, launch.imageId);
    if (r.refused) out.push({ ...who, detail: detail(`HttpTokens=${r.tokens} (from ${r.source})`) });
  };
  for (const t of scan.launchTemplates) {
    for (const v of t.versions) {
      const which =
        v.versionNumber === t.defaultVersionNumber
          ? 'default'
          : v.versionNumber === t.latestVersionNumber
            ? 'latest'
            : null;
      if (!which) continue;
      ifRefused(
        { kind: 'launch-template', resourceId: t.launchTemplateId, name: t.launchTemplateName },
        { options: v.metadataOptions, imageId: v.imageId },
        (asks) => `${which} version ${v.versionNumber} asks for ${asks}: its launches are refused`,
      );
    }
  }
  for (const g of scan.autoScalingGroups) {
    const launch = groupLaunch(scan, g);
    if (!launch) continue;
    ifRefused(
      { kind: 'auto-scaling-group', resourceId: g.name, name: g.name },
      launch,
      (asks) =>
        `launches from ${launch.what}, which asks for ${asks}: it cannot scale out or replace instances`,
    );
  }
  for (const c of scan.launchConfigurations) {
    ifRefused(
      { kind: 'launch-configuration', resourceId: c.name, name: c.name },
      { options: c.metadataOptions, imageId: c.imageId },
      (asks) => `asks for ${asks}: its launches are refused`,
    );
  }
  return out;
}

/**
 * Readiness to enforce IMDSv2 in each scanned account and region. `usage` (keyed by instanceKey) is
 * the IMDSv1 evidence of the instances, when it was measured; without it, instances on optional are
 * listed with unknown use.
 */
export function enforcementReadiness(
  inv: Pick<Inventory, 'instances' | 'scans'>,
  usage?: ReadonlyMap<string, V1Evidence>,
): EnforcementReadiness[] {
  const byRegion = new Map<string, InstanceRecord[]>();
  for (const i of inv.instances) {
    if (!isLive(i) || !allowsImdsV1(i.metadataOptions)) continue;
    const k = `${i.accountId}/${i.region}`;
    const list = byRegion.get(k) ?? [];
    list.push(i);
    byRegion.set(k, list);
  }
  return inv.scans
    .filter((s) => s.status !== 'failed')
    .map((scan) => {
      const state = regionEnforcement(scan);
      const optional = byRegion.get(`${scan.accountId}/${scan.region}`) ?? [];
      const instances = optional.map((i) => optionalInstanceBlocker(i, usage?.get(instanceKey(i)) ?? null));
      const v1Calls = instances.filter((b) => (b.evidence?.v1Calls ?? 0) > 0).length;
      const unknownUse = instances.filter(
        (b) => !((b.evidence?.v1Calls ?? 0) > 0) && b.evidence?.readiness !== 'ready',
      ).length;
      const launches = refusedLaunches(scan);
      const verdict: EnforcementReadiness['verdict'] =
        state.enforcement === 'enabled'
          ? 'enforced'
          : state.enforcement === 'unknown'
            ? 'unknown'
            : launches.length > 0 || v1Calls > 0
              ? 'would-break'
              : unknownUse > 0
                ? 'unknown'
                : 'ready';
      const parts = [
        launches.length > 0 ? `${launches.length} launch source(s) would be refused` : null,
        v1Calls > 0 ? `${v1Calls} instance(s) on optional still make IMDSv1 calls` : null,
        unknownUse > 0 ? `${unknownUse} instance(s) on optional with unknown IMDSv1 use` : null,
      ].filter((x): x is string => x !== null);
      const summary =
        verdict === 'enforced'
          ? `IMDSv2 is enforced${state.managedBy === 'declarative-policy' ? ' by a declarative policy' : ''}${launches.length > 0 ? `; ${launches.length} launch source(s) are refused now` : ''}`
          : verdict === 'unknown' && state.enforcement === 'unknown'
            ? 'the account defaults could not be read'
            : verdict === 'ready'
              ? `ready: nothing would break (${optional.length} instance(s) on optional, none making IMDSv1 calls)`
              : parts.join('; ');
      return {
        ...state,
        verdict,
        launches,
        instances,
        counts: { optional: optional.length, v1Calls, unknownUse },
        summary,
      };
    });
}
