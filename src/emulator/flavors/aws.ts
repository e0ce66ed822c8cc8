import { createHash, createHmac } from 'node:crypto';
import { flavorError, SERVER_HEADERS } from '../../imds/errors.js';
import { AWS_TOKEN, type TokenScheme } from '../../imds/flavors.js';
import { awsCredentialsDocument, isoSeconds } from '../credentials.js';
import type { InstanceModel } from '../instance.js';
import type { TokenIssuer } from '../tokens.js';
import { parseTtl } from '../tokens.js';
import { type LeafValue, listing, resolve, splitPath, type TreeDir } from '../tree.js';
import { type EmulatorState, type EmuRequest, type EmuResponse, hasHeader, header } from '../types.js';

/**
 * AWS EC2 IMDS (v1 and v2), following shared/IMDS.md. Order of checks:
 *   endpoint disabled -> 403; token path -> PUT rules; other methods -> 405;
 *   token plus X-Forwarded-For -> 403; bad token -> 401; tokenless with tokens=required -> 401;
 *   then the metadata tree (unknown path 404).
 */

/** API versions IMDS answers under (GET / lists them). */
export const AWS_VERSIONS = [
  '1.0',
  '2007-01-19',
  '2007-03-01',
  '2007-08-29',
  '2007-10-10',
  '2007-12-15',
  '2008-02-01',
  '2008-09-01',
  '2009-04-04',
  '2011-01-01',
  '2011-05-01',
  '2012-01-12',
  '2014-02-25',
  '2014-11-05',
  '2015-10-20',
  '2016-04-19',
  '2016-06-30',
  '2016-09-02',
  '2018-03-28',
  '2018-08-17',
  '2018-09-24',
  '2019-10-01',
  '2020-10-27',
  '2021-01-03',
  '2021-03-23',
  '2021-07-15',
  '2022-09-24',
  '2024-04-11',
  'latest',
] as const;

export function awsError(status: number, extra: Record<string, string> = {}): EmuResponse {
  const e = flavorError('aws', status);
  return { status, headers: { ...e.headers, ...extra }, body: e.body };
}

function text(body: string, extra: Record<string, string> = {}): EmuResponse {
  return { status: 200, headers: { 'content-type': 'text/plain', ...extra }, body };
}

/** A stable fake value derived from the instance (so signatures and ids do not change per request). */
export function derive(instance: InstanceModel, label: string, length: number): string {
  return createHash('sha256').update(instance.instanceId).update(label).digest('hex').slice(0, length);
}

export function identityDocument(i: InstanceModel): string {
  return JSON.stringify(
    {
      accountId: i.accountId,
      architecture: i.architecture,
      availabilityZone: i.availabilityZone,
      billingProducts: null,
      devpayProductCodes: null,
      marketplaceProductCodes: null,
      imageId: i.amiId,
      instanceId: i.instanceId,
      instanceType: i.instanceType,
      kernelId: null,
      pendingTime: isoSeconds(Date.parse(i.launchTime)),
      privateIp: i.localIpv4,
      ramdiskId: null,
      region: i.region,
      version: '2017-09-30',
    },
    null,
    2,
  );
}

/** A fake signature: base64 of an HMAC over the document (real ones are RSA/PKCS7, not verifiable here). */
/** A stable, signature-shaped base64 block for a document (not a real signature). */
export function signature(doc: string, bytes: number): string {
  const h = createHmac('sha512', 'imdsguard-emulator').update(doc).digest();
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = h[i % h.length] as number;
  return out.toString('base64').replace(/(.{64})/g, '$1\n');
}

