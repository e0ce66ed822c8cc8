import { createHash } from 'node:crypto';
import { SERVER_HEADERS } from '../../imds/errors.js';
import { FLAVOR_SPECS } from '../../imds/flavors.js';
import type { CredentialSet } from '../credentials.js';
import { isoSeconds } from '../credentials.js';
import type { InstanceModel } from '../instance.js';
import type { TokenIssuer } from '../tokens.js';
import type { TreeDir } from '../tree.js';
import type { EmulatorState } from '../types.js';
import { createEc2StyleHandler, signature } from './aws.js';
import { numericId, stableHex } from './common.js';
import { alibabaPlacement, machineType } from './placement.js';

/**
 * Alibaba Cloud ECS metadata (100.100.100.200 in the cloud; served here on whatever address the
 * emulator listens on). The API copies EC2's layout under /latest/ and its hardened mode copies
 * IMDSv2 with aliyun header names: PUT /latest/api/token with X-aliyun-ecs-metadata-token-ttl-seconds
 * (1..21600), then X-aliyun-ecs-metadata-token. tokens=required models "security hardening mode only".
 * Statuses for bad or missing tokens follow AWS (400, 401); Alibaba does not refuse forwarding headers.
 */

function ramCredentials(set: CredentialSet): string {
  return JSON.stringify(
    {
      AccessKeyId: `STS.${set.accessKeyId.slice(4)}${createHash('sha256').update(set.accessKeyId).digest('hex').slice(0, 8)}`,
      AccessKeySecret: set.secretAccessKey,
      Expiration: isoSeconds(set.expiration),
      SecurityToken: `CAIS${set.sessionToken.slice(16)}`,
      LastUpdated: isoSeconds(set.lastUpdated),
      Code: 'Success',
    },
    null,
    2,
  );
}

/** What the metadata tree and the identity document both say about the instance. */
function alibabaFacts(i: InstanceModel) {
  const placement = alibabaPlacement(i);
  return {
    'instance-id': `i-${stableHex(i, 'ali-instance', 20)}`,
    'instance-type': machineType('alibaba', i),
    'image-id': `aliyun_3_x64_20G_alibase_${numericId(i, 'ali-image', 8)}.vhd`,
    'owner-account-id': numericId(i, 'ali-account', 16),
    'region-id': placement.regionId,
    'zone-id': placement.zoneId,
    'serial-number': `${stableHex(i, 'ali-serial', 8)}-${stableHex(i, 'ali-serial2', 4)}`,
  };
}

/** dynamic/instance-identity: Alibaba's own document (hyphenated keys) and its pkcs7 block. */
function alibabaDynamicTree(i: InstanceModel): TreeDir {
  const facts = alibabaFacts(i);
  const document = JSON.stringify({
    'account-id': facts['owner-account-id'],
    'owner-account-id': facts['owner-account-id'],
    'instance-id': facts['instance-id'],
    'instance-type': facts['instance-type'],
    'image-id': facts['image-id'],
    mac: i.mac,
    'private-ipv4': i.localIpv4,
    'region-id': facts['region-id'],
    'zone-id': facts['zone-id'],
    'serial-number': facts['serial-number'],
  });
  return { 'instance-identity': { document, pkcs7: signature(document, 768) } };
}

function alibabaMetaData(i: InstanceModel, state: EmulatorState): TreeDir {
  const facts = alibabaFacts(i);
  const vpcId = `vpc-${stableHex(i, 'ali-vpc', 20)}`;
  const vswitchId = `vsw-${stableHex(i, 'ali-vsw', 20)}`;
  const eniId = `eni-${stableHex(i, 'ali-eni', 20)}`;
  const tree: Record<string, TreeDir | string | (() => string)> = {
    'dns-conf': { nameservers: '100.100.2.136\n100.100.2.138' },
    hostname: i.hostname.split('.')[0] ?? i.hostname,
    'image-id': facts['image-id'],
    instance: {
      'instance-name': i.tags.find((t) => t.key === 'Name')?.value ?? i.instanceId,
      'instance-type': facts['instance-type'],
    },
    'instance-id': facts['instance-id'],
    mac: i.mac,
    network: {
      interfaces: {
        macs: {
          [i.mac]: {
            gateway: i.localIpv4.replace(/\.\d+$/, '.253'),
            'network-interface-id': eniId,
            'primary-ip-address': i.localIpv4,
            'private-ipv4s': JSON.stringify([i.localIpv4]),
            'vpc-cidr-block': i.vpcCidr,
            'vpc-id': vpcId,
            'vswitch-cidr-block': i.subnetCidr,
            'vswitch-id': vswitchId,
          },
        },
      },
    },
    'network-type': 'vpc',
    'owner-account-id': facts['owner-account-id'],
    'private-ipv4': i.localIpv4,
    'region-id': facts['region-id'],
    'serial-number': facts['serial-number'],
    'vpc-cidr-block': i.vpcCidr,
    'vpc-id': vpcId,
    'vswitch-cidr-block': i.subnetCidr,
    'vswitch-id': vswitchId,
    'zone-id': facts['zone-id'],
  };
  if (i.publicIpv4 !== undefined) tree['eipv4'] = i.publicIpv4;
  const credentials = state.credentials;
  if (i.iam !== null && credentials !== undefined) {
    tree['ram'] = { 'security-credentials': { [i.iam.role]: () => ramCredentials(credentials.get()) } };
  }
  return tree;
}

export function createAlibabaHandler(tokens: TokenIssuer) {
  const scheme = FLAVOR_SPECS.alibaba.token;
  if (scheme === undefined) throw new Error('alibaba token scheme missing from FLAVOR_SPECS');
  return createEc2StyleHandler({
    scheme,
    tokens,
    refuseForwardedWithToken: false,
    versions: ['latest'],
    refuseVersionedTokenPut: false,
    serverHeaders: SERVER_HEADERS.alibaba,
    root: (state) => {
      const i = state.instance;
      const root: Record<string, TreeDir | string> = {
        dynamic: alibabaDynamicTree(i),
        'meta-data': alibabaMetaData(i, state),
      };
      if (i.userData !== null) root['user-data'] = i.userData;
      return root;
    },
  });
}
