import type { InstanceModel } from '../instance.js';
import { stableHex } from './common.js';

/**
 * Where the instance runs, written the way each cloud writes it. The instance file describes the
 * instance in AWS terms (region us-east-1, zone us-east-1a, type t3.micro); each other flavour shows a
 * comparable region of its own cloud, in its own format: GCP `us-central1-a`, Azure `eastus` (zone
 * "1"), DigitalOcean `nyc3`, OCI `us-ashburn-1` (key IAD, availability domain `xxxx:US-ASHBURN-AD-1`),
 * Alibaba `us-east-1` (zone `us-east-1a`). The zone letter picks among that region's zones. An AWS
 * region missing from the table maps like us-east-1. docs/emulator.md lists the table.
 */

interface OciRegion {
  /** The region identifier (canonical name), e.g. us-ashburn-1. */
  id: string;
  /** The three-letter region key, e.g. IAD. */
  key: string;
  /** What availability domain names start with: PHX, US-ASHBURN, or the identifier in capitals. */
  adPrefix?: string;
  /** Availability domains in the region. */
  ads: number;
}

interface Comparable {
  gcp: { region: string; zones: readonly string[] };
  azure: string;
  digitalocean: string;
  oci: OciRegion;
  alibaba: { region: string; zones: readonly string[] };
}

const ABC = ['a', 'b', 'c'] as const;
const IAD: OciRegion = { id: 'us-ashburn-1', key: 'IAD', adPrefix: 'US-ASHBURN', ads: 3 };
const PHX: OciRegion = { id: 'us-phoenix-1', key: 'PHX', adPrefix: 'PHX', ads: 3 };
const LHR: OciRegion = { id: 'uk-london-1', key: 'LHR', ads: 3 };
const FRA: OciRegion = { id: 'eu-frankfurt-1', key: 'FRA', ads: 3 };
const ALI_US_EAST = { region: 'us-east-1', zones: ['a', 'b'] };
const ALI_US_WEST = { region: 'us-west-1', zones: ['a', 'b'] };
const ALI_EU_CENTRAL = { region: 'eu-central-1', zones: ABC };
const ALI_SINGAPORE = { region: 'ap-southeast-1', zones: ABC };

