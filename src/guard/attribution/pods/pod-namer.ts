import type { ContainerRef, PodRef } from '../types.js';
import type { PodAddresses } from './addresses.js';
import type { KubeletPods } from './kubelet.js';

/**
 * Names the Kubernetes pod of a caller (PodRef): from its container's cgroup (the pod UID and the
 * container id), looked up in the kubelet's log directories for the namespace, the pod's name and
 * the container's name; or from its address, in the CNI's records. Fields that cannot be found are
 * left out (a pod whose log directory is missing has only its UID).
 */
export class PodNamer {
  readonly #kubelet: KubeletPods;
  readonly #addresses: PodAddresses;

  constructor(kubelet: KubeletPods, addresses: PodAddresses) {
    this.#kubelet = kubelet;
    this.#addresses = addresses;
  }

  /**
   * The pod of a process in `container` (from its cgroup). `hostNetwork`: the process shares the
   * node's network namespace. `source` 'netns': the process is only one of the socket's network
   * namespace (the caller itself was not found), so no container is named.
   */
  async fromContainer(
    container: ContainerRef,
    hostNetwork: boolean,
    source: 'cgroup' | 'netns',
  ): Promise<PodRef | undefined> {
    const uid = container.podUid;
    if (uid === undefined) return undefined;
    const pod: PodRef = { uid, hostNetwork, source };
    const known = await this.#kubelet.pod(uid);
    if (known === undefined) return pod;
    pod.namespace = known.namespace;
    pod.name = known.name;
    if (source === 'cgroup' && !container.id.startsWith('pod')) {
      const name = await this.#kubelet.containerName(known, container.id);
      if (name !== undefined) pod.container = name;
    }
    return pod;
  }

  /** The pod whose address this is, by the CNI's records; undefined when none names it. */
  async fromAddress(address: string): Promise<PodRef | undefined> {
    const rec = await this.#addresses.lookup(address);
    if (rec === undefined) return undefined;
    const pod: PodRef = { hostNetwork: false, source: 'address' };
    const known =
      rec.uid !== undefined
        ? await this.#kubelet.pod(rec.uid)
        : rec.namespace !== undefined && rec.name !== undefined
          ? await this.#kubelet.podByName(rec.namespace, rec.name)
          : undefined;
    const uid = rec.uid ?? known?.uid;
    if (uid !== undefined) pod.uid = uid;
    const namespace = known?.namespace ?? rec.namespace;
    const name = known?.name ?? rec.name;
    if (namespace !== undefined) pod.namespace = namespace;
    if (name !== undefined) pod.name = name;
    return pod.uid !== undefined || pod.name !== undefined ? pod : undefined;
  }
}
