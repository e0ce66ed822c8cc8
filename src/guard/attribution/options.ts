import { endianness as osEndianness } from 'node:os';
import type { Endianness } from './proc-parse.js';
import type { SockDiag } from './sock-diag.js';

/**
 * The options of the /proc resolver (createProcResolver), their defaults, and the settings every
 * part of the resolver reads (the socket finder, the pid search, the process description).
 */

export interface ProcResolverOptions {
  /** Root of the proc filesystem. Default '/proc' (tests pass a fake tree). */
  procRoot?: string;
  /** The passwd file for user names. Default '/etc/passwd'. */
  passwdPath?: string;
  /**
   * Where a Kubernetes node keeps what names its pods (caller.pod; see docs/attribution.md): the
   * kubelet's pod log directories (default /var/log/pods) and container log symlinks (default
   * /var/log/containers), host-local IPAM state (default /var/lib/cni/networks), the Amazon VPC CNI's
   * checkpoint (default /var/run/aws-node/ipam.json) and the cgroup hierarchies (default
   * /sys/fs/cgroup). Missing ones are not an error.
   */
  podsRoot?: string;
  containerLogsRoot?: string;
  cniNetworksRoot?: string;
  vpcCniIpamFile?: string;
  cgroupRoot?: string;
  /** Time budget of one lookup, milliseconds; past it the lookup returns what it knows. Default 50. */
  budgetMs?: number;
  /** Resolved callers cached by socket inode: entries. Default 4096. */
  callerCacheSize?: number;
  /** ...and how long they stay valid, milliseconds. Default 30000. */
  callerCacheTtlMs?: number;
  /**
   * Descriptions of processes (exe, cmdline, user, parents, container) reused for their next
   * connections: entries, and how long, milliseconds. A reuse re-reads the exe link, so a process
   * that exec'd another program is described afresh. Default 1024 and 2000.
   */
  describeCacheSize?: number;
  describeCacheTtlMs?: number;
  /** inode -> pid index: entries. Default 65536. */
  socketIndexSize?: number;
  /** Processes tracked (pid -> uid, fd count, network namespace): entries. Default 65536. */
  maxTrackedPids?: number;
  /** Pids that called recently, tried first on a new socket: entries. Default 64. */
  recentCallers?: number;
  /** Processes first seen within this window are tried before older ones, milliseconds. Default 30000. */
  freshWindowMs?: number;
  /** Ancestors reported in Caller.parents. Default 4. */
  maxParents?: number;
  /** Parent exe/ppid cache: entries and TTL in milliseconds. Default 1024 and 5000. */
  parentCacheSize?: number;
  parentCacheTtlMs?: number;
  /** cmdline bounds: arguments, characters per argument, bytes read. Default 32, 256, 8192. */
  maxCmdlineArgs?: number;
  maxCmdlineArgLength?: number;
  maxCmdlineBytes?: number;
  /** Largest /proc/net/tcp{,6} read, bytes. Default 64 MiB (about 440,000 sockets). */
  maxTableBytes?: number;
  /** Background refresh of the process list, milliseconds (0 = off). Default 2000. */
  refreshIntervalMs?: number;
  /** CPU budget of one background refresh, milliseconds. Default 20. */
  refreshBudgetMs?: number;
  /** Other network namespaces searched for a socket not in the guard's own: count. Default 64. */
  maxNetns?: number;
  /** Concurrent process scans within one lookup. Default 4. */
  scanConcurrency?: number;
  /** Concurrent readlink calls within one process scan. Default 16. */
  fdConcurrency?: number;
  /**
   * The sock_diag addon (exact socket lookups by 4-tuple). Default: loaded when built (see
   * sock-diag.ts); false: always read /proc/net/tcp.
   */
  sockDiag?: SockDiag | false;
  /**
   * Where a redirected client believes it is connected (the client's socket keeps the original
   * destination when iptables or nftables redirects it to the guard): "address:port" or
   * "[v6]:port". Tried by sock_diag after the guard's own address. Default: every metadata address
   * of every flavor, port 80.
   */
  originalDestinations?: string[];
  /**
   * How /proc is read: 'async' (libuv's thread pool; never blocks, for the main thread) or 'sync'
   * (plain system calls, several times faster; only for a thread of its own). Default 'async';
   * the worker in threaded.ts uses 'sync'.
   */
  io?: 'async' | 'sync';
  /**
   * The inline tier (threaded.ts): a resolver on the guard's own thread that does only what costs
   * microseconds, with sync I/O bounded by budgetMs: the socket by sock_diag (no /proc tables, no
   * other namespaces), its owner among indexed sockets, recent callers and the newest pids (no
   * listing or scan of /proc on the lookup path). What it cannot find it leaves to
   * the worker. Its background refresh only lists /proc, asynchronously. Default false.
   */
  inline?: boolean;
  /** Byte order of the kernel's hex addresses. Default: this machine's. */
  endianness?: Endianness;
  /** Monotonic clock in milliseconds. Default performance.now. */
  now?: () => number;
}

/** The bounds every part reads, defaults applied. */
export type Settings = Required<
  Omit<
    ProcResolverOptions,
    | 'procRoot'
    | 'passwdPath'
    | 'podsRoot'
    | 'containerLogsRoot'
    | 'cniNetworksRoot'
    | 'vpcCniIpamFile'
    | 'cgroupRoot'
    | 'sockDiag'
    | 'originalDestinations'
    | 'io'
    | 'inline'
    | 'now'
  >
>;

export function settingsOf(o: ProcResolverOptions): Settings {
  return {
    budgetMs: o.budgetMs ?? 50,
    maxTrackedPids: o.maxTrackedPids ?? 65_536,
    freshWindowMs: o.freshWindowMs ?? 30_000,
    maxParents: o.maxParents ?? 4,
    maxCmdlineArgs: o.maxCmdlineArgs ?? 32,
    maxCmdlineArgLength: o.maxCmdlineArgLength ?? 256,
    maxCmdlineBytes: o.maxCmdlineBytes ?? 8192,
    maxTableBytes: o.maxTableBytes ?? 64 * 1024 * 1024,
    refreshIntervalMs: o.refreshIntervalMs ?? 2000,
    refreshBudgetMs: o.refreshBudgetMs ?? 20,
    maxNetns: o.maxNetns ?? 64,
    scanConcurrency: Math.max(1, o.scanConcurrency ?? 4),
    fdConcurrency: Math.max(1, o.fdConcurrency ?? 16),
    callerCacheSize: o.callerCacheSize ?? 4096,
    callerCacheTtlMs: o.callerCacheTtlMs ?? 30_000,
    describeCacheSize: o.describeCacheSize ?? 1024,
    describeCacheTtlMs: o.describeCacheTtlMs ?? 2000,
    socketIndexSize: o.socketIndexSize ?? 65_536,
    recentCallers: o.recentCallers ?? 64,
    parentCacheSize: o.parentCacheSize ?? 1024,
    parentCacheTtlMs: o.parentCacheTtlMs ?? 5000,
    endianness: o.endianness ?? (osEndianness() === 'BE' ? 'BE' : 'LE'),
  };
}
