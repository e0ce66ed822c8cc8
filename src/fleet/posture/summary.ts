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

function finish<T extends PostureCounts>(c: T): T {
  c.percent = {
    tokensRequired: pct(c.tokensRequired, c.instances),
    tokensOptional: pct(c.tokensOptional, c.instances),
    endpointDisabled: pct(c.endpointDisabled, c.instances),
  };
  return c;
}

export function summarize(inv: Pick<Inventory, 'instances' | 'scans'>): PostureSummary {
  const overall = emptyCounts();
  const byAccount = new Map<string, PostureCounts & { accountId: string }>();
  const byRegion = new Map<string, PostureCounts & { region: string }>();
  const byAR = new Map<string, PostureCounts & { accountId: string; region: string }>();
  // Every scanned account and region gets a row, even with no instances.
  for (const s of inv.scans) {
    if (!byAccount.has(s.accountId)) byAccount.set(s.accountId, { accountId: s.accountId, ...emptyCounts() });
    if (!byRegion.has(s.region)) byRegion.set(s.region, { region: s.region, ...emptyCounts() });
    const k = `${s.accountId}/${s.region}`;
    if (!byAR.has(k)) byAR.set(k, { accountId: s.accountId, region: s.region, ...emptyCounts() });
  }
  for (const i of inv.instances) {
    if (!isLive(i)) continue;
    add(overall, i);
    let a = byAccount.get(i.accountId);
    if (!a) {
      a = { accountId: i.accountId, ...emptyCounts() };
      byAccount.set(i.accountId, a);
    }
    add(a, i);
    let r = byRegion.get(i.region);
    if (!r) {
      r = { region: i.region, ...emptyCounts() };
      byRegion.set(i.region, r);
    }
    add(r, i);
    const k = `${i.accountId}/${i.region}`;
    let ar = byAR.get(k);
    if (!ar) {
      ar = { accountId: i.accountId, region: i.region, ...emptyCounts() };
      byAR.set(k, ar);
    }
    add(ar, i);
  }
  return {
    overall: finish(overall),
    byAccount: [...byAccount.values()].map(finish).sort((x, y) => compareStrings(x.accountId, y.accountId)),
    byRegion: [...byRegion.values()].map(finish).sort((x, y) => compareStrings(x.region, y.region)),
    byAccountRegion: [...byAR.values()]
      .map(finish)
      .sort((x, y) => compareStrings(x.accountId, y.accountId) || compareStrings(x.region, y.region)),
  };
}
