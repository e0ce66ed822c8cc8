/**
 * Protocol facts per cloud flavour (see shared IMDS.md). The emulator serves them and the guard's
 * flavour-aware defaults follow them. Header names are lower-case, as node:http gives them.
 */

export const FLAVORS = ['aws', 'gcp', 'azure', 'digitalocean', 'oci', 'alibaba'] as const;
export type Flavor = (typeof FLAVORS)[number];

export interface TokenScheme {
  /** Path of the token PUT. */
  path: string;
  /** Request header carrying the requested TTL on the PUT. */
  ttlHeader: string;
  /** Request header carrying the token on later requests. */
  tokenHeader: string;
  minTtl: number;
  maxTtl: number;
}

export interface FlavorSpec {
  flavor: Flavor;
  /** Addresses the metadata service answers on (IPv4 and, where one exists, IPv6). */
  addresses: readonly string[];
  /** Host names that resolve to it. */
  hostnames: readonly string[];
  /** Path prefixes of its API (a request outside them is unknown). */
  roots: readonly string[];
  /** A header every data request must carry, and its value (compared case-insensitively). */
  requiredHeader?: { name: string; value: string; statusWithout: number };
  /** Whether the service itself refuses requests carrying forwarding headers. */
  refusesForwarded: boolean;
  token?: TokenScheme;
}

export const FORWARDING_HEADERS = ['x-forwarded-for', 'forwarded', 'x-forwarded-host'] as const;

export const AWS_TOKEN: TokenScheme = {
  path: '/latest/api/token',
  ttlHeader: 'x-aws-ec2-metadata-token-ttl-seconds',
  tokenHeader: 'x-aws-ec2-metadata-token',
  minTtl: 1,
  maxTtl: 21600,
};

export const FLAVOR_SPECS: Readonly<Record<Flavor, FlavorSpec>> = {
  aws: {
    flavor: 'aws',
    addresses: ['169.254.169.254', 'fd00:ec2::254'],
    hostnames: ['instance-data', 'instance-data.ec2.internal'],
    roots: ['/latest/', '/20'],
    refusesForwarded: true,
    token: AWS_TOKEN,
  },
  gcp: {
    flavor: 'gcp',
    addresses: ['169.254.169.254'],
    hostnames: ['metadata.google.internal', 'metadata'],
    roots: ['/computeMetadata/v1/'],
    requiredHeader: { name: 'metadata-flavor', value: 'Google', statusWithout: 403 },
    refusesForwarded: true,
  },
  azure: {
    flavor: 'azure',
    addresses: ['169.254.169.254'],
    hostnames: [],
    roots: ['/metadata/'],
    requiredHeader: { name: 'metadata', value: 'true', statusWithout: 400 },
    refusesForwarded: true,
  },
  digitalocean: {
    flavor: 'digitalocean',
    addresses: ['169.254.169.254'],
    hostnames: [],
    roots: ['/metadata/v1/', '/metadata/v1.json'],
    refusesForwarded: false,
  },
  oci: {
    flavor: 'oci',
    addresses: ['169.254.169.254'],
    hostnames: [],
    roots: ['/opc/v2/', '/opc/v1/'],
    requiredHeader: { name: 'authorization', value: 'Bearer Oracle', statusWithout: 401 },
    refusesForwarded: true,
  },
  alibaba: {
    flavor: 'alibaba',
    addresses: ['100.100.100.200'],
    hostnames: [],
    roots: ['/latest/'],
    refusesForwarded: false,
    token: {
      path: '/latest/api/token',
      ttlHeader: 'x-aliyun-ecs-metadata-token-ttl-seconds',
      tokenHeader: 'x-aliyun-ecs-metadata-token',
      minTtl: 1,
      maxTtl: 21600,
    },
  },
};
