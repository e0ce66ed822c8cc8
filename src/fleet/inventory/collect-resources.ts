/**
 * The per-resource collectors of one account and region, each wrapping its errors with the call's
 * context: instances (page by page), the account's IMDS defaults, launch templates with their default
 * and latest versions (and any other version in use), and AMIs. collect.ts runs them per region.
 */
import {
  DescribeImagesCommand,
  type DescribeInstancesCommandOutput,
  type EC2Client,
  GetInstanceMetadataDefaultsCommand,
  paginateDescribeInstances,
  paginateDescribeLaunchTemplates,
  paginateDescribeLaunchTemplateVersions,
} from '@aws-sdk/client-ec2';
import type { ImdsguardError } from '../../errors.js';
import { mapBounded } from '../aws/concurrency.js';
import { type AwsCallContext, awsErrorCode, wrapAwsError } from '../aws/errors.js';
import {
  toDefaultsManagement,
  toDefaultsRecord,
  toImageRecord,
  toInstanceRecord,
  toTemplateVersionRecord,
} from './convert.js';
import type {
  AccountDefaultsRecord,
  AutoScalingGroupRecord,
  DefaultsManagement,
  ImageRecord,
  InstanceRecord,
  LaunchTemplateRecord,
} from './model.js';

/** Defaults, with units. */
export const COLLECT_DEFAULTS = {
  /** Account x region scans in flight. */
  concurrency: 8,
  /** DescribeInstances MaxResults (the API maximum). */
  pageSize: 1000,
  /** Image ids per DescribeImages call (image-id filter values). */
  imagesPerCall: 200,
  /** Launch templates whose extra versions are described at once, per region. */
  templateConcurrency: 4,
  /**
   * Streaming (fleet discover --format ndjson|csv): DescribeInstances pages being fetched, parsed and
   * handed on at once, across all scans. A page of 1,000 instances takes about 30 MB while the SDK
   * parses it: this bounds the memory of a streamed run, whatever the fleet and the concurrency.
   */
  streamPagesInFlight: 2,
} as const;

/** At most `n` holders at once: acquire() resolves with the function that releases the slot. */
export function slots(n: number): () => Promise<() => void> {
  let free = n;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free += 1;
  };
  return async () => {
    if (free > 0) free -= 1;
    else await new Promise<void>((go) => waiting.push(go));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  };
}

/**
 * Every instance, page by page: `onPage` sees each page before the next is asked for (it may wait).
 * `keep: false` returns none (a streamed scan: onPage had them all). `gate`: a slot is held from the
 * request of a page until onPage is done with it.
 */
export async function collectInstances(
  ec2: EC2Client,
  accountId: string,
  region: string,
  pageSize: number,
  onPage: (records: InstanceRecord[]) => void | Promise<void>,
  opts: { keep?: boolean; gate?: () => Promise<() => void> } = {},
): Promise<InstanceRecord[]> {
  const out: InstanceRecord[] = [];
  const pages = paginateDescribeInstances({ client: ec2, pageSize }, {})[Symbol.asyncIterator]();
  for (;;) {
    const release = opts.gate ? await opts.gate() : () => {};
    try {
      let next: IteratorResult<DescribeInstancesCommandOutput>;
      try {
        next = await pages.next();
      } catch (err) {
        throw wrapAwsError(err, { operation: 'ec2:DescribeInstances', accountId, region });
      }
      if (next.done) break;
      const records: InstanceRecord[] = [];
      for (const res of next.value.Reservations ?? []) {
        // Every instance of every reservation: a reservation may hold many.
        for (const inst of res.Instances ?? []) records.push(toInstanceRecord(inst, accountId, region));
      }
      if (opts.keep !== false) for (const r of records) out.push(r);
      // Outside the AWS error wrapping: what onPage throws is its own error, not the call's.
      await onPage(records);
    } finally {
      release();
    }
  }
  return out;
}

/** The account's IMDS defaults in a region, and who manages them. */
export async function collectDefaults(
  ec2: EC2Client,
  accountId: string,
  region: string,
): Promise<{ defaults: AccountDefaultsRecord; management: DefaultsManagement }> {
  try {
    const out = await ec2.send(new GetInstanceMetadataDefaultsCommand({}));
    return {
      defaults: toDefaultsRecord(out.AccountLevel),
      management: toDefaultsManagement(out.AccountLevel),
    };
  } catch (err) {
    throw wrapAwsError(err, { operation: 'ec2:GetInstanceMetadataDefaults', accountId, region });
  }
}

