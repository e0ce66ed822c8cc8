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

export interface KubeletPod extends PodName {
  /** The directory under podsRoot. */
  dir: string;
}

/**
 * One directory's names, parsed into a bounded map and cached: read again when older than RELIST_MS,
 * or on a miss when older than RELIST_ON_MISS_MS; concurrent reads share one readdir.
 */
class DirListing<T> {
  readonly #root: string;
  readonly #io: ProcIo;
  readonly #now: () => number;
  readonly #parse: (name: string) => [key: string, value: T] | undefined;
  readonly #max: number;
  #at = Number.NEGATIVE_INFINITY;
  #value = new Map<string, T>();
  /** The last read failed (the directory is missing: not a node, or not mounted). */
  missing = true;
  #reading: Promise<void> | undefined;

  constructor(
    root: string,
    io: ProcIo,
    now: () => number,
    parse: (name: string) => [string, T] | undefined,
    max: number,
  ) {
    this.#root = root;
    this.#io = io;
    this.#now = now;
    this.#parse = parse;
    this.#max = max;
  }

  /** The listing; `miss`: the caller did not find what it wants in the cached one. */
  async get(miss: boolean): Promise<Map<string, T>> {
    const age = this.#now() - this.#at;
    if (age > RELIST_MS || (miss && age > RELIST_ON_MISS_MS)) {
      this.#reading ??= this.#io
        .readdir(this.#root)
        .then(
          (names) => {
            const m = new Map<string, T>();
            for (const name of names) {
              if (m.size >= this.#max) break;
              const kv = this.#parse(name);
              if (kv) m.set(kv[0], kv[1]);
            }
            this.#value = m;
            this.missing = false;
          },
          () => {
            this.#value = new Map();
            this.missing = true;
          },
        )
        .finally(() => {
          this.#at = this.#now();
          this.#reading = undefined;
        });
      await this.#reading;
    }
    return this.#value;
  }
}

export class KubeletPods {
  readonly #podsRoot: string;
  readonly #io: ProcIo;
  /** Pods by UID. */
  readonly #pods: DirListing<KubeletPod>;
  /** Containers by id. */
  readonly #containers: DirListing<ContainerLogName>;

  constructor(o: KubeletPodsOptions) {
    this.#podsRoot = (o.podsRoot ?? '/var/log/pods').replace(/\/+$/, '');
    this.#io = o.io;
    this.#pods = new DirListing(
      this.#podsRoot,
      o.io,
      o.now,
      (dir) => {
        const p = parsePodDirName(dir);
        return p ? [p.uid, { ...p, dir }] : undefined;
      },
      MAX_PODS,
    );
    this.#containers = new DirListing(
      (o.containerLogsRoot ?? '/var/log/containers').replace(/\/+$/, ''),
      o.io,
      o.now,
      (file) => {
        const c = parseContainerLogName(file);
        return c ? [c.id, c] : undefined;
      },
      MAX_CONTAINERS,
    );
  }

  /** The pod with this UID, from its log directory; undefined when the kubelet has none. */
  async pod(uid: string): Promise<KubeletPod | undefined> {
    return (await this.#pods.get(false)).get(uid) ?? (await this.#pods.get(true)).get(uid);
  }

  /** The pod with this namespace and name (one directory only: a name reused meanwhile is ambiguous). */
  async podByName(namespace: string, name: string): Promise<KubeletPod | undefined> {
    const find = (pods: Map<string, KubeletPod>) => {
      const hits = [...pods.values()].filter((p) => p.namespace === namespace && p.name === name);
      return hits.length === 1 ? hits[0] : undefined;
    };
    return find(await this.#pods.get(false)) ?? find(await this.#pods.get(true));
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
    const hit = byId(await this.#containers.get(false)) ?? byId(await this.#containers.get(true));
    if (hit !== undefined) return hit;
    if (!this.#containers.missing) return undefined;
    try {
      const dirs = await this.#io.readdir(`${this.#podsRoot}/${pod.dir}`);
      return dirs.length === 1 ? dirs[0] : undefined;
    } catch {
      return undefined;
    }
  }
}
