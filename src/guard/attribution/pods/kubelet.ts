import type { ProcIo } from '../proc-io.js';
import { type ContainerLogName, type PodName, parseContainerLogName, parsePodDirName } from './names.js';

/**
 * The pods the kubelet runs on this node, from its log directories: /var/log/pods/NAMESPACE_NAME_UID/
 * (one per pod, with one sub-directory per container name) and /var/log/containers/, whose symlinks
 * POD_NAMESPACE_CONTAINER-ID.log name each container by its id. Listings are cached and read again
 * when asked for something they do not hold (at most once a second) or when older than 30 s.
 */

/** A listing is read again on a miss at most this often, and at least this often, ms. */
const RELIST_ON_MISS_MS = 1000;
const RELIST_MS = 30_000;
/** Pods and containers remembered (a node runs a few hundred at most). */
const MAX_PODS = 10_000;
const MAX_CONTAINERS = 50_000;

export interface KubeletPodsOptions {
  /** The kubelet's pod log directories. Default /var/log/pods. */
  podsRoot?: string;
  /** The kubelet's container log symlinks. Default /var/log/containers. */
  containerLogsRoot?: string;
  io: ProcIo;
  now: () => number;
}

interface Listing<T> {
  at: number;
  /** The read failed (the directory is missing: not a node, or not mounted). */
  missing: boolean;
  value: T;
}

export interface KubeletPod extends PodName {
  /** The directory under podsRoot. */
  dir: string;
}

export class KubeletPods {
  readonly #podsRoot: string;
  readonly #containersRoot: string;
  readonly #io: ProcIo;
  readonly #now: () => number;
  #pods: Listing<Map<string, KubeletPod>> | undefined;
  #containers: Listing<Map<string, ContainerLogName>> | undefined;
  #podsReading: Promise<void> | undefined;
  #containersReading: Promise<void> | undefined;

  constructor(o: KubeletPodsOptions) {
    this.#podsRoot = (o.podsRoot ?? '/var/log/pods').replace(/\/+$/, '');
    this.#containersRoot = (o.containerLogsRoot ?? '/var/log/containers').replace(/\/+$/, '');
    this.#io = o.io;
    this.#now = o.now;
  }

  /** The pod with this UID, from its log directory; undefined when the kubelet has none. */
  async pod(uid: string): Promise<KubeletPod | undefined> {
    const have = (await this.#podListing(false)).get(uid);
    if (have !== undefined) return have;
    return (await this.#podListing(true)).get(uid);
  }

  /** The pod with this namespace and name (one directory only: a name reused meanwhile is ambiguous). */
  async podByName(namespace: string, name: string): Promise<KubeletPod | undefined> {
    const find = (pods: Map<string, KubeletPod>) => {
      const hits = [...pods.values()].filter((p) => p.namespace === namespace && p.name === name);
      return hits.length === 1 ? hits[0] : undefined;
    };
    return find(await this.#podListing(false)) ?? find(await this.#podListing(true));
  }

  /**
   * The name of a pod's container from its id: the kubelet's symlink for it; else, when there are no
   * symlinks to read, the pod's only container directory. undefined when unknown (the pod's sandbox,
   * or a container the kubelet has not logged yet).
   */
  async containerName(pod: KubeletPod, id: string): Promise<string | undefined> {
    const byId = (m: Map<string, ContainerLogName>) => {
      const c = m.get(id);
      return c !== undefined && c.namespace === pod.namespace && c.pod === pod.name ? c.container : undefined;
    };
    const first = await this.#containerListing(false);
    const hit = byId(first.value) ?? byId((await this.#containerListing(true)).value);
    if (hit !== undefined) return hit;
    if (!this.#containers?.missing) return undefined;
    try {
      const dirs = await this.#io.readdir(`${this.#podsRoot}/${pod.dir}`);
      return dirs.length === 1 ? dirs[0] : undefined;
    } catch {
      return undefined;
    }
  }

  async #podListing(miss: boolean): Promise<Map<string, KubeletPod>> {
    if (this.#stale(this.#pods, miss)) {
      this.#podsReading ??= this.#io
        .readdir(this.#podsRoot)
        .then(
          (names) => {
            const m = new Map<string, KubeletPod>();
            for (const dir of names) {
              if (m.size >= MAX_PODS) break;
              const p = parsePodDirName(dir);
              if (p) m.set(p.uid, { ...p, dir });
            }
            this.#pods = { at: this.#now(), missing: false, value: m };
          },
          () => {
            this.#pods = { at: this.#now(), missing: true, value: new Map() };
          },
        )
        .finally(() => {
          this.#podsReading = undefined;
        });
      await this.#podsReading;
    }
    return this.#pods?.value ?? new Map();
  }

  async #containerListing(miss: boolean): Promise<Listing<Map<string, ContainerLogName>>> {
    if (this.#stale(this.#containers, miss)) {
      this.#containersReading ??= this.#io
        .readdir(this.#containersRoot)
        .then(
          (names) => {
            const m = new Map<string, ContainerLogName>();
            for (const file of names) {
              if (m.size >= MAX_CONTAINERS) break;
              const c = parseContainerLogName(file);
              if (c) m.set(c.id, c);
            }
            this.#containers = { at: this.#now(), missing: false, value: m };
          },
          () => {
            this.#containers = { at: this.#now(), missing: true, value: new Map() };
          },
        )
        .finally(() => {
          this.#containersReading = undefined;
        });
      await this.#containersReading;
    }
    return this.#containers ?? { at: 0, missing: true, value: new Map() };
  }

  /** Whether a listing must be read (again): never read, older than RELIST_MS, or a miss past RELIST_ON_MISS_MS. */
  #stale(l: Listing<unknown> | undefined, miss: boolean): boolean {
    if (l === undefined) return true;
    const age = this.#now() - l.at;
    return age > RELIST_MS || (miss && age > RELIST_ON_MISS_MS);
  }
}
