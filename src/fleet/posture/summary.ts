/**
 * PURE: counts and percentages of IMDS settings per account, per region and overall.
 * Instances that are terminated or shutting down are left out (they can no longer be changed).
 */
import { allowsImdsV1, compareStrings, type InstanceRecord, type Inventory } from '../inventory/model.js';

export interface PostureCounts {
  /** Instances counted (terminated and shutting-down left out). */
  instances: number;
  /** Endpoint enabled and HttpTokens=required. */
  tokensRequired: number;
  /** Endpoint enabled and HttpTokens=optional: IMDSv1 works. */
  tokensOptional: number;
  /** HttpEndpoint=disabled. */
  endpointDisabled: number;
  /** Metadata options still pending. */
  pending: number;
  /** Instances with an instance profile. */
  withInstanceProfile: number;
  /** IMDSv1 works and the instance has an instance profile (credentials exposed to v1). */
  imdsV1WithProfile: number;
  hopLimit: { '1': number; '2': number; '>2': number };
  ipv6Enabled: number;
  tagsInMetadata: number;
  /** Percentages of `instances`, one decimal; 0 when there are none. */
  percent: { tokensRequired: number; tokensOptional: number; endpointDisabled: number };
}

export interface PostureSummary {
  overall: PostureCounts;
  byAccount: Array<PostureCounts & { accountId: string }>;
  byRegion: Array<PostureCounts & { region: string }>;
  byAccountRegion: Array<PostureCounts & { accountId: string; region: string }>;
}

const GONE = new Set(['terminated', 'shutting-down']);

/** Whether an instance is counted in posture and findings. */
export function isLive(i: Pick<InstanceRecord, 'state'>): boolean {
  return !GONE.has(i.state);
}

function emptyCounts(): PostureCounts {
  return {
    instances: 0,
    tokensRequired: 0,
    tokensOptional: 0,
    endpointDisabled: 0,
    pending: 0,
    withInstanceProfile: 0,
    imdsV1WithProfile: 0,
    hopLimit: { '1': 0, '2': 0, '>2': 0 },
    ipv6Enabled: 0,
    tagsInMetadata: 0,
    percent: { tokensRequired: 0, tokensOptional: 0, endpointDisabled: 0 },
  };
}

function pct(n: number, d: number): number {
  return d === 0 ? 0 : Math.round((n / d) * 1000) / 10;
}

function add(c: PostureCounts, i: InstanceRecord): void {
  const m = i.metadataOptions;
  c.instances += 1;
  if (m.httpEndpoint === 'disabled') c.endpointDisabled += 1;
  else if (m.httpTokens === 'required') c.tokensRequired += 1;
  else c.tokensOptional += 1;
  if (m.state === 'pending') c.pending += 1;
  if (i.instanceProfileArn) c.withInstanceProfile += 1;
  if (i.instanceProfileArn && allowsImdsV1(m)) c.imdsV1WithProfile += 1;
  const hop = m.httpPutResponseHopLimit ?? 1;
  if (hop <= 1) c.hopLimit['1'] += 1;
  else if (hop === 2) c.hopLimit['2'] += 1;
  else c.hopLimit['>2'] += 1;
  if (m.httpProtocolIpv6 === 'enabled') c.ipv6Enabled += 1;
  if (m.instanceMetadataTags === 'enabled') c.tagsInMetadata += 1;
}

const SUMMED = [
  'instances',
  'tokensRequired',
  'tokensOptional',
  'endpointDisabled',
  'pending',
  'withInstanceProfile',
  'imdsV1WithProfile',
  'ipv6Enabled',
  'tagsInMetadata',
] as const satisfies readonly (keyof PostureCounts)[];

/** Adds the counts of `from` to `into` (percentages are computed by finish). */
function merge(into: PostureCounts, from: PostureCounts): void {
  for (const k of SUMMED) into[k] += from[k];
  for (const h of ['1', '2', '>2'] as const) into.hopLimit[h] += from.hopLimit[h];
}

function finish<T extends PostureCounts>(c: T): T {
  c.percent = {
    tokensRequired: pct(c.tokensRequired, c.instances),
    tokensOptional: pct(c.tokensOptional, c.instances),
    endpointDisabled: pct(c.endpointDisabled, c.instances),
  };
  return c;
}

/**
 * The posture counts, built one scan and one instance at a time (a streamed discover never holds the
 * whole fleet); summarize() is the same over a whole inventory.
 */
export class PostureTally {
  private readonly overall = emptyCounts();
  private readonly byAccount = new Map<string, PostureCounts & { accountId: string }>();
  private readonly byRegion = new Map<string, PostureCounts & { region: string }>();
  private readonly byAR = new Map<string, PostureCounts & { accountId: string; region: string }>();

  /** Every scanned account and region gets a row, even with no instances. */
  addScan(s: { accountId: string; region: string }): void {
    this.rows(s.accountId, s.region);
  }

  /**
   * Counts of one account and region kept apart until commit(), so that the instances of a scan that
   * fails part-way are never counted (as summarize() never sees them).
   */
  stage(accountId: string, region: string): { add(i: InstanceRecord): void; commit(): void } {
    const staged = emptyCounts();
    return {
      add: (i) => {
        if (isLive(i)) add(staged, i);
      },
      commit: () => {
        const { a, r, ar } = this.rows(accountId, region);
        for (const c of [this.overall, a, r, ar]) merge(c, staged);
      },
    };
  }

  /** Counts a live instance (terminated and shutting-down ones are left out). */
  addInstance(i: InstanceRecord): void {
    if (!isLive(i)) return;
    add(this.overall, i);
    const { a, r, ar } = this.rows(i.accountId, i.region);
    add(a, i);
    add(r, i);
    add(ar, i);
  }

  private rows(accountId: string, region: string) {
    let a = this.byAccount.get(accountId);
    if (!a) {
      a = { accountId, ...emptyCounts() };
      this.byAccount.set(accountId, a);
    }
    let r = this.byRegion.get(region);
    if (!r) {
      r = { region, ...emptyCounts() };
      this.byRegion.set(region, r);
    }
    const k = `${accountId}/${region}`;
    let ar = this.byAR.get(k);
    if (!ar) {
      ar = { accountId, region, ...emptyCounts() };
      this.byAR.set(k, ar);
    }
    return { a, r, ar };
  }

  summary(): PostureSummary {
    const copy = <T extends PostureCounts>(c: T): T => finish({ ...c, hopLimit: { ...c.hopLimit } });
    return {
      overall: copy(this.overall),
      byAccount: [...this.byAccount.values()]
        .map(copy)
        .sort((x, y) => compareStrings(x.accountId, y.accountId)),
      byRegion: [...this.byRegion.values()].map(copy).sort((x, y) => compareStrings(x.region, y.region)),
      byAccountRegion: [...this.byAR.values()]
        .map(copy)
        .sort((x, y) => compareStrings(x.accountId, y.accountId) || compareStrings(x.region, y.region)),
    };
  }
}

export function summarize(inv: Pick<Inventory, 'instances' | 'scans'>): PostureSummary {
  const tally = new PostureTally();
  for (const s of inv.scans) tally.addScan(s);
  for (const i of inv.instances) tally.addInstance(i);
  return tally.summary();
}
