/**
 * Collects the inventory: for each account and region (bounded concurrency), every instance
 * (DescribeInstances, pages of 1,000), the account's IMDS defaults, launch templates with their
 * default and latest versions (and any version in use), Auto Scaling groups, launch configurations
 * and the AMIs in use. A failure is recorded for its account/region/stage and the rest goes on.
 */
import {
  paginateDescribeAutoScalingGroups,
  paginateDescribeLaunchConfigurations,
} from '@aws-sdk/client-auto-scaling';
import type { AccountTarget, AwsClientFactory } from '../aws/clients.js';
import { mapBounded } from '../aws/concurrency.js';
import { failureFields } from '../aws/errors.js';
import type { ResolvedTargets } from '../aws/targets.js';
import {
  COLLECT_DEFAULTS,
  collectDefaults,
  collectExtraVersions,
  collectImages,
  collectInstances,
  collectPages,
  collectTemplates,
  slots,
  TemplatesPartial,
} from './collect-resources.js';
import { toAutoScalingGroupRecord, toLaunchConfigurationRecord } from './convert.js';
import {
  type AccountRecord,
  type AutoScalingGroupRecord,
  compareStrings,
  type ImageRecord,
  INVENTORY_SCHEMA_VERSION,
  type InstanceRecord,
  type Inventory,
  type LaunchTemplateRecord,
  type RegionScan,
  type ScanFailure,
  type ScanStage,
} from './model.js';
import { RoleResolver } from './roles.js';

export interface CollectProgress {
  /** Account x region scans finished. */
  done: number;
  total: number;
  instances: number;
}

export interface CollectOptions {
  concurrency?: number | undefined;
  pageSize?: number | undefined;
  /**
   * What to collect besides instances (default: everything). `fleet roles` needs instances only;
   * images are needed for the instances' imageImdsSupport.
   */
  include?:
    | { defaults?: boolean; templates?: boolean; autoScaling?: boolean; images?: boolean; roles?: boolean }
    | undefined;
  onProgress?: ((p: CollectProgress) => void) | undefined;
  /**
   * Streaming: called with each page of a scan's instances (joined with their group, template name,
   * AMI support and roles; sorted by id within the page), before the next page is read (a slow reader
   * slows the scan, it never piles pages up). The inventory then holds no instances: memory follows
   * the pages in flight, not the fleet. A scan that fails after some pages has handed those on.
   */
  onInstances?:
    | ((page: InstanceRecord[], at: { accountId: string; region: string }) => Promise<void>)
    | undefined;
  /** Called as each account x region scan completes (with onInstances: its instances are not in it). */
  onScan?: ((part: ScanPart) => Promise<void> | void) | undefined;
  /** Clock for generatedAt (tests). */
  now?: (() => Date) | undefined;
}

/** One completed account x region scan, as onScan receives it. */
export interface ScanPart {
  scan: RegionScan;
  /** Empty when streaming (onInstances had them). */
  instances: InstanceRecord[];
  failures: ScanFailure[];
}

function byInstanceId(a: InstanceRecord, b: InstanceRecord): number {
  return compareStrings(a.instanceId, b.instanceId);
}

function failureOf(
  err: unknown,
  accountId: string | null,
  region: string | null,
  stage: ScanStage,
): ScanFailure {
  return { accountId, region, stage, ...failureFields(err) };
}

type ImageCall = { ok: ImageRecord[] } | { err: unknown };

interface ScanResult {
  scan: RegionScan;
  instances: InstanceRecord[];
  failures: ScanFailure[];
}

/** A region scan with nothing found yet. */
function emptyScan(accountId: string, region: string, status: RegionScan['status']): RegionScan {
  return {
    accountId,
    region,
    status,
    instanceCount: 0,
    defaults: null,
    defaultsManagement: null,
    launchTemplates: [],
    autoScalingGroups: [],
    launchConfigurations: [],
    images: [],
  };
}

