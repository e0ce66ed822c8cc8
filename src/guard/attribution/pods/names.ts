import { ipToBytes, unmapIPv4 } from '../proc-parse.js';

/**
 * PURE parsers of what a Kubernetes node keeps on disk about its pods: the kubelet's log directory
 * names and the CNI plugins' address records. No I/O: each takes text (a name, a file's content) and returns what it says.
 */

/** A pod UID: a UUID, or a static pod's 32-hex hash. */
const POD_UID_RE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/;
/** A Kubernetes namespace, pod or container name: DNS labels and subdomains never hold "_". */
const K8S_NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export interface PodName {
  namespace: string;
  name: string;
  uid: string;
}

/** The kubelet's pod log directory, /var/log/pods/NAMESPACE_NAME_UID; undefined for anything else. */
export function parsePodDirName(dir: string): PodName | undefined {
  const first = dir.indexOf('_');
  const last = dir.lastIndexOf('_');
  if (first <= 0 || last <= first + 1) return undefined;
  const namespace = dir.slice(0, first);
  const name = dir.slice(first + 1, last);
  const uid = dir.slice(last + 1);
  if (!K8S_NAME_RE.test(namespace) || !K8S_NAME_RE.test(name) || !POD_UID_RE.test(uid)) return undefined;
  return { namespace, name, uid };
}

export interface ContainerLogName {
  pod: string;
  namespace: string;
  container: string;
  /** The container's id (64 hex). */
  id: string;
}

/** The kubelet's symlink /var/log/containers/POD_NAMESPACE_CONTAINER-ID.log; undefined otherwise. */
export function parseContainerLogName(file: string): ContainerLogName | undefined {
  const m = /^([^_]+)_([^_]+)_(.+)-([0-9a-f]{64})\.log$/.exec(file);
  if (!m) return undefined;
  const [, pod, namespace, container, id] = m as unknown as [string, string, string, string, string];
  if (!K8S_NAME_RE.test(pod) || !K8S_NAME_RE.test(namespace) || !K8S_NAME_RE.test(container))
    return undefined;
  return { pod, namespace, container, id };
}

/** One address's record in a CNI plugin's state: the sandbox (pause) container, and maybe the pod. */
export interface AddressRecord {
  /** The pod sandbox's container id, as the CNI was called with it. */
  sandboxId?: string;
  namespace?: string;
  name?: string;
}

/**
 * The host-local IPAM plugin's file for one address (/var/lib/cni/networks/NETWORK/IP): the
 * sandbox's container id on the first line, the interface on the second (older versions: the id only).
 */
export function parseHostLocalFile(text: string): AddressRecord | undefined {
  const id = text.split('\n')[0]?.trim() ?? '';
  return /^[0-9a-f]{64}$/.test(id) ? { sandboxId: id } : undefined;
}

/**
 * The Amazon VPC CNI's checkpoint (/var/run/aws-node/ipam.json, "vpc-cni-ipam/1"): address ->
 * sandbox id and pod namespace and name. Bad entries are skipped; a file that is not one gives none.
 */
export function parseVpcCniIpam(text: string, maxEntries = 65_536): Map<string, AddressRecord> {
  const out = new Map<string, AddressRecord>();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return out;
  }
  const allocations = (doc as { allocations?: unknown })?.allocations;
  if (!Array.isArray(allocations)) return out;
  for (const a of allocations) {
    if (out.size >= maxEntries) break;
    if (typeof a !== 'object' || a === null) continue;
    const e = a as Record<string, unknown>;
    const meta = (typeof e.metadata === 'object' && e.metadata !== null ? e.metadata : {}) as Record<
      string,
      unknown
    >;
    const rec: AddressRecord = {};
    if (typeof e.containerID === 'string' && /^[0-9a-f]{64}$/.test(e.containerID))
      rec.sandboxId = e.containerID;
    if (typeof meta.k8sPodNamespace === 'string' && K8S_NAME_RE.test(meta.k8sPodNamespace))
      rec.namespace = meta.k8sPodNamespace;
    if (typeof meta.k8sPodName === 'string' && K8S_NAME_RE.test(meta.k8sPodName)) rec.name = meta.k8sPodName;
    for (const key of ['ipv4', 'ipv6', 'IPv4', 'ip']) {
      const ip = e[key];
      if (typeof ip === 'string' && ip !== '') {
        const k = addressKey(ip);
        if (k !== undefined) out.set(k, rec);
      }
    }
  }
  return out;
}

/** One spelling per address (IPv6 compressed, IPv4-mapped as IPv4), to compare addresses as text. */
export function addressKey(address: string): string | undefined {
  const v4 = unmapIPv4(address);
  if (v4 !== undefined) return v4;
  const b = ipToBytes(address);
  if (!b) return undefined;
  if (b.length === 4) return b.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] as number) << 8) | (b[i + 1] as number)).toString(16));
  return groups.join(':');
}
