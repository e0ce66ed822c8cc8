import { containerFromPath } from '../cgroup-identity.js';
import type { ProcIo } from '../proc-io.js';
import { type AddressRecord, addressKey, parseHostLocalFile, parseVpcCniIpam } from './names.js';

/**
 * A pod's address -> the pod, from the CNI plugins' state on the node, for a client whose process the
 * guard cannot see (its socket lives in the pod's network namespace):
 *
 * - the Amazon VPC CNI's checkpoint /var/run/aws-node/ipam.json: address -> namespace and name;
 * - the host-local IPAM plugin's files /var/lib/cni/networks/NETWORK/ADDRESS (kubenet, bridge,
 *   flannel, k3s): address -> the pod sandbox's container id, whose cgroup (found under the cgroup
 *   root, named as the kubelet names it) holds the pod UID.
 *
 * Both are read on demand and cached; a missing file or directory is not an error (another CNI).
 */

/** The VPC CNI checkpoint is read again on a miss at most this often, and at least this often, ms. */
const REREAD_ON_MISS_MS = 1000;
const REREAD_MS = 30_000;
/** The cgroup tree is walked for a sandbox at most this often, ms; and at most this many directories. */
const CGROUP_WALK_MS = 2000;
const MAX_CGROUP_DIRS = 20_000;
/** Sandboxes remembered (sandbox id -> pod UID). */
const MAX_SANDBOXES = 10_000;
/** Largest checkpoint read, bytes. */
const MAX_IPAM_BYTES = 16 * 1024 * 1024;

export interface PodAddressesOptions {
  /** host-local IPAM state. Default /var/lib/cni/networks. */
  cniNetworksRoot?: string;
  /** The Amazon VPC CNI's checkpoint. Default /var/run/aws-node/ipam.json. */
  vpcCniIpamFile?: string;
  /** Where the cgroup hierarchies are mounted. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  io: ProcIo;
  now: () => number;
}

export interface AddressedPod extends AddressRecord {
  /** The pod UID, when the sandbox's cgroup names it. */
  uid?: string;
}

export class PodAddresses {
  readonly #networksRoot: string;
  readonly #ipamFile: string;
  readonly #cgroupRoot: string;
  readonly #io: ProcIo;
  readonly #now: () => number;
  #ipam: { at: number; value: Map<string, AddressRecord> } | undefined;
  #ipamReading: Promise<void> | undefined;
  readonly #sandboxes = new Map<string, string>();
  #walkedAt = Number.NEGATIVE_INFINITY;

  constructor(o: PodAddressesOptions) {
    this.#networksRoot = (o.cniNetworksRoot ?? '/var/lib/cni/networks').replace(/\/+$/, '');
    this.#ipamFile = o.vpcCniIpamFile ?? '/var/run/aws-node/ipam.json';
    this.#cgroupRoot = (o.cgroupRoot ?? '/sys/fs/cgroup').replace(/\/+$/, '');
    this.#io = o.io;
    this.#now = o.now;
  }

  /** The pod holding `address` by the CNI's records; undefined when no record names it. */
  async lookup(address: string): Promise<AddressedPod | undefined> {
    const key = addressKey(address);
    if (key === undefined) return undefined;
    const rec = (await this.#fromIpam(key)) ?? (await this.#fromHostLocal(address, key));
    if (rec === undefined) return undefined;
    const out: AddressedPod = { ...rec };
    if (rec.sandboxId !== undefined) {
      const uid = await this.#podOfSandbox(rec.sandboxId);
      if (uid !== undefined) out.uid = uid;
    }
    return out;
  }

  async #fromIpam(key: string): Promise<AddressRecord | undefined> {
    const read = async (miss: boolean) => {
      const age = this.#ipam === undefined ? Number.POSITIVE_INFINITY : this.#now() - this.#ipam.at;
      if (age > REREAD_MS || (miss && age > REREAD_ON_MISS_MS)) {
        this.#ipamReading ??= this.#io
          .readAll(this.#ipamFile, MAX_IPAM_BYTES)
          .then(
            (r) => parseVpcCniIpam(r.text),
            () => new Map<string, AddressRecord>(),
          )
          .then((value) => {
            this.#ipam = { at: this.#now(), value };
          })
          .finally(() => {
            this.#ipamReading = undefined;
          });
        await this.#ipamReading;
      }
      return this.#ipam?.value.get(key);
    };
    return (await read(false)) ?? (await read(true));
  }

  async #fromHostLocal(address: string, key: string): Promise<AddressRecord | undefined> {
    let networks: string[];
    try {
      networks = await this.#io.readdir(this.#networksRoot);
    } catch {
      return undefined;
    }
    // The plugin names the file as Go prints the address: dotted IPv4, compressed IPv6.
    const names = [...new Set([key.includes(':') ? address.toLowerCase() : key])];
    for (const net of networks.slice(0, 64)) {
      for (const name of names) {
        if (name.includes('/') || name.startsWith('.')) continue;
        try {
          const text = (await this.#io.readOnce(`${this.#networksRoot}/${net}/${name}`, 512)).toString(
            'utf8',
          );
          const rec = parseHostLocalFile(text);
          if (rec) return rec;
        } catch {
          // not in this network
        }
      }
    }
    return undefined;
  }

  /** The pod UID of a sandbox: its cgroup directory (named with its id) sits under the pod's. */
  async #podOfSandbox(id: string): Promise<string | undefined> {
    const have = this.#sandboxes.get(id);
    if (have !== undefined || this.#now() - this.#walkedAt < CGROUP_WALK_MS) return have;
    this.#walkedAt = this.#now();
    const queue: string[] = [''];
    let seen = 0;
    for (let next = 0; next < queue.length && seen < MAX_CGROUP_DIRS; next++) {
      const rel = queue[next] as string;
      let entries: string[];
      try {
        entries = await this.#io.subdirs(`${this.#cgroupRoot}${rel}`);
      } catch {
        continue;
      }
      for (const name of entries) {
        const path = `${rel}/${name}`;
        seen++;
        const ref = /[0-9a-f]{64}/.test(name) ? containerFromPath(path) : undefined;
        if (ref?.podUid !== undefined && this.#sandboxes.size < MAX_SANDBOXES)
          this.#sandboxes.set(ref.id, ref.podUid);
        if (ref === undefined) queue.push(path);
      }
    }
    return this.#sandboxes.get(id);
  }
}