/** Builds the meta-data tree of one instance. Credentials are computed per request. */
export function awsMetaDataTree(i: InstanceModel, state: EmulatorState): TreeDir {
  const macDir: Record<string, string> = {
    'device-number': '0',
    'interface-id': i.networkInterfaceId,
    'local-hostname': i.hostname,
    'local-ipv4s': i.localIpv4,
    mac: i.mac,
    'owner-id': i.accountId,
    'security-group-ids': i.securityGroups.map((g) => g.id).join('\n'),
    'security-groups': i.securityGroups.map((g) => g.name).join('\n'),
    'subnet-id': i.subnetId,
    'subnet-ipv4-cidr-block': i.subnetCidr,
    'vpc-id': i.vpcId,
    'vpc-ipv4-cidr-block': i.vpcCidr,
    'vpc-ipv4-cidr-blocks': i.vpcCidr,
  };
  if (i.publicIpv4 !== undefined) {
    macDir['public-ipv4s'] = i.publicIpv4;
    if (i.publicHostname !== undefined) macDir['public-hostname'] = i.publicHostname;
  }
  const tree: Record<string, string | TreeDir | (() => string)> = {
    'ami-id': i.amiId,
    'ami-launch-index': '0',
    'ami-manifest-path': '(unknown)',
    'block-device-mapping': { ami: '/dev/xvda', root: '/dev/xvda' },
    events: { maintenance: { history: '[]', scheduled: '[]' } },
    hostname: i.hostname,
  };
  const role = i.iam;
  const credentials = state.credentials;
  if (role !== null && credentials !== undefined) {
    const profileArn = role.instanceProfileArn ?? `arn:aws:iam::${i.accountId}:instance-profile/${role.role}`;
    tree['iam'] = {
      info: () => {
        const set = credentials.get();
        return JSON.stringify(
          {
            Code: 'Success',
            LastUpdated: isoSeconds(set.lastUpdated),
            InstanceProfileArn: profileArn,
            InstanceProfileId: role.instanceProfileId ?? `AIPA${derive(i, 'profile', 17).toUpperCase()}`,
          },
          null,
          2,
        );
      },
      'security-credentials': { [role.role]: () => awsCredentialsDocument(credentials.get()) },
    };
  }
  Object.assign(tree, {
    'instance-action': 'none',
    'instance-id': i.instanceId,
    'instance-life-cycle': 'on-demand',
    'instance-type': i.instanceType,
    'local-hostname': i.hostname,
    'local-ipv4': i.localIpv4,
    mac: i.mac,
    network: { interfaces: { macs: { [i.mac]: macDir } } },
    placement: {
      'availability-zone': i.availabilityZone,
      'availability-zone-id': i.availabilityZoneId,
      region: i.region,
    },
    profile: 'default-hvm',
  });
  if (i.publicIpv4 !== undefined) {
    if (i.publicHostname !== undefined) tree['public-hostname'] = i.publicHostname;
    tree['public-ipv4'] = i.publicIpv4;
  }
  tree['reservation-id'] = i.reservationId;
  tree['security-groups'] = i.securityGroups.map((g) => g.name).join('\n');
  tree['services'] = { domain: 'amazonaws.com', partition: 'aws' };
  tree['system'] = 'nitro';
  if (i.instanceMetadataTags === 'enabled') {
    tree['tags'] = { instance: Object.fromEntries(i.tags.map((t) => [t.key, t.value])) };
  }
  return tree;
}

export function awsDynamicTree(i: InstanceModel): TreeDir {
  const doc = identityDocument(i);
  return {
    'instance-identity': {
      document: doc,
      pkcs7: signature(doc, 768),
      rsa2048: signature(`rsa2048${doc}`, 1024),
      signature: signature(`sig${doc}`, 256),
    },
  };
}

const VERSION_LIKE = /^(\d+\.\d+|\d{4}-\d{2}-\d{2})$/;

export interface AwsHandlerOptions {
  /** The token scheme (AWS, or Alibaba's aliyun headers). */
  scheme: TokenScheme;
  tokens: TokenIssuer;
  /** Refuse the token PUT and token-bearing requests carrying X-Forwarded-For (AWS does). */
  refuseForwardedWithToken: boolean;
  /** API versions served (the first path segment); '' lists them at GET /. */
  versions: readonly string[];
  /** Answer 403 to a token PUT under a dated version instead of /latest (AWS does). */
  refuseVersionedTokenPut: boolean;
  /** Extra response headers on every response (Server: EC2ws, ...). */
  serverHeaders: Readonly<Record<string, string>>;
  /** Builds the tree served under /VERSION/. Called once; leaves may be dynamic. */
  root: (state: EmulatorState) => TreeDir;
}