export async function collectTemplates(
  ec2: EC2Client,
  accountId: string,
  region: string,
): Promise<LaunchTemplateRecord[]> {
  const templates = new Map<string, LaunchTemplateRecord>();
  try {
    for await (const page of paginateDescribeLaunchTemplates({ client: ec2, pageSize: 200 }, {})) {
      for (const t of page.LaunchTemplates ?? []) {
        if (!t.LaunchTemplateId) continue;
        templates.set(t.LaunchTemplateId, {
          accountId,
          region,
          launchTemplateId: t.LaunchTemplateId,
          launchTemplateName: t.LaunchTemplateName ?? '',
          defaultVersionNumber: t.DefaultVersionNumber ?? 0,
          latestVersionNumber: t.LatestVersionNumber ?? 0,
          versions: [],
        });
      }
    }
  } catch (err) {
    throw wrapAwsError(err, { operation: 'ec2:DescribeLaunchTemplates', accountId, region });
  }
  if (templates.size === 0) return [];
  try {
    // Without a template id, $Default and $Latest of every template come back in one paginated call.
    for await (const page of paginateDescribeLaunchTemplateVersions(
      { client: ec2, pageSize: 200 },
      { Versions: ['$Default', '$Latest'] },
    )) {
      for (const v of page.LaunchTemplateVersions ?? []) {
        const t = v.LaunchTemplateId ? templates.get(v.LaunchTemplateId) : undefined;
        if (!t) continue;
        const rec = toTemplateVersionRecord(v);
        if (!t.versions.some((x) => x.versionNumber === rec.versionNumber)) t.versions.push(rec);
      }
    }
  } catch (err) {
    throw new TemplatesPartial(
      [...templates.values()],
      wrapAwsError(err, { operation: 'ec2:DescribeLaunchTemplateVersions', accountId, region }),
    );
  }
  return [...templates.values()];
}

/** Templates were listed but their versions could not be described. */
export class TemplatesPartial extends Error {
  readonly templates: LaunchTemplateRecord[];
  readonly error: ImdsguardError;
  constructor(templates: LaunchTemplateRecord[], error: ImdsguardError) {
    super(error.message);
    this.templates = templates;
    this.error = error;
  }
}

/** Describes template versions that instances or groups use but that are neither default nor latest. */
export async function collectExtraVersions(
  ec2: EC2Client,
  accountId: string,
  region: string,
  templates: LaunchTemplateRecord[],
  instances: ReadonlyArray<Pick<InstanceRecord, 'launchTemplate'>>,
  groups: AutoScalingGroupRecord[],
): Promise<void> {
  const wanted = new Map<string, Set<number>>();
  const want = (id: string | null, version: string | null) => {
    if (!id || !version || !/^\d+$/.test(version)) return;
    const t = templates.find((x) => x.launchTemplateId === id);
    if (!t || t.versions.some((v) => v.versionNumber === Number(version))) return;
    let s = wanted.get(id);
    if (!s) {
      s = new Set();
      wanted.set(id, s);
    }
    s.add(Number(version));
  };
  for (const i of instances)
    want(i.launchTemplate?.launchTemplateId ?? null, i.launchTemplate?.version ?? null);
  for (const g of groups) want(g.launchTemplate?.launchTemplateId ?? null, g.launchTemplate?.version ?? null);
  await mapBounded([...wanted], COLLECT_DEFAULTS.templateConcurrency, async ([id, versions]) => {
    const t = templates.find((x) => x.launchTemplateId === id) as LaunchTemplateRecord;
    try {
      for await (const page of paginateDescribeLaunchTemplateVersions(
        { client: ec2, pageSize: 200 },
        { LaunchTemplateId: id, Versions: [...versions].map(String) },
      )) {
        for (const v of page.LaunchTemplateVersions ?? []) t.versions.push(toTemplateVersionRecord(v));
      }
    } catch (err) {
      // A deleted version is not an error of the scan: the instance just keeps its recorded number.
      if (awsErrorCode(err) === 'InvalidLaunchTemplateId.VersionNotFound') return;
      throw wrapAwsError(err, { operation: 'ec2:DescribeLaunchTemplateVersions', accountId, region });
    }
  });
  for (const t of templates) t.versions.sort((a, b) => a.versionNumber - b.versionNumber);
}

export async function collectImages(
  ec2: EC2Client,
  accountId: string,
  region: string,
  imageIds: string[],
): Promise<ImageRecord[]> {
  const out: ImageRecord[] = [];
  for (let i = 0; i < imageIds.length; i += COLLECT_DEFAULTS.imagesPerCall) {
    const chunk = imageIds.slice(i, i + COLLECT_DEFAULTS.imagesPerCall);
    try {
      // A filter, not ImageIds: an id that is gone (deregistered, unshared) must not fail the call.
      let token: string | undefined;
      do {
        const page = await ec2.send(
          new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: chunk }], NextToken: token }),
        );
        for (const img of page.Images ?? []) out.push(toImageRecord(img, accountId, region));
        token = page.NextToken;
      } while (token);
    } catch (err) {
      throw wrapAwsError(err, { operation: 'ec2:DescribeImages', accountId, region });
    }
  }
  return out;
}

/** Every record of every page; any error is wrapped with the call's context. */
export async function collectPages<P, R>(
  pages: () => AsyncIterable<P>,
  records: (page: P) => R[],
  ctx: AwsCallContext,
): Promise<R[]> {
  const out: R[] = [];
  try {
    for await (const p of pages()) out.push(...records(p));
  } catch (err) {
    throw wrapAwsError(err, ctx);
  }
  return out;
}