/** The templates a settled DescribeLaunchTemplates(+Versions) gave, even when its versions failed. */
function templatesOf(r: PromiseSettledResult<LaunchTemplateRecord[]>): LaunchTemplateRecord[] {
  if (r.status === 'fulfilled') return r.value;
  return r.reason instanceof TemplatesPartial ? r.reason.templates : [];
}

/** Joins what instances do not say themselves: their group (without the tag) and template name. */
function joinInstances(
  instances: readonly InstanceRecord[],
  groups: readonly AutoScalingGroupRecord[],
  templates: readonly LaunchTemplateRecord[],
): void {
  const byId = new Map(instances.map((i) => [i.instanceId, i]));
  for (const g of groups) {
    for (const id of g.instanceIds) {
      const inst = byId.get(id);
      if (inst && inst.autoScalingGroupName === null) inst.autoScalingGroupName = g.name;
    }
  }
  const templateNames = new Map(templates.map((t) => [t.launchTemplateId, t.launchTemplateName]));
  for (const i of instances) {
    if (i.launchTemplate)
      i.launchTemplate.launchTemplateName = templateNames.get(i.launchTemplate.launchTemplateId) ?? null;
  }
}

async function scanRegion(
  factory: AwsClientFactory,
  target: AccountTarget,
  region: string,
  opts: CollectOptions,
  onPage: (n: number) => void,
  roles: RoleResolver | undefined,
  pageGate: (() => Promise<() => void>) | undefined,
): Promise<ScanResult> {
  const { accountId } = target;
  const include = {
    defaults: opts.include?.defaults ?? true,
    templates: opts.include?.templates ?? true,
    autoScaling: opts.include?.autoScaling ?? true,
    images: opts.include?.images ?? true,
  };
  const onInstances = opts.onInstances;
  const failures: ScanFailure[] = [];
  const scan = emptyScan(accountId, region, 'ok');
  const ec2 = factory.ec2(target, region);
  const asg = include.autoScaling ? factory.autoScaling(target, region) : undefined;
  // AMIs are described as their ids show up (page by page), overlapping with the next pages.
  const requestedImages = new Map<string, Promise<ImageCall>>();
  const imageCalls: Array<Promise<ImageCall>> = [];
  const requestImages = (ids: Iterable<string | null>) => {
    if (!include.images) return;
    const fresh = new Set<string>();
    for (const id of ids) if (id && !requestedImages.has(id)) fresh.add(id);
    if (fresh.size === 0) return;
    const call = collectImages(ec2, accountId, region, [...fresh].sort()).then(
      (ok): ImageCall => ({ ok }),
      (err: unknown): ImageCall => ({ err }),
    );
    imageCalls.push(call);
    for (const id of fresh) requestedImages.set(id, call);
  };
  const tplP = include.templates ? collectTemplates(ec2, accountId, region) : Promise.resolve([]);
  const grpP = asg
    ? collectPages(
        () => paginateDescribeAutoScalingGroups({ client: asg, pageSize: 100 }, {}),
        (p) => (p.AutoScalingGroups ?? []).map((g) => toAutoScalingGroupRecord(g, accountId, region)),
        { operation: 'autoscaling:DescribeAutoScalingGroups', accountId, region },
      )
    : Promise.resolve([]);
  // Streaming (onInstances): each page is joined and handed on before the next page is read, so a
  // region's instances are never held whole; only the template refs they use are kept.
  const joinReady = onInstances ? Promise.allSettled([tplP, grpP]) : undefined;
  // The template versions instances use (for collectExtraVersions), once each.
  const usedRefs = new Map<string, Pick<InstanceRecord, 'launchTemplate'>>();
  let streamed = 0;
  // What the stream's reader threw (the output failed, the run was stopped) ends the run, unlike
  // an AWS failure, which is recorded and the scan goes on.
  let streamError: { error: unknown } | undefined;
  const streamPage = async (records: InstanceRecord[]) => {
    if (!onInstances || !joinReady) return;
    try {
      const [tpl, grp] = await joinReady;
      joinInstances(records, grp.status === 'fulfilled' ? grp.value : [], templatesOf(tpl));
      const support = new Map<string, ImageRecord['imdsSupport']>();
      for (const call of new Set(
        records.map((r) => (r.imageId ? requestedImages.get(r.imageId) : undefined)),
      )) {
        const r = call ? await call : undefined;
        if (r && 'ok' in r) for (const img of r.ok) support.set(img.imageId, img.imdsSupport);
      }
      for (const i of records) {
        if (i.imageId && support.has(i.imageId)) i.imageImdsSupport = support.get(i.imageId) ?? null;
        const t = i.launchTemplate;
        const k = t ? `${t.launchTemplateId}|${t.version}` : '';
        if (t && !usedRefs.has(k)) usedRefs.set(k, { launchTemplate: { ...t } });
      }
      await roles?.assign(records);
      streamed += records.length;
      await onInstances(records.sort(byInstanceId), { accountId, region });
    } catch (error) {
      // Joins and lookups never reject: this is the reader's error (output failed, run stopped).
      streamError ??= { error };
      throw error;
    }
  };
  const [instR, defR, tplR, grpR, lcR] = await Promise.allSettled([
    collectInstances(
      ec2,
      accountId,
      region,
      opts.pageSize ?? COLLECT_DEFAULTS.pageSize,
      async (records) => {
        requestImages(records.map((r) => r.imageId));
        roles?.request(target, records);
        onPage(records.length);
        await streamPage(records);
      },
      { keep: !onInstances, gate: pageGate },
    ),
    include.defaults ? collectDefaults(ec2, accountId, region) : Promise.resolve(null),
    tplP,
    grpP,
    asg
      ? collectPages(
          () => paginateDescribeLaunchConfigurations({ client: asg, pageSize: 100 }, {}),
          (p) => (p.LaunchConfigurations ?? []).map((c) => toLaunchConfigurationRecord(c, accountId, region)),
          { operation: 'autoscaling:DescribeLaunchConfigurations', accountId, region },
        )
      : Promise.resolve([]),
  ]);

  if (streamError) throw streamError.error;
  if (instR.status === 'rejected') {
    // Without instances the scan failed; the other calls most likely failed for the same reason.
    await Promise.all(imageCalls);
    scan.status = 'failed';
    scan.instanceCount = streamed;
    failures.push(failureOf(instR.reason, accountId, region, 'instances'));
    return { scan, instances: [], failures };
  }
  const instances = instR.value;
  if (defR.status === 'fulfilled' && defR.value) {
    scan.defaults = defR.value.defaults;
    scan.defaultsManagement = defR.value.management;
  } else if (defR.status === 'rejected')
    failures.push(failureOf(defR.reason, accountId, region, 'account-defaults'));
  scan.launchTemplates = templatesOf(tplR);
  if (tplR.status === 'rejected') {
    const partial = tplR.reason instanceof TemplatesPartial;
    failures.push(
      failureOf(
        partial ? tplR.reason.error : tplR.reason,
        accountId,
        region,
        partial ? 'launch-template-versions' : 'launch-templates',
      ),
    );
  }
  if (grpR.status === 'fulfilled') scan.autoScalingGroups = grpR.value;
  else failures.push(failureOf(grpR.reason, accountId, region, 'auto-scaling-groups'));
  if (lcR.status === 'fulfilled') scan.launchConfigurations = lcR.value;
  else failures.push(failureOf(lcR.reason, accountId, region, 'launch-configurations'));

  joinInstances(instances, scan.autoScalingGroups, scan.launchTemplates);

  if (include.templates && scan.launchTemplates.length > 0) {
    try {
      await collectExtraVersions(
        ec2,
        accountId,
        region,
        scan.launchTemplates,
        onInstances ? [...usedRefs.values()] : instances,
        scan.autoScalingGroups,
      );
    } catch (err) {
      failures.push(failureOf(err, accountId, region, 'launch-template-versions'));
    }
  }

  if (include.images) {
    for (const t of scan.launchTemplates) requestImages(t.versions.map((v) => v.imageId));
    requestImages(scan.launchConfigurations.map((c) => c.imageId));
    let failed = false;
    for (const r of await Promise.all(imageCalls)) {
      if ('ok' in r) scan.images.push(...r.ok);
      else if (!failed) {
        failed = true;
        failures.push(failureOf(r.err, accountId, region, 'images'));
      }
    }
    scan.images.sort((a, b) => compareStrings(a.imageId, b.imageId));
    const support = new Map(scan.images.map((img) => [img.imageId, img.imdsSupport]));
    for (const i of instances) {
      if (i.imageId && support.has(i.imageId)) i.imageImdsSupport = support.get(i.imageId) ?? null;
    }
  }

  scan.instanceCount = onInstances ? streamed : instances.length;
  if (failures.length > 0) scan.status = 'partial';
  return { scan, instances, failures };
}