/** AWS region -> a comparable region of each other cloud. */
const COMPARABLE: Readonly<Record<string, Comparable>> = {
  'us-east-1': {
    gcp: { region: 'us-central1', zones: ['a', 'b', 'c', 'f'] },
    azure: 'eastus',
    digitalocean: 'nyc3',
    oci: IAD,
    alibaba: ALI_US_EAST,
  },
  'us-east-2': {
    gcp: { region: 'us-east5', zones: ABC },
    azure: 'eastus2',
    digitalocean: 'nyc1',
    oci: IAD,
    alibaba: ALI_US_EAST,
  },
  'us-west-1': {
    gcp: { region: 'us-west2', zones: ABC },
    azure: 'westus',
    digitalocean: 'sfo3',
    oci: { id: 'us-sanjose-1', key: 'SJC', ads: 1 },
    alibaba: ALI_US_WEST,
  },
  'us-west-2': {
    gcp: { region: 'us-west1', zones: ABC },
    azure: 'westus2',
    digitalocean: 'sfo3',
    oci: PHX,
    alibaba: ALI_US_WEST,
  },
  'ca-central-1': {
    gcp: { region: 'northamerica-northeast1', zones: ABC },
    azure: 'canadacentral',
    digitalocean: 'tor1',
    oci: { id: 'ca-toronto-1', key: 'YYZ', ads: 1 },
    alibaba: ALI_US_EAST,
  },
  'sa-east-1': {
    gcp: { region: 'southamerica-east1', zones: ABC },
    azure: 'brazilsouth',
    digitalocean: 'nyc3',
    oci: { id: 'sa-saopaulo-1', key: 'GRU', ads: 1 },
    alibaba: ALI_US_EAST,
  },
  'eu-west-1': {
    gcp: { region: 'europe-west1', zones: ['b', 'c', 'd'] },
    azure: 'northeurope',
    digitalocean: 'lon1',
    oci: LHR,
    alibaba: { region: 'eu-west-1', zones: ['a', 'b'] },
  },
  'eu-west-2': {
    gcp: { region: 'europe-west2', zones: ABC },
    azure: 'uksouth',
    digitalocean: 'lon1',
    oci: LHR,
    alibaba: { region: 'eu-west-1', zones: ['a', 'b'] },
  },
  'eu-west-3': {
    gcp: { region: 'europe-west9', zones: ABC },
    azure: 'francecentral',
    digitalocean: 'ams3',
    oci: { id: 'eu-paris-1', key: 'CDG', ads: 1 },
    alibaba: ALI_EU_CENTRAL,
  },
  'eu-central-1': {
    gcp: { region: 'europe-west3', zones: ABC },
    azure: 'germanywestcentral',
    digitalocean: 'fra1',
    oci: FRA,
    alibaba: ALI_EU_CENTRAL,
  },
  'eu-north-1': {
    gcp: { region: 'europe-north1', zones: ABC },
    azure: 'swedencentral',
    digitalocean: 'ams3',
    oci: { id: 'eu-stockholm-1', key: 'ARN', ads: 1 },
    alibaba: ALI_EU_CENTRAL,
  },
  'ap-northeast-1': {
    gcp: { region: 'asia-northeast1', zones: ABC },
    azure: 'japaneast',
    digitalocean: 'sgp1',
    oci: { id: 'ap-tokyo-1', key: 'NRT', ads: 1 },
    alibaba: { region: 'ap-northeast-1', zones: ['a', 'b'] },
  },
  'ap-northeast-2': {
    gcp: { region: 'asia-northeast3', zones: ABC },
    azure: 'koreacentral',
    digitalocean: 'sgp1',
    oci: { id: 'ap-seoul-1', key: 'ICN', ads: 1 },
    alibaba: { region: 'ap-northeast-2', zones: ['a'] },
  },
  'ap-southeast-1': {
    gcp: { region: 'asia-southeast1', zones: ABC },
    azure: 'southeastasia',
    digitalocean: 'sgp1',
    oci: { id: 'ap-singapore-1', key: 'SIN', ads: 1 },
    alibaba: ALI_SINGAPORE,
  },
  'ap-southeast-2': {
    gcp: { region: 'australia-southeast1', zones: ABC },
    azure: 'australiaeast',
    digitalocean: 'syd1',
    oci: { id: 'ap-sydney-1', key: 'SYD', ads: 1 },
    alibaba: ALI_SINGAPORE,
  },
  'ap-south-1': {
    gcp: { region: 'asia-south1', zones: ABC },
    azure: 'centralindia',
    digitalocean: 'blr1',
    oci: { id: 'ap-mumbai-1', key: 'BOM', ads: 1 },
    alibaba: ALI_SINGAPORE,
  },
};

/** The AWS regions the table knows (others map like us-east-1). */
export const MAPPED_AWS_REGIONS: readonly string[] = Object.keys(COMPARABLE);

function comparable(i: InstanceModel): Comparable {
  return COMPARABLE[i.region] ?? (COMPARABLE['us-east-1'] as Comparable);
}

/** 0 for zone a, 1 for b, ...: the AWS zone's letter. */
function zoneIndex(i: InstanceModel): number {
  const letter = i.availabilityZone.slice(i.region.length);
  return Math.max(0, letter.charCodeAt(0) - 'a'.charCodeAt(0));
}

function pick<T>(items: readonly T[], i: InstanceModel): T {
  return items[zoneIndex(i) % items.length] as T;
}

/** GCP: the region (us-central1) and the zone (us-central1-a). */
export function gcpPlacement(i: InstanceModel): { region: string; zone: string } {
  const g = comparable(i).gcp;
  return { region: g.region, zone: `${g.region}-${pick(g.zones, i)}` };
}

