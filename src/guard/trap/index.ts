import { createHash, randomBytes } from 'node:crypto';
import type { TrapConfig } from '../../config/schema.js';
import type { ClassifiedRequest } from '../../imds/classify.js';
import { FLAVOR_SPECS, type Flavor } from '../../imds/flavors.js';
import { awsErrorPage, errorAnswer } from '../proxy/responses.js';

/**
 * Trap mode: answers shaped like the metadata service, without ever contacting it. An instance
 * identity is derived from the host name (stable across requests, different per host); the token
 * PUT works, a bad token gets 401, unknown paths get IMDS's 404 page, listings are text/plain, and
 * honey credentials are served only when configured. Never a constant 200.
 */

export interface TrapAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Trap {
  /** `token` is the value of the flavour's token header, if any (checked, never stored elsewhere). */
  answer(req: ClassifiedRequest, token: string | undefined): TrapAnswer;
}

/** Issued trap tokens kept at most (oldest dropped first). */
export const TRAP_MAX_TOKENS = 1024;

type Node = string | { [name: string]: Node } | (() => string);

function hex(seed: Buffer, from: number, len: number): string {
  return seed.toString('hex').slice(from, from + len);
}

export function createTrap(config: TrapConfig, flavor: Flavor, hostname: string, now: () => number): Trap {
  const spec = FLAVOR_SPECS[flavor];
  const seed = createHash('sha256').update(`imdsguard-trap:${hostname}`).digest();
  const instanceId = config.instanceId ?? `i-0${hex(seed, 0, 16)}`;
  const amiId = `ami-0${hex(seed, 16, 16)}`;
  const ip = `10.${seed[8]! % 250}.${seed[9]! % 250}.${(seed[10]! % 250) + 2}`;
  const mac = `0e:${[11, 12, 13, 14, 15].map((i) => seed[i]!.toString(16).padStart(2, '0')).join(':')}`;
  const account = String(100000000000 + (seed.readUInt32BE(20) % 899999999999)).padStart(12, '1');
  const region = config.region;
  const az = `${region}${'abc'[seed[24]! % 3]}`;
  const localHost = `ip-${ip.replace(/\./g, '-')}.${region === 'us-east-1' ? 'ec2.internal' : `${region}.compute.internal`}`;
  const honey = config.honeyCredentials;
  const bootTime = new Date(now() - 3_600_000 * (5 + (seed[25]! % 100)))
    .toISOString()
    .replace(/\.\d+Z$/, 'Z');
  const tokens = new Map<string, number>();

  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
  const metaData: Record<string, Node> = {
    'ami-id': amiId,
    'ami-launch-index': '0',
    'ami-manifest-path': '(unknown)',
    'block-device-mapping/': { ami: '/dev/xvda', root: '/dev/xvda' },
    hostname: localHost,
    'instance-action': 'none',
    'instance-id': instanceId,
    'instance-life-cycle': 'on-demand',
    'instance-type': 't3.medium',
    'local-hostname': localHost,
    'local-ipv4': ip,
    mac,
    'placement/': { 'availability-zone': az, region },
    profile: 'default-hvm',
    'reservation-id': `r-0${hex(seed, 32, 16)}`,
    'security-groups': 'default',
    'services/': { domain: 'amazonaws.com', partition: 'aws' },
  };
  if (honey) {
    metaData['iam/'] = {
      info: () =>
        JSON.stringify(
          {
            Code: 'Success',
            LastUpdated: bootTime,
            InstanceProfileArn: `arn:aws:iam::${account}:instance-profile/${honey.role}`,
            InstanceProfileId: `AIPA${hex(seed, 40, 17).toUpperCase()}`,
          },
          null,
          2,
        ),
      'security-credentials/': {
        [honey.role]: () => {
          const t = now();
          return JSON.stringify(
            {
              Code: 'Success',
              LastUpdated: iso(t - 600_000),
              Type: 'AWS-HMAC',
              AccessKeyId: honey.accessKeyId,
              SecretAccessKey: honey.secretAccessKey,
              Token: honey.token ?? randomBytes(240).toString('base64'),
              Expiration: iso(t + 6 * 3_600_000),
            },
            null,
            2,
          );
        },
      },
    };
  }
  const tree: Record<string, Node> = {
    'latest/': {
      'meta-data/': metaData,
      'dynamic/': {
        'instance-identity/': {
          document: () =>
            JSON.stringify(
              {
                accountId: account,
                architecture: 'x86_64',
                availabilityZone: az,
                billingProducts: null,
                devpayProductCodes: null,
                marketplaceProductCodes: null,
                imageId: amiId,
                instanceId,
                instanceType: 't3.medium',
                kernelId: null,
                pendingTime: bootTime,
                privateIp: ip,
                ramdiskId: null,
                region,
                version: '2017-09-30',
              },
              null,
              2,
            ),
        },
      },
    },
  };

  const aws = spec.token !== undefined;
  const text = (status: number, body: string, type = 'text/plain'): TrapAnswer => {
    const headers: Record<string, string> = {
      'content-type': type,
      'content-length': String(Buffer.byteLength(body)),
    };
    if (flavor === 'aws') headers['server'] = 'EC2ws';
    return { status, headers, body };
  };
  const err = (status: number): TrapAnswer => {
    const a = errorAnswer(flavor, status);
    return { status, headers: { ...a.headers }, body: a.body };
  };

  function lookup(path: string): Node | undefined {
    return lookupIn(tree, path);
  }

  function lookupIn(root: Record<string, Node>, path: string): Node | undefined {
    const parts = path.split('/').filter((p) => p !== '');
    let node: Node = root;
    for (const [i, p] of parts.entries()) {
      if (typeof node !== 'object') return undefined;
      const dir: Record<string, Node> = node;
      const last = i === parts.length - 1;
      const next: Node | undefined = dir[`${p}/`] ?? (last || dir[p] === undefined ? dir[p] : undefined);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  // Other clouds: a small, plausible tree each, derived from the same seed.
  const numericId = String(1_000_000_000_000_000n + BigInt(seed.readUInt32BE(26)) * 1_000_003n);
  const project = `prod-${hex(seed, 50, 6)}`;
  const gcpZone = 'us-central1-a';
  const otherTrees: Partial<Record<Flavor, Record<string, Node>>> = {
    gcp: {
      'computeMetadata/': {
        'v1/': {
          'instance/': {
            id: numericId,
            hostname: `vm-${hex(seed, 0, 6)}.${gcpZone}.c.${project}.internal`,
            zone: `projects/${account}/zones/${gcpZone}`,
            'machine-type': `projects/${account}/machineTypes/e2-medium`,
            'network-interfaces/': { '0/': { ip: ip } },
          },
          'project/': { 'project-id': project, 'numeric-project-id': account },
        },
      },
    },
    digitalocean: {
      'metadata/': {
        'v1/': { id: numericId.slice(0, 9), hostname: `droplet-${hex(seed, 0, 6)}`, region: 'nyc3' },
      },
    },
  };
  const azureInstance = () =>
    JSON.stringify({
      compute: {
        azEnvironment: 'AzurePublicCloud',
        location: 'eastus',
        name: `vm-${hex(seed, 0, 6)}`,
        osType: 'Linux',
        vmId: `${hex(seed, 0, 8)}-${hex(seed, 8, 4)}-${hex(seed, 12, 4)}-${hex(seed, 16, 4)}-${hex(seed, 20, 12)}`,
        vmSize: 'Standard_B2s',
      },
      network: { interface: [{ ipv4: { ipAddress: [{ privateIpAddress: ip }] } }] },
    });

  function other(req: ClassifiedRequest): TrapAnswer {
    if (flavor === 'azure') {
      if (!req.forwardPath.includes('api-version=')) {
        return text(
          400,
          JSON.stringify({ error: 'Bad request. api-version was not specified in the request' }),
          'application/json',
        );
      }
      if (req.path === '/metadata/instance' || req.path === '/metadata/instance/') {
        return text(200, azureInstance(), 'application/json; charset=utf-8');
      }
      return text(404, JSON.stringify({ error: 'Not found' }), 'application/json');
    }
    if (flavor === 'oci') {
      if (req.path === '/opc/v2/instance' || req.path === '/opc/v2/instance/') {
        return text(
          200,
          JSON.stringify({
            id: `ocid1.instance.oc1.iad.${hex(seed, 0, 60)}`,
            region: 'iad',
            shape: 'VM.Standard.E4.Flex',
          }),
          'application/json',
        );
      }
      return err(404);
    }
    const treeOf = otherTrees[flavor];
    const node = treeOf === undefined ? undefined : lookupIn(treeOf, req.path);
    const a =
      node === undefined
        ? err(404)
        : typeof node === 'string'
          ? text(200, node)
          : typeof node === 'function'
            ? text(200, node())
            : text(200, Object.keys(node).join('\n'));
    if (flavor === 'gcp') a.headers['metadata-flavor'] = 'Google';
    return a;
  }

  function pruneTokens(t: number): void {
    for (const [k, exp] of tokens) {
      if (exp <= t || tokens.size > TRAP_MAX_TOKENS) tokens.delete(k);
      else break;
    }
  }

  return {
    answer(req, presented) {
      if (req.forwardingHeaders.length > 0 && spec.refusesForwarded) return err(403);
      if (!aws) {
        const r = spec.requiredHeader;
        if (r && !req.requiredHeader) return err(r.statusWithout);
        if (req.method !== 'GET' && req.method !== 'HEAD') return err(405);
        return other(req);
      }
      const tok = spec.token!;
      const t = now();
      if (req.tokenPath) {
        if (req.method !== 'PUT') {
          const a = err(405);
          a.headers['allow'] = 'OPTIONS, PUT';
          return a;
        }
        const ttl = Number(req.ttl);
        if (req.ttl === undefined || !/^\d+$/.test(req.ttl.trim()) || ttl < tok.minTtl || ttl > tok.maxTtl) {
          return err(400);
        }
        pruneTokens(t);
        const token = `AQAEA${randomBytes(39).toString('base64url')}==`;
        tokens.set(token, t + ttl * 1000);
        const a = text(200, token);
        a.headers[tok.ttlHeader] = String(ttl);
        return a;
      }
      if (req.method === 'PUT') return err(403);
      if (req.method !== 'GET' && req.method !== 'HEAD') return err(405);
      if (req.hasToken) {
        const exp = presented === undefined ? undefined : tokens.get(presented);
        if (exp === undefined || exp <= t) return err(401);
      }
      if (req.path === '/') return text(200, 'latest');
      if (req.path === '/latest/user-data' || req.path === '/latest/user-data/') return err(404);
      const node = lookup(req.path);
      if (node === undefined) return text(404, awsErrorPage(404), 'text/html');
      if (typeof node === 'string') return text(200, node);
      if (typeof node === 'function') {
        return text(200, node());
      }
      return text(200, Object.keys(node).join('\n'));
    },
  };
}