/** Collects the inventory of every target account and region. Never throws for a per-target failure. */
export async function collectInventory(
  factory: AwsClientFactory,
  targets: ResolvedTargets,
  opts: CollectOptions = {},
): Promise<Inventory> {
  const now = opts.now ?? (() => new Date());
  const tasks = targets.accounts.flatMap((account) => targets.regions.map((region) => ({ account, region })));
  const failures: ScanFailure[] = [];
  const assumeFailed = new Map<string, ScanFailure>();
  let done = 0;
  let instanceCount = 0;
  const progress = () => opts.onProgress?.({ done, total: tasks.length, instances: instanceCount });
  progress();

  // Instance profile roles are looked up as profiles show up in instance pages.
  const roles = (opts.include?.roles ?? true) ? new RoleResolver(factory) : undefined;
  // Streaming: the instance pages in flight across all scans are bounded (memory follows them).
  const pageGate = opts.onInstances ? slots(COLLECT_DEFAULTS.streamPagesInFlight) : undefined;
  const results = await mapBounded(
    tasks,
    opts.concurrency ?? COLLECT_DEFAULTS.concurrency,
    async ({ account, region }) => {
      try {
        if (account.roleArn !== null && !assumeFailed.has(account.accountId)) {
          try {
            await factory.assumeRole(account);
          } catch (err) {
            if (!assumeFailed.has(account.accountId)) {
              assumeFailed.set(account.accountId, failureOf(err, account.accountId, null, 'assume-role'));
            }
          }
        }
        const result: ScanResult = assumeFailed.has(account.accountId)
          ? { scan: emptyScan(account.accountId, region, 'failed'), instances: [], failures: [] }
          : await scanRegion(
              factory,
              account,
              region,
              opts,
              (n) => {
                instanceCount += n;
                progress();
              },
              roles,
              pageGate,
            );
        await opts.onScan?.(result);
        return result;
      } finally {
        done += 1;
        progress();
      }
    },
  );

  const accounts: AccountRecord[] = targets.accounts.map((a) => ({
    accountId: a.accountId,
    name: a.name,
    access: a.roleArn === null ? 'caller' : 'assumed',
    roleArn: a.roleArn,
    status: assumeFailed.has(a.accountId) ? 'failed' : 'ok',
  }));
  failures.push(...assumeFailed.values());
  const instances: InstanceRecord[] = [];
  const scans: RegionScan[] = [];
  for (const r of results) {
    scans.push(r.scan);
    failures.push(...r.failures);
    for (const i of r.instances) instances.push(i);
  }
  if (roles) {
    for (const f of await roles.finish(instances))
      failures.push(failureOf(f.error, f.accountId, null, 'roles'));
  }
  instances.sort((a, b) =>
    a.accountId !== b.accountId
      ? compareStrings(a.accountId, b.accountId)
      : a.region !== b.region
        ? compareStrings(a.region, b.region)
        : compareStrings(a.instanceId, b.instanceId),
  );
  return {
    schemaVersion: INVENTORY_SCHEMA_VERSION,
    generatedAt: now().toISOString(),
    regions: [...targets.regions],
    accounts,
    scans,
    instances,
    failures,
  };
}