/** Azure: the location (eastus) and the availability zone ("1", "2" or "3"). */
export function azurePlacement(i: InstanceModel): { location: string; zone: string } {
  return { location: comparable(i).azure, zone: String((zoneIndex(i) % 3) + 1) };
}

/** DigitalOcean: the region slug (nyc3). */
export function digitalOceanRegion(i: InstanceModel): string {
  return comparable(i).digitalocean;
}

export interface OciPlacement {
  /** us-ashburn-1 (canonicalRegionName, regionInfo.regionIdentifier). */
  regionId: string;
  /** IAD (regionInfo.regionKey). */
  regionKey: string;
  /** `region` as the metadata service writes it, and in OCIDs: phx and iad for the two oldest
   *  regions, the identifier everywhere else (eu-frankfurt-1). */
  shortRegion: string;
  /** Uocm:US-ASHBURN-AD-1: the tenancy's prefix, then the domain. */
  availabilityDomain: string;
  /** iad-ad-1. */
  adName: string;
}

/** OCI: region identifier and key, availability domain (its tenancy prefix derived from the instance). */
export function ociPlacement(i: InstanceModel): OciPlacement {
  const r = comparable(i).oci;
  const ad = (zoneIndex(i) % r.ads) + 1;
  const prefix = [...stableHex(i, 'oci-tenancy-prefix', 8)]
    .slice(0, 4)
    .map((h, n) => String.fromCharCode((n === 0 ? 65 : 97) + (Number.parseInt(h, 16) % 26)))
    .join('');
  return {
    regionId: r.id,
    regionKey: r.key,
    shortRegion: r.key === 'IAD' || r.key === 'PHX' ? r.key.toLowerCase() : r.id,
    availabilityDomain: `${prefix}:${r.adPrefix ?? r.id.toUpperCase()}-AD-${ad}`,
    adName: `${r.key.toLowerCase()}-ad-${ad}`,
  };
}

/** Alibaba Cloud: the region id (us-east-1) and the zone id (us-east-1a). */
export function alibabaPlacement(i: InstanceModel): { regionId: string; zoneId: string } {
  const a = comparable(i).alibaba;
  return { regionId: a.region, zoneId: `${a.region}${pick(a.zones, i)}` };
}

/** The size word of an AWS instance type (t3.micro -> micro, m5.2xlarge -> 2xlarge). */
function sizeOf(i: InstanceModel): string {
  return i.instanceType.split('.')[1] ?? 'large';
}

/** vCPUs of an AWS size word from large up: large 2, xlarge 4, Nxlarge 4N (anything else: 2). */
function vcpusOf(size: string): number {
  const m = /^(\d*)xlarge$/.exec(size);
  return m ? 4 * Number(m[1] === '' ? 1 : m[1]) : 2;
}

/** A machine type of each cloud for the instance's AWS type, by size. */
export function machineType(cloud: 'gcp' | 'azure' | 'alibaba', i: InstanceModel): string {
  const size = sizeOf(i);
  const small: Record<string, Record<'gcp' | 'azure' | 'alibaba', string>> = {
    nano: { gcp: 'e2-micro', azure: 'Standard_B1ls', alibaba: 'ecs.t6-c4m1.large' },
    micro: { gcp: 'e2-micro', azure: 'Standard_B1s', alibaba: 'ecs.t6-c2m1.large' },
    small: { gcp: 'e2-small', azure: 'Standard_B1ms', alibaba: 'ecs.t6-c1m1.large' },
    medium: { gcp: 'e2-medium', azure: 'Standard_B2s', alibaba: 'ecs.t6-c1m2.large' },
  };
  const named = small[size]?.[cloud];
  if (named !== undefined) return named;
  const vcpus = vcpusOf(size);
  if (cloud === 'gcp') return `e2-standard-${vcpus}`;
  if (cloud === 'azure') return `Standard_D${vcpus}s_v5`;
  return vcpus === 2 ? 'ecs.g7.large' : `ecs.g7.${vcpus === 4 ? '' : vcpus / 4}xlarge`;
}
