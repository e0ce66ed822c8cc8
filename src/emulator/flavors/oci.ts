import { FORWARDING_HEADERS } from '../../imds/flavors.js';
import type { InstanceModel } from '../instance.js';
import { type EmulatorState, type EmuRequest, type EmuResponse, header } from '../types.js';
import { hasAnyHeader, json, plain, stableHex } from './common.js';
import { ociPlacement } from './placement.js';

/**
 * Oracle Cloud (OCI) IMDS: /opc/v2/ needs `Authorization: Bearer Oracle` (401 without). The
 * `tokens` setting models "IMDSv1 disabled": with tokens=required the /opc/v1/ endpoints answer 404
 * and requests carrying Forwarded, X-Forwarded-For or X-Forwarded-Host are refused (403; Oracle
 * documents the refusal, not its status).
 */

export function ociInstanceDocument(i: InstanceModel): Record<string, unknown> {
  const placement = ociPlacement(i);
  const region = placement.shortRegion;
  const freeformTags = Object.fromEntries(i.tags.map((t) => [t.key, t.value]));
  const metadata: Record<string, string> = {};
  if (i.userData !== null) metadata['user_data'] = Buffer.from(i.userData).toString('base64');
  return {
    availabilityDomain: placement.availabilityDomain,
    faultDomain: 'FAULT-DOMAIN-1',
    compartmentId: `ocid1.compartment.oc1..aaaaaaaa${stableHex(i, 'oci-compartment', 52)}`,
    displayName: i.tags.find((t) => t.key === 'Name')?.value ?? i.instanceId,
    hostname: i.hostname.split('.')[0],
    id: `ocid1.instance.oc1.${region}.${stableHex(i, 'oci-instance', 60)}`,
    image: `ocid1.image.oc1.${region}.${stableHex(i, 'oci-image', 60)}`,
    metadata,
    region,
    canonicalRegionName: placement.regionId,
    regionInfo: {
      realmKey: 'oc1',
      realmDomainComponent: 'oraclecloud.com',
      regionKey: placement.regionKey,
      regionIdentifier: placement.regionId,
    },
    ociAdName: placement.adName,
    shape: 'VM.Standard.E4.Flex',
    state: 'Running',
    timeCreated: Date.parse(i.launchTime),
    definedTags: {},
    freeformTags,
  };
}

function vnics(i: InstanceModel): unknown[] {
  return [
    {
      vnicId: `ocid1.vnic.oc1.${ociPlacement(i).shortRegion}.${stableHex(i, 'oci-vnic', 60)}`,
      privateIp: i.localIpv4,
      vlanTag: 0,
      macAddr: i.mac.toUpperCase(),
      virtualRouterIp: i.localIpv4.replace(/\.\d+$/, '.1'),
      subnetCidrBlock: i.subnetCidr,
    },
  ];
}

const NOT_FOUND = () => json(404, { code: 'NotFound', message: 'Not Found' });

export function createOciHandler() {
  return (req: EmuRequest, state: EmulatorState): EmuResponse => {
    if (state.settings.endpoint === 'disabled') return json(403, { code: 'Forbidden', message: 'Forbidden' });
    const m = /^\/opc\/(v1|v2)(\/.*)?$/.exec(req.path);
    if (m === null) return NOT_FOUND();
    const v1Off = state.settings.tokens === 'required';
    if (m[1] === 'v1' && v1Off) return NOT_FOUND();
    if (v1Off && hasAnyHeader(req.headers, FORWARDING_HEADERS)) {
      return json(403, { code: 'Forbidden', message: 'Forwarded requests are not allowed' });
    }
    if (m[1] === 'v2' && header(req, 'authorization') !== 'Bearer Oracle') {
      return json(401, {
        code: 'NotAuthorized',
        message: 'Authorization failed or requested resource not found',
      });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return json(405, { code: 'MethodNotAllowed', message: 'Method Not Allowed' });
    }
    const segs = (m[2] ?? '/').split('/').filter((s) => s !== '');
    let node: unknown;
    if (segs[0] === 'instance') node = ociInstanceDocument(state.instance);
    else if (segs[0] === 'vnics') node = vnics(state.instance);
    else if (segs.length === 0) return plain(200, 'instance/\nvnics/\n');
    else return NOT_FOUND();
    for (const seg of segs.slice(1)) {
      if (Array.isArray(node) && /^\d+$/.test(seg)) node = node[Number(seg)];
      else if (node !== null && typeof node === 'object' && Object.hasOwn(node, seg)) {
        node = (node as Record<string, unknown>)[seg];
      } else node = undefined;
      if (node === undefined) return NOT_FOUND();
    }
    if (node !== null && typeof node === 'object') return json(200, node);
    return plain(200, String(node));
  };
}