/** The EC2-style handler, shared by AWS and Alibaba (which copies the EC2 API and IMDSv2 scheme). */
export function createEc2StyleHandler(opts: AwsHandlerOptions) {
  let cached: { instance: InstanceModel; root: TreeDir } | undefined;
  const { scheme } = opts;
  const versions = new Set<string>(opts.versions);
  return (req: EmuRequest, state: EmulatorState): EmuResponse => {
    const res = handle(req, state);
    res.headers = { ...opts.serverHeaders, ...res.headers };
    return res;
  };

  function rootFor(state: EmulatorState): TreeDir {
    if (cached === undefined || cached.instance !== state.instance) {
      cached = { instance: state.instance, root: opts.root(state) };
    }
    return cached.root;
  }

  function handle(req: EmuRequest, state: EmulatorState): EmuResponse {
    if (state.settings.endpoint === 'disabled') return awsError(403);
    const segs = splitPath(req.path);
    const version = segs[0] ?? '';
    const isTokenPath = segs.length === 3 && segs[1] === 'api' && segs[2] === 'token';
    const forwarded = hasHeader(req, 'x-forwarded-for');

    if (isTokenPath && version === 'latest') {
      if (req.method === 'OPTIONS') return { status: 200, headers: { allow: 'OPTIONS, PUT' }, body: '' };
      if (req.method !== 'PUT') return awsError(405, { allow: 'OPTIONS, PUT' });
      if (forwarded && opts.refuseForwardedWithToken) return { ...awsError(403), tokenPut: true };
      const ttl = parseTtl(req.headers[scheme.ttlHeader], scheme.minTtl, scheme.maxTtl);
      if (ttl === undefined) return { ...awsError(400), tokenPut: true };
      return {
        status: 200,
        headers: { 'content-type': 'text/plain', [scheme.ttlHeader]: String(ttl) },
        body: opts.tokens.issue(ttl),
        tokenPut: true,
      };
    }
    if (isTokenPath && opts.refuseVersionedTokenPut && VERSION_LIKE.test(version) && req.method === 'PUT') {
      return { ...awsError(403), tokenPut: true };
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return awsError(405, { allow: 'GET, HEAD' });

    const token = header(req, scheme.tokenHeader);
    const ttlHeaders: Record<string, string> = {};
    if (token !== undefined) {
      if (forwarded && opts.refuseForwardedWithToken) return awsError(403);
      const check = opts.tokens.check(token);
      if (!check.ok) return awsError(401);
      ttlHeaders[scheme.ttlHeader] = String(check.remainingSeconds);
    } else if (state.settings.tokens === 'required') {
      return awsError(401);
    }

    const served = serve(segs, state);
    if (served.status === 200) served.headers = { ...served.headers, ...ttlHeaders };
    return served;
  }

  function serve(segs: string[], state: EmulatorState): EmuResponse {
    const version = segs[0] ?? '';
    if (segs.length === 1 && version === '') return text(opts.versions.join('\n'));
    if (!versions.has(version)) return awsError(404);
    const root = rootFor(state);
    const rest = segs.slice(1);
    const found = resolve(root, rest);
    if (found === undefined) return awsError(404);
    // The version root lists dynamic, meta-data, user-data without trailing slashes (observed).
    if (found.kind === 'dir')
      return text(rest.every((s) => s === '') ? Object.keys(found.dir).join('\n') : listing(found.dir));
    const v: string | LeafValue = found.value;
    if (typeof v === 'string') return text(v);
    return { status: 200, headers: { 'content-type': v.contentType }, body: v.body };
  }
}

/** The AWS flavour handler. */
export function createAwsHandler(tokens: TokenIssuer) {
  return createEc2StyleHandler({
    scheme: AWS_TOKEN,
    tokens,
    refuseForwardedWithToken: true,
    versions: AWS_VERSIONS,
    refuseVersionedTokenPut: true,
    serverHeaders: SERVER_HEADERS.aws,
    root: (state) => {
      const i = state.instance;
      const root: Record<string, TreeDir | string> = {
        dynamic: awsDynamicTree(i),
        'meta-data': awsMetaDataTree(i, state),
      };
      if (i.userData !== null) root['user-data'] = i.userData;
      return root;
    },
  });
}
