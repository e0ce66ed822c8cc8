import type { InstanceModel } from '../instance.js';
import { listing, resolve, type TreeDir } from '../tree.js';
import type { EmulatorState, EmuRequest, EmuResponse } from '../types.js';
import { json, numericId, plain } from './common.js';
import { digitalOceanRegion } from './placement.js';

/**
 * DigitalOcean droplet metadata: /metadata/v1/ (a path tree) and /metadata/v1.json (everything at
 * once). No required header, no tokens, forwarding headers are not refused.
 */

function netmaskOf(cidr: string): string {
  const bits = Number(cidr.split('/')[1] ?? '24');
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join('.');
}

export function digitalOceanDocument(i: InstanceModel): Record<string, unknown> {
  const iface = (ip: string, type: string) => ({
    ipv4: { ip_address: ip, netmask: netmaskOf(i.subnetCidr), gateway: ip.replace(/\.\d+$/, '.1') },
    mac: i.mac,
    type,
  });
  return {
    droplet_id: Number(numericId(i, 'do-droplet', 9)),
    hostname: i.tags.find((t) => t.key === 'Name')?.value ?? i.hostname.split('.')[0],
    user_data: i.userData ?? undefined,
    vendor_data: '#cloud-config\n',
    public_keys: [],
    auth_key: '',
    region: digitalOceanRegion(i),
    interfaces: {
      private: [iface(i.localIpv4, 'private')],
      ...(i.publicIpv4 === undefined ? {} : { public: [iface(i.publicIpv4, 'public')] }),
    },
    floating_ip: { ipv4: { active: false } },
    reserved_ip: { ipv4: { active: false } },
    dns: { nameservers: ['67.207.67.2', '67.207.67.3'] },
    tags: i.tags.map((t) => `${t.key}:${t.value}`),
    features: { dhcp_enabled: false },
  };
}

/** The /metadata/v1/ path tree (paths as DigitalOcean documents them). */
export function digitalOceanTree(i: InstanceModel): TreeDir {
  const doc = digitalOceanDocument(i);
  const ifaceDir = (ip: string) => ({
    '0': {
      ipv4: { address: ip, netmask: netmaskOf(i.subnetCidr), gateway: ip.replace(/\.\d+$/, '.1') },
      mac: i.mac,
      type: ip === i.localIpv4 ? 'private' : 'public',
    },
  });
  const tree: Record<string, TreeDir | string> = {
    id: String(doc['droplet_id']),
    hostname: String(doc['hostname']),
    'vendor-data': String(doc['vendor_data']),
    'public-keys': '',
    region: String(doc['region']),
    interfaces: {
      private: ifaceDir(i.localIpv4),
      ...(i.publicIpv4 === undefined ? {} : { public: ifaceDir(i.publicIpv4) }),
    },
    dns: { nameservers: '67.207.67.2\n67.207.67.3' },
    floating_ip: { ipv4: { active: 'false' } },
    reserved_ip: { ipv4: { active: 'false' } },
    tags: Object.fromEntries(i.tags.map((t) => [`${t.key}:${t.value}`, ''])),
    features: { dhcp_enabled: 'false' },
  };
  if (i.userData !== null) tree['user-data'] = i.userData;
  return tree;
}

export function createDigitalOceanHandler() {
  return (req: EmuRequest, state: EmulatorState): EmuResponse => {
    if (state.settings.endpoint === 'disabled') return plain(403, 'Forbidden\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'Method Not Allowed\n');
    const doc = digitalOceanDocument(state.instance);
    if (req.path === '/metadata/v1.json') return json(200, doc);
    if (req.path === '/metadata/v1' || req.path.startsWith('/metadata/v1/')) {
      const found = resolve(digitalOceanTree(state.instance), req.path.split('/').slice(3));
      if (found === undefined) return plain(404, 'Not Found\n');
      if (found.kind === 'dir') return plain(200, `${listing(found.dir)}\n`);
      return plain(200, typeof found.value === 'string' ? found.value : found.value.body);
    }
    return plain(404, 'Not Found\n');
  };
}
