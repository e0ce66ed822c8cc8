import type { Socket } from 'node:net';

/**
 * What the guard knows about the process on the other end of a connection, and the small interface
 * that finds it. The resolver over /proc lives beside this file; the guard only sees ProcessResolver.
 */

export interface ConnectionInfo {
  family: 4 | 6;
  /** The client's address and port as the guard's socket sees them. */
  remoteAddress: string;
  remotePort: number;
  /** The guard's side of the connection. */
  localAddress: string;
  localPort: number;
  /**
   * When the guard saw the connection (epoch ms): the client's socket existed then, so a scan of a
   * process that began after it would have seen the socket, and a process started after it cannot
   * have made it. Default: when the lookup starts.
   */
  seenAt?: number;
}

/** The ConnectionInfo of an accepted socket (empty fields once it is destroyed). */
export function connectionInfo(socket: Socket): ConnectionInfo {
  return {
    family: socket.remoteFamily === 'IPv6' ? 6 : 4,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    seenAt: Date.now(),
  };
}

export interface ProcessRef {
  pid: number;
  exe?: string;
}

export interface ContainerRef {
  id: string;
  runtime: 'docker' | 'containerd' | 'cri-o' | 'podman' | 'kubernetes' | 'unknown';
  /** Kubernetes pod UID, when the cgroup path names one. */
  podUid?: string;
}

/**
 * The Kubernetes pod of a caller (named by attribution from the process's cgroup, the kubelet's /var/log/pods, or the CNI's address records).
 */
export interface PodRef {
  /** The pod's namespace. */
  namespace?: string;
  /** The pod's name. */
  name?: string;
  /** The pod's UID, with dashes. */
  uid?: string;
  /** The container's name in the pod spec (absent when the pod was named by address). */
  container?: string;
  /** true: the caller is in the node's network namespace (a hostNetwork pod). */
  hostNetwork: boolean;
  /** How the pod was named: the caller's own cgroup, a process of its network namespace, or its address. */
  source: 'cgroup' | 'netns' | 'address';
}

/** A pod's NAMESPACE/NAME, or undefined when either is not known (no pod, or only its UID). */
export function podName(pod: PodRef | undefined): string | undefined {
  return pod?.namespace !== undefined && pod.name !== undefined ? `${pod.namespace}/${pod.name}` : undefined;
}

export interface Caller {
  /** full: pid and exe known; partial: some facts (often only the uid); none: nothing known. */
  resolved: 'full' | 'partial' | 'none';
  pid?: number;
  exe?: string;
  /**
   * When the process started: clock ticks after boot (/proc/PID/stat field 22). With the pid it names
   * one process (a pid is reused; this pair is not): the token ledger tells a holder from a successor.
   */
  startTime?: string;
  /** True when the executable was deleted or replaced after the process started (an upgrade, or a dropper). */
  exeDeleted?: boolean;
  /** argv, bounded in count and length; never environment variables. */
  cmdline?: string[];
  uid?: number;
  user?: string;
  container?: ContainerRef;
  /** The parent chain, nearest first, a few levels at most. */
  parents?: ProcessRef[];
  /** The Kubernetes pod the caller runs in, when attribution named one. */
  pod?: PodRef;
  /** 'other' when the connection came from another network namespace (a container bridge). */
  netns?: 'host' | 'other';
  /** Why attribution is partial or failed, for a person: "permission denied reading /proc/1234/exe". */
  error?: string;
  /**
   * True when the lookup finished after the request's deadline (guard.attribution.timeoutMs): the
   * request was decided without this caller, and its event names it later.
   */
  late?: true;
}

export interface ProcessResolver {
  resolve(conn: ConnectionInfo): Promise<Caller>;
  close(): Promise<void>;
}

/** A resolver for when attribution is switched off. */
export const noAttribution: ProcessResolver = {
  resolve: async () => ({ resolved: 'none', error: 'attribution disabled' }),
  close: async () => {},
};
