import { endianness as osEndianness } from 'node:os';
import { DiagFinder, defaultOriginalDestinations, parseEndpoint } from './diag-find.js';
import { Lru } from './lru.js';
import {
  asyncProcIo,
  describeFsError,
  isDenied,
  isGone,
  type ProcIo,
  type RereadFile,
  syncProcIo,
} from './proc-io.js';
import {
  addressToKernelHex,
  type Endianness,
  parseCgroup,
  parseCmdline,
  parseExeLink,
  parseNsLink,
  parsePasswd,
  parseSocketLink,
  parseStat,
  parseStatus,
  pickClientRow,
  TCP_STATES,
  type TcpRow,
  uidUnknown,
  unmapIPv4,
} from './proc-parse.js';
import { loadSockDiag, type SockDiag } from './sock-diag.js';
import { TableScan } from './table-scan.js';
import type { Caller, ConnectionInfo, ProcessRef, ProcessResolver } from './types.js';

export type { Caller, ConnectionInfo, ProcessRef, ProcessResolver } from './types.js';
export { noAttribution } from './types.js';

/**
 * The socket -> process resolver over /proc. docs/attribution.md explains the design; in short:
 *
 * 1. the client's socket is found by its 4-tuple through netlink sock_diag (the optional native addon,
 *    microseconds), or else by its (address, port) in /proc/net/tcp or tcp6 (one read per lookup,
 *    shared by concurrent lookups); either gives the socket's uid and inode;
 * 2. the inode is mapped to a pid WITHOUT scanning every /proc/PID/fd: an inode -> pid index, then the
 *    processes that called recently, then processes that appeared recently (newest first), then the
 *    rest ordered by uid match and fd count, until a per-lookup time budget runs out;
 * 3. the pid is described (exe, bounded cmdline, uid/user, parents, container, network namespace).
 *
 * Every cache is bounded; every failure becomes a Caller with `error`, never an exception.
 */

export interface ProcResolverOptions {
  /** Root of the proc filesystem. Default '/proc' (tests pass a fake tree). */
  procRoot?: string;
  /** The passwd file for user names. Default '/etc/passwd'. */
  passwdPath?: string;
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
  /** A pid found in the index is re-verified by an fd scan when it has at most this many fds. Default 4096. */
  verifyMaxFds?: number;
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

export interface ResolverStats {
  lookups: number;
  /** Found in the resolved-caller cache (same socket seen before). */
  cacheHits: number;
  /** Found through the inode -> pid index. */
  indexHits: number;
  /** Found among the recent callers. */
  recentHits: number;
  /** Found among the newest pid numbers (a process that started just now). */
  newPidHits: number;
  /** Found among recently appeared processes. */
  freshHits: number;
  /** Descriptions reused for another connection of the same process. */
  describeHits: number;
  /** Found in the ordered scan of the remaining processes. */
  scanHits: number;
  /** No socket row, or no owning process found. */
  unresolved: number;
  budgetExceeded: number;
  tableReads: number;
  pidScans: number;
  fdReads: number;
  otherNetnsRows: number;
  /** sock_diag lookups made, and connections whose socket they found. */
  diagLookups: number;
  diagHits: number;
  diagErrors: number;
  /** How client sockets are found: 'sock_diag' (then /proc for what it cannot see) or 'proc'. */
  socketSource: 'sock_diag' | 'proc';
  /** Why sock_diag is not in use (addon not built, kernel refused it). */
  sockDiagUnavailable?: string;
  /** The inline tier's own counters (threaded.ts), when it runs. */
  inline?: ResolverStats;
  trackedPids: number;
  indexedSockets: number;
}

export interface ProcResolver extends ProcessResolver {
  stats(): ResolverStats;
  /** Notes a pid that called (found by another tier): its next connections are looked for there first. */
  learn(pid: number): void;
  /** Refreshes the process list now; the background timer calls it every refreshIntervalMs. */
  refresh(): Promise<void>;
}

interface PidEntry {
  /** When the pid first appeared in a listing (now() ms); -Infinity for the first listing. */
  firstSeen: number;
  probed: boolean;
  uid?: number;
  fdCount?: number;
  /** FDSize from /proc/PID/status: an upper bound of fdCount, known before any fd scan. */
  fdLimit?: number;
  netns?: string;
  /** Socket inodes seen in the last fd scan (bounded), to drop index entries when the pid goes. */
  sockets?: number[];
}

interface ScanResult {
  sockets: number[];
  complete: boolean;
  error?: 'denied' | 'gone' | string;
}

interface InFlight<T> {
  startedAt: number;
  promise: Promise<T>;
}

interface FoundRow {
  /** The socket's state, owner uid and inode (from sock_diag or a /proc/net/tcp row). */
  row: Pick<TcpRow, 'state' | 'uid' | 'inode'>;
  /** The network namespace (inode) whose table held the row; undefined for the guard's own. */
  netns?: string;
}

interface ParentInfo {
  exe?: string;
  ppid?: number;
}

const MAX_SOCKETS_PER_PID = 4096;
/** Newest pid numbers tried, and the run of unused or older ones that ends the search. */
const NEW_PID_PROBES = 64;
const NEW_PID_GAP = 8;
/** How long a /proc read stays fresh enough for #describe to reuse it, milliseconds. */
const JUST_READ_MS = 50;
/** The inline tier scans only processes with at most this many open fds (a few us per fd). */
const INLINE_MAX_FDS = 256;

/** A process's description, reused while its exe link stays the same (see #describe). */
interface Described {
  exeLink: string;
  caller: Caller;
}
/** How long an address found in no network namespace is not searched for again, milliseconds. */
const NOWHERE_TTL_MS = 2000;

function isLoopback(address: string): boolean {
  const v4 = unmapIPv4(address) ?? address;
  return v4.startsWith('127.') || v4 === '::1';
}
/** An index entry younger than this is trusted without re-scanning its process, milliseconds. */
const INDEX_TRUST_MS = 10_000;
/** What a scan of a process that no longer exists fails with. */
const GONE = Object.assign(new Error('process gone'), { code: 'ENOENT' });
/** Recent callers and newest processes scanned while the socket table is read. */
const PREFETCH_RECENT = 1;
const PREFETCH_FRESH = 2;
const PASSWD_REFRESH_MS = 30_000;
/**
 * A copy of a Caller whose arrays and objects are its own: callers are cached and handed out, and
 * their receivers may change them. Cheaper than structuredClone, which serializes.
 */
function cloneCaller(c: Caller): Caller {
  const out: Caller = { ...c };
  if (c.cmdline) out.cmdline = [...c.cmdline];
  if (c.parents) out.parents = c.parents.map((p) => ({ ...p }));
  if (c.container) out.container = { ...c.container };
  return out;
}

export function createProcResolver(options: ProcResolverOptions = {}): ProcResolver {
  return new ProcFsResolver(options);
}

class ProcFsResolver implements ProcResolver {
  readonly #root: string;
  readonly #passwdPath: string;
  readonly #budgetMs: number;
  readonly #now: () => number;
  readonly #endian: Endianness;
  readonly #o: Required<
    Pick<
      ProcResolverOptions,
      | 'maxTrackedPids'
      | 'freshWindowMs'
      | 'maxParents'
      | 'maxCmdlineArgs'
      | 'maxCmdlineArgLength'
      | 'maxCmdlineBytes'
      | 'maxTableBytes'
      | 'refreshBudgetMs'
      | 'maxNetns'
      | 'verifyMaxFds'
      | 'scanConcurrency'
      | 'fdConcurrency'
    >
  >;

  readonly #callers: Lru<number, Caller>;
  readonly #index: Lru<number, { pid: number; at: number }>;
  readonly #recent: Lru<number, true>;
  readonly #parents: Lru<number, ParentInfo>;
  readonly #addrNetns: Lru<string, string>;
  readonly #seenTuples: Lru<string, true>;
  /** Client addresses found in no namespace, not searched again for NOWHERE_TTL_MS. */
  readonly #addrNowhere: Lru<string, true>;
  /** exe links read during fd scans, by pid (a short-lived client may exit before it is described). */
  readonly #exeSeen: Lru<number, { link: string; at: number }>;
  /** /proc/PID/status as the new-pid probe just read it, for #describe to reuse (JUST_READ_MS). */
  readonly #statusJustRead: Lru<number, Buffer>;
  /** Ports of the original destinations (metadata addresses): where a redirected client connected. */
  readonly #destinationPorts: Set<number>;
  /** /proc/sys/kernel/ns_last_pid kept open (synchronous I/O only; closed by close()). */
  #lastPidFile: RereadFile | undefined;
  readonly #pids = new Map<number, PidEntry>();
  readonly #io: ProcIo;
  readonly #inline: boolean;
  /** Exact socket lookups by sock_diag; undefined when the addon is not in use. */
  readonly #diag: DiagFinder | undefined;
  readonly #diagUnavailable: string | undefined;
  /** pid_max, read on first use (see #scanNewPids). */
  #pidMaxValue: number | undefined;
  /** Descriptions of recent callers, by pid (see #describe). */
  readonly #described: Lru<number, Described>;
  readonly #tables = new Map<string, TableScan>();
  readonly #scans = new Map<number, InFlight<ScanResult>>();
  #listing: InFlight<number[]> | undefined;
  #listedOnce = false;
  #selfNetns: Promise<string | undefined> | undefined;
  #passwd: Map<number, string> | undefined;
  #passwdLoadedAt = Number.NEGATIVE_INFINITY;
  #passwdLoading: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshing = false;
  #closed = false;
  readonly #stats: Omit<
    ResolverStats,
    | 'trackedPids'
    | 'indexedSockets'
    | 'socketSource'
    | 'sockDiagUnavailable'
    | 'inline'
    | 'diagLookups'
    | 'diagHits'
    | 'diagErrors'
  > = {
    lookups: 0,
    cacheHits: 0,
    indexHits: 0,
    recentHits: 0,
    newPidHits: 0,
    freshHits: 0,
    describeHits: 0,
    scanHits: 0,
    unresolved: 0,
    budgetExceeded: 0,
    tableReads: 0,
    pidScans: 0,
    fdReads: 0,
    otherNetnsRows: 0,
  };

  constructor(o: ProcResolverOptions) {
    this.#root = (o.procRoot ?? '/proc').replace(/\/+$/, '');
    this.#passwdPath = o.passwdPath ?? '/etc/passwd';
    this.#budgetMs = o.budgetMs ?? 50;
    this.#now = o.now ?? (() => performance.now());
    this.#endian = o.endianness ?? (osEndianness() === 'BE' ? 'BE' : 'LE');
    this.#o = {
      maxTrackedPids: o.maxTrackedPids ?? 65_536,
      freshWindowMs: o.freshWindowMs ?? 30_000,
      maxParents: o.maxParents ?? 4,
      maxCmdlineArgs: o.maxCmdlineArgs ?? 32,
      maxCmdlineArgLength: o.maxCmdlineArgLength ?? 256,
      maxCmdlineBytes: o.maxCmdlineBytes ?? 8192,
      maxTableBytes: o.maxTableBytes ?? 64 * 1024 * 1024,
      refreshBudgetMs: o.refreshBudgetMs ?? 20,
      maxNetns: o.maxNetns ?? 64,
      verifyMaxFds: o.verifyMaxFds ?? 4096,
      scanConcurrency: Math.max(1, o.scanConcurrency ?? 4),
      fdConcurrency: Math.max(1, o.fdConcurrency ?? 16),
    };
    let diag: SockDiag | undefined;
    if (o.sockDiag === false) {
      this.#diagUnavailable = 'switched off';
    } else if (o.sockDiag !== undefined) {
      diag = o.sockDiag;
    } else if (this.#root === '/proc') {
      const loaded = loadSockDiag();
      diag = loaded.diag;
      this.#diagUnavailable = loaded.reason;
    } else {
      this.#diagUnavailable = 'a fake /proc root is in use';
    }
    if (diag) this.#diag = new DiagFinder(diag, o.originalDestinations);
    this.#destinationPorts = new Set(
      (o.originalDestinations ?? defaultOriginalDestinations()).flatMap((d) => parseEndpoint(d)?.port ?? []),
    );
    this.#inline = o.inline === true;
    this.#io = o.io === 'sync' || this.#inline ? syncProcIo : asyncProcIo;
    this.#described = new Lru(o.describeCacheSize ?? 1024, o.describeCacheTtlMs ?? 2000, this.#now);
    this.#callers = new Lru(o.callerCacheSize ?? 4096, o.callerCacheTtlMs ?? 30_000, this.#now);
    this.#index = new Lru(o.socketIndexSize ?? 65_536, 0, this.#now);
    this.#recent = new Lru(o.recentCallers ?? 64, 0, this.#now);
    this.#parents = new Lru(o.parentCacheSize ?? 1024, o.parentCacheTtlMs ?? 5000, this.#now);
    this.#addrNetns = new Lru(1024, 60_000, this.#now);
    this.#seenTuples = new Lru(4096, 60_000, this.#now);
    this.#addrNowhere = new Lru(1024, NOWHERE_TTL_MS, this.#now);
    this.#exeSeen = new Lru(4096, 10_000, this.#now);
    this.#statusJustRead = new Lru(64, JUST_READ_MS, this.#now);
    const interval = o.refreshIntervalMs ?? 2000;
    if (interval > 0) {
      // Warm start: the first listing (the processes that exist before any call) and the user names.
      void this.#listPids(this.#now()).catch(() => {});
      void this.#userName(0);
      this.#timer = setInterval(() => {
        void this.refresh();
      }, interval);
      this.#timer.unref();
    }
  }

  stats(): ResolverStats {
    const d = this.#diag?.stats ?? { lookups: 0, hits: 0, errors: 0 };
    const out: ResolverStats = {
      ...this.#stats,
      diagLookups: d.lookups,
      diagHits: d.hits,
      diagErrors: d.errors,
      socketSource: this.#diag?.usable ? 'sock_diag' : 'proc',
      trackedPids: this.#pids.size,
      indexedSockets: this.#index.size,
    };
    const unavailable = this.#diag?.unavailable ?? this.#diagUnavailable;
    if (unavailable !== undefined) out.sockDiagUnavailable = unavailable;
    return out;
  }

  learn(pid: number): void {
    if (!Number.isInteger(pid) || pid <= 0) return;
    this.#recent.set(pid, true);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#callers.clear();
    this.#index.clear();
    this.#recent.clear();
    this.#parents.clear();
    this.#pids.clear();
    this.#lastPidFile?.close();
    this.#lastPidFile = undefined;
  }

  async resolve(conn: ConnectionInfo): Promise<Caller> {
    this.#stats.lookups++;
    const start = this.#now();
    try {
      return await this.#resolve(conn, start, start + this.#budgetMs);
    } catch (err) {
      this.#stats.unresolved++;
      return { resolved: 'none', error: `attribution failed: ${describeFsError(err)}` };
    }
  }

  async #resolve(conn: ConnectionInfo, start: number, deadline: number): Promise<Caller> {
    const client = `${conn.remoteAddress}:${conn.remotePort}`;
    // sock_diag finds the socket at once; the /proc table walk takes milliseconds. During that walk,
    // scan the likeliest owners of a connection not seen before (processes that called recently or
    // just started), so the index already knows the inode when the row arrives.
    const exact = this.#diag?.find(conn);
    let found: FoundRow | undefined = exact ? { row: exact } : undefined;
    if (!found && this.#inline) {
      this.#stats.unresolved++;
      return { resolved: 'none', error: `no socket for client ${client} found by sock_diag` };
    }
    if (!found) {
      if (this.#seenTuples.get(client) === undefined) {
        this.#seenTuples.set(client, true);
        void this.#prefetch(start, deadline).catch(() => {});
      }
      found = await this.#findRow(conn, start, deadline);
    }
    if (!found) {
      this.#stats.unresolved++;
      return {
        resolved: 'none',
        error: `no TCP socket for client ${client} in the guard's or any visible network namespace (the connection closed, or the client is beyond NAT)`,
      };
    }
    const { row } = found;
    // Timewait sockets (TIME_WAIT, an orphaned FIN_WAIT2) print uid 0 whatever the owner was; other
    // ownerless rows keep the real uid.
    const uid = uidUnknown(row) ? undefined : row.uid;
    const base: Caller = { resolved: 'partial' };
    if (uid !== undefined) {
      base.uid = uid;
      const user = await this.#userName(uid);
      if (user !== undefined) base.user = user;
    }
    // A row in the guard's own socket table is a client in the guard's own network namespace.
    base.netns = found.netns !== undefined ? 'other' : 'host';
    if (row.inode === 0) {
      this.#stats.unresolved++;
      base.error = `the client socket ${client} is already closed (the process may have exited); only its uid is known`;
      if (uid === undefined) {
        base.resolved = 'none';
        base.error = `the client socket ${client} is already closed (the process may have exited)`;
      }
      return base;
    }
    const cached = this.#callers.get(row.inode);
    if (cached) {
      this.#stats.cacheHits++;
      return cloneCaller(cached);
    }
    const pidResult = await this.#findPid(row.inode, uid, found.netns, start, deadline);
    if (pidResult.pid === undefined) {
      this.#stats.unresolved++;
      base.error = `socket inode ${row.inode} of ${client}: ${pidResult.error}`;
      return base;
    }
    const caller = await this.#describe(pidResult.pid, uid);
    if (caller.netns === undefined && found.netns !== undefined) caller.netns = 'other';
    if (caller.uid === undefined && base.uid !== undefined) {
      caller.uid = base.uid;
      if (base.user !== undefined) caller.user = base.user;
    }
    this.#recent.set(pidResult.pid, true);
    if (caller.resolved === 'full') this.#callers.set(row.inode, cloneCaller(caller));
    return caller;
  }

  // ---------------------------------------------------------------------------------------------
  // The socket row

  /**
   * The client's row in /proc/net/tcp or tcp6, else in another network namespace's. Used when
   * sock_diag did not find it: a client in another network namespace, a redirect to a destination
   * not in originalDestinations, or no addon.
   */
  async #findRow(conn: ConnectionInfo, since: number, deadline: number): Promise<FoundRow | undefined> {
    const lookups = this.#tableLookups(conn.remoteAddress);
    if (lookups.length === 0) return undefined;
    // An IPv4 client is looked for in tcp, then (dual-stack, mapped) in tcp6. A row in tcp that is
    // closed, or connected elsewhere, may be an older connection from the same port (ports are
    // reused, and TIME_WAIT rows stay for a minute): only a live row connected to the guard (or to an
    // original destination, for a redirect) ends the search; a weaker one is kept in case nothing
    // better turns up.
    let weak: TcpRow | undefined;
    let other: TcpRow | undefined;
    for (const [table, hex] of lookups) {
      const rows = await this.#rows(`${this.#root}/net/${table}`, since, hex, conn.remotePort);
      const row = pickClientRow(rows, conn.localPort);
      if (!row) continue;
      const live = row.inode !== 0 && row.state !== TCP_STATES.TIME_WAIT;
      const toUs = row.remotePort === conn.localPort || this.#destinationPorts.has(row.remotePort);
      if (live && toUs) return { row };
      // A closed row of this connection (its process exited) beats a row connected elsewhere.
      if (toUs) weak ??= row;
      else other ??= row;
    }
    const best = weak ?? other;
    if (best) return { row: best };
    return this.#findRowElsewhere(conn, lookups, since, deadline);
  }

  /** [table, kernel hex] pairs to search, in order, for a client address. */
  #tableLookups(address: string): Array<['tcp' | 'tcp6', string]> {
    const v4 = unmapIPv4(address) ?? (/^\d+\.\d+\.\d+\.\d+$/.test(address) ? address : undefined);
    if (v4 !== undefined) {
      const hex4 = addressToKernelHex(v4, this.#endian);
      const hex6 = addressToKernelHex(`::ffff:${v4}`, this.#endian);
      // An AF_INET client is in tcp; a dual-stack AF_INET6 client (Java, for one) is in tcp6, mapped.
      return hex4 && hex6
        ? [
            ['tcp', hex4],
            ['tcp6', hex6],
          ]
        : [];
    }
    const hex = addressToKernelHex(address, this.#endian);
    return hex ? [['tcp6', hex]] : [];
  }

  /**
   * The rows of a table whose local endpoint is hex:port. A scan of the table is shared by every
   * lookup that started before it did, and stops once each of them has found a live row.
   */
  #rows(path: string, since: number, hex: string, port: number): Promise<TcpRow[]> {
    const cur = this.#tables.get(path);
    if (cur && cur.startedAt >= since && (!cur.finished || cur.complete)) return cur.find(hex, port);
    this.#stats.tableReads++;
    const scan = new TableScan(path, this.#now(), this.#o.maxTableBytes);
    this.#tables.delete(path);
    this.#tables.set(path, scan);
    // Bounded: one entry per table path (the guard's two plus two per other namespace read).
    while (this.#tables.size > 4 * this.#o.maxNetns + 4) {
      const oldest = this.#tables.keys().next();
      if (oldest.done) break;
      this.#tables.delete(oldest.value);
    }
    return scan.find(hex, port);
  }

  /**
   * Callers in other network namespaces (a container bridge with a PREROUTING redirect): their
   * sockets are in their own namespace's table, readable through /proc/PID/net/tcp of any process
   * in that namespace. One representative pid per namespace; the namespace that held this client
   * address last time is tried first.
   */
  async #findRowElsewhere(
    conn: ConnectionInfo,
    lookups: Array<['tcp' | 'tcp6', string]>,
    since: number,
    deadline: number,
  ): Promise<FoundRow | undefined> {
    const addr = conn.remoteAddress;
    // Loopback never crosses namespaces; an address just searched everywhere in vain is not searched
    // again for a moment (each namespace's table is a full walk).
    if (isLoopback(addr) || this.#addrNowhere.get(addr) !== undefined) return undefined;
    const self = await this.#selfNs();
    if (self === undefined) return undefined;
    await this.#listPids(since);
    await this.#probeUnprobed(deadline, (e) => e.netns === undefined);
    const reps = new Map<string, number>();
    for (const [pid, e] of this.#pids) {
      if (e.netns !== undefined && e.netns !== self && !reps.has(e.netns)) reps.set(e.netns, pid);
    }
    const hint = this.#addrNetns.get(conn.remoteAddress);
    const order = [...reps.keys()]
      .sort((a, b) => Number(b === hint) - Number(a === hint))
      .slice(0, this.#o.maxNetns);
    for (const ns of order) {
      if (this.#now() > deadline) break;
      const rep = reps.get(ns) as number;
      for (const [table, hex] of lookups) {
        const rows = await this.#rows(`${this.#root}/${rep}/net/${table}`, since, hex, conn.remotePort);
        const row = pickClientRow(rows, conn.localPort);
        if (row) {
          this.#stats.otherNetnsRows++;
          this.#addrNetns.set(conn.remoteAddress, ns);
          return { row, netns: ns };
        }
      }
    }
    if (this.#now() <= deadline) this.#addrNowhere.set(addr, true);
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // inode -> pid

  async #findPid(
    inode: number,
    uid: number | undefined,
    netns: string | undefined,
    since: number,
    deadline: number,
  ): Promise<{ pid?: number; error: string }> {
    const tried = new Set<number>();
    const problems = { denied: 0, gone: 0, incomplete: 0 };
    let lateIndexHit = false;
    /** Counts a hit of a stage, or of the index when a concurrent scan found the socket first. */
    const hitIn = (stage: 'recentHits' | 'freshHits' | 'scanHits') => {
      this.#stats[lateIndexHit ? 'indexHits' : stage]++;
    };
    const scanList = async (list: readonly number[], parallel: number): Promise<number | undefined> => {
      let i = 0;
      let found: number | undefined;
      const worker = async () => {
        while (found === undefined && i < list.length) {
          if (this.#now() > deadline) return;
          // A concurrent lookup's scan may have indexed this socket meanwhile (a client that opened
          // many connections at once): no need to scan anything more.
          const late = this.#index.get(inode);
          if (late !== undefined) {
            found ??= late.pid;
            lateIndexHit = true;
            return;
          }
          const pid = list[i++] as number;
          if (tried.has(pid)) continue;
          tried.add(pid);
          const r = await this.#scanPid(pid, since, deadline, inode);
          if (r.sockets.includes(inode)) found ??= pid;
          else if (r.error === 'denied') problems.denied++;
          else if (r.error === 'gone') problems.gone++;
          else if (!r.complete) problems.incomplete++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(parallel, list.length) }, worker));
      return found;
    };

    // 0. The index: a socket seen in an earlier scan of its process.
    const hit = this.#index.get(inode);
    if (hit !== undefined) {
      const indexed = hit.pid;
      const entry = this.#pids.get(indexed);
      // A recent sighting needs no re-scan: the socket still exists, and a pid is not reused within
      // seconds while the process is alive. Older ones, and big processes, are checked.
      const recent = this.#now() - hit.at <= INDEX_TRUST_MS;
      const big = entry?.fdCount !== undefined && entry.fdCount > this.#o.verifyMaxFds;
      if (recent || big) {
        if (await this.#alive(indexed)) {
          this.#stats.indexHits++;
          return { pid: indexed, error: '' };
        }
      } else if ((await scanList([indexed], 1)) !== undefined) {
        this.#stats.indexHits++;
        return { pid: indexed, error: '' };
      }
      this.#index.delete(inode);
    }

    // 1. Recent callers: long-lived agents open a new connection per request.
    const recent = await scanList(this.#recent.keysByRecency(), 2);
    if (recent !== undefined) {
      hitIn('recentHits');
      return { pid: recent, error: '' };
    }

    // 2. A process started just now (curl from a script): the newest pid numbers, from the last one
    // the kernel handed out downwards. Cheaper than listing /proc again.
    const above = await this.#scanNewPids(inode, uid, tried, since, deadline);
    if (above !== undefined) {
      this.#stats.newPidHits++;
      return { pid: above, error: '' };
    }

    // The inline tier stops here: listing and scanning /proc is the worker's job.
    if (this.#inline) return { error: 'not among known and new processes (inline lookup)' };

    // 3. Processes that appeared recently, newest first (curl, a cron job, a fresh container).
    const listed = await this.#listPids(since);
    const now = this.#now();
    const fresh: number[] = [];
    const rest: number[] = [];
    for (const pid of listed) {
      const e = this.#pids.get(pid);
      if (e && now - e.firstSeen <= this.#o.freshWindowMs) fresh.push(pid);
      else rest.push(pid);
    }
    const inNs = (pid: number) => (netns !== undefined && this.#pids.get(pid)?.netns === netns ? 0 : 1);
    fresh.sort(
      (a, b) =>
        inNs(a) - inNs(b) ||
        (this.#pids.get(b)?.firstSeen ?? 0) - (this.#pids.get(a)?.firstSeen ?? 0) ||
        b - a,
    );
    const freshHit = await scanList(fresh, this.#o.scanConcurrency);
    if (freshHit !== undefined) {
      hitIn('freshHits');
      return { pid: freshHit, error: '' };
    }

    // 4. Everyone else: same network namespace, then same uid, then fewest fds first.
    const uidRank = (pid: number) => {
      const u = this.#pids.get(pid)?.uid;
      return u === undefined ? 1 : u === uid ? 0 : 2;
    };
    const fds = (pid: number) => this.#pids.get(pid)?.fdCount ?? 64;
    rest.sort((a, b) => inNs(a) - inNs(b) || uidRank(a) - uidRank(b) || fds(a) - fds(b) || b - a);
    const scanHit = await scanList(rest, this.#o.scanConcurrency);
    if (scanHit !== undefined) {
      hitIn('scanHits');
      return { pid: scanHit, error: '' };
    }

    const reasons: string[] = [];
    const overBudget = this.#now() > deadline;
    if (overBudget) {
      this.#stats.budgetExceeded++;
      reasons.push(
        `owner not found within the ${this.#budgetMs} ms budget (${tried.size} of ${listed.length} processes inspected)`,
      );
    } else {
      reasons.push(`no process holds it (${tried.size} processes inspected; it may have exited)`);
    }
    if (problems.denied > 0) {
      reasons.push(
        `permission denied reading /proc/PID/fd of ${problems.denied} processes (run the guard as root or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH)`,
      );
    }
    return { error: reasons.join('; ') };
  }

  /**
   * Looks for the socket's owner among the newest pids: from the last pid the kernel handed out
   * (/proc/sys/kernel/ns_last_pid) downwards, wrapping at pid_max. A process (not a thread) that is
   * new to the resolver, or appeared within the fresh window, and whose uids include the socket's
   * uid, is scanned. Stops at NEW_PID_PROBES numbers, at a run of NEW_PID_GAP numbers that are
   * unused or belong to older processes, or at the deadline; the listing of /proc takes over.
   */
  async #scanNewPids(
    inode: number,
    uid: number | undefined,
    tried: Set<number>,
    since: number,
    deadline: number,
  ): Promise<number | undefined> {
    const last = await this.#lastPid();
    if (last === undefined) return undefined;
    const pidMax = await this.#pidMax();
    let older = 0;
    let pid = last;
    for (let i = 0; i < NEW_PID_PROBES && older < NEW_PID_GAP; i++, pid = pid > 1 ? pid - 1 : pidMax - 1) {
      // The newest pid is always looked at, even past the deadline (a pause of this thread, a
      // collection, may have used the budget up): it is a few reads, and it is usually the caller.
      if (i > 0 && this.#now() > deadline) return undefined;
      if (tried.has(pid)) continue;
      // A process seen appearing long ago marks the older region (later stages cover it). One from
      // the first listing has no known age: it may have started a moment before, so it is looked at.
      const known = this.#pids.get(pid);
      if (
        known &&
        known.firstSeen !== Number.NEGATIVE_INFINITY &&
        this.#now() - known.firstSeen > this.#o.freshWindowMs
      ) {
        older++;
        continue;
      }
      let status: ReturnType<typeof parseStatus>;
      try {
        const raw = await this.#io.readOnce(`${this.#root}/${pid}/status`, 16_384);
        status = parseStatus(raw.toString('latin1'));
        this.#statusJustRead.set(pid, raw);
      } catch {
        older++;
        continue;
      }
      // A thread's number: its process has its own (a busy process's threads do not end the search).
      if (status.tgid !== pid) continue;
      older = 0;
      if (!known && this.#pids.size < this.#o.maxTrackedPids) {
        const entry: PidEntry = { firstSeen: this.#now(), probed: false };
        if (status.uids) entry.uid = status.uids[1];
        if (status.fdSize !== undefined) entry.fdLimit = status.fdSize;
        this.#pids.set(pid, entry);
      }
      if (uid !== undefined && status.uids && !status.uids.includes(uid)) continue;
      tried.add(pid);
      // Inline, a targeted scan: newest fds first, stopping at the socket (not shared with other
      // lookups, since it may stop before their sockets; the process then becomes a recent caller,
      // whose next scan is complete). Elsewhere a complete, shared scan indexes all its sockets.
      const r = this.#inline
        ? await this.#doScan(pid, deadline, inode)
        : await this.#scanPid(pid, since, deadline, inode);
      if (r.sockets.includes(inode)) return pid;
    }
    return undefined;
  }

  /** The last pid handed out in this pid namespace; undefined when the kernel does not say. */
  async #lastPid(): Promise<number | undefined> {
    const path = `${this.#root}/sys/kernel/ns_last_pid`;
    try {
      let text: string;
      if (this.#io.reread && !this.#closed) {
        // Synchronous I/O keeps the file open: one pread per lookup instead of open, read, close.
        this.#lastPidFile ??= this.#io.reread(path, 32);
        text = this.#lastPidFile.read().toString('latin1');
      } else {
        text = (await this.#io.readOnce(path, 32)).toString('latin1');
      }
      const n = Number(text);
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      this.#lastPidFile?.close();
      this.#lastPidFile = undefined;
      return undefined;
    }
  }

  /** Where pid numbers wrap (read once; 4,194,304, the largest Linux allows, when unknown). */
  async #pidMax(): Promise<number> {
    if (this.#pidMaxValue === undefined) {
      const n = await this.#io.readOnce(`${this.#root}/sys/kernel/pid_max`, 32).then(
        (b) => Number(b.toString('latin1')),
        () => Number.NaN,
      );
      this.#pidMaxValue = Number.isInteger(n) && n > 1 ? n : 4_194_304;
    }
    return this.#pidMaxValue;
  }

  /** Scans the likeliest owners of a new socket (see #resolve); the results land in the index. */
  async #prefetch(since: number, deadline: number): Promise<void> {
    const recent = this.#recent.keysByRecency().slice(0, PREFETCH_RECENT);
    const listing = this.#listPids(since);
    // A process already being scanned is left alone: lookups wait for that scan (see #scanPid).
    const idle = (pid: number) => !this.#scans.has(pid);
    await Promise.all(recent.filter(idle).map((pid) => this.#scanPid(pid, since, deadline)));
    const listed = await listing;
    const now = this.#now();
    const fresh = listed
      .filter(
        (pid) => now - (this.#pids.get(pid)?.firstSeen ?? Number.NEGATIVE_INFINITY) <= this.#o.freshWindowMs,
      )
      .sort((a, b) => (this.#pids.get(b)?.firstSeen ?? 0) - (this.#pids.get(a)?.firstSeen ?? 0) || b - a)
      .slice(0, PREFETCH_FRESH);
    await Promise.all(fresh.filter(idle).map((pid) => this.#scanPid(pid, since, deadline)));
  }

  async #alive(pid: number): Promise<boolean> {
    try {
      await this.#io.stat(`${this.#root}/${pid}`);
      return true;
    } catch {
      return false;
    }
  }

  /** Scans one process's fds for socket inodes and indexes them. Shared by concurrent lookups. */
  #scanPid(pid: number, since: number, deadline: number, inode?: number): Promise<ScanResult> {
    const cur = this.#scans.get(pid);
    if (cur && cur.startedAt >= since) return cur.promise;
    if (cur && inode !== undefined) {
      // An older scan is running: it may well see this socket too (a client opening many connections
      // at once). Wait for it, and scan again only if the socket was not there.
      return cur.promise.then((r) => (r.sockets.includes(inode) ? r : this.#scanPid(pid, since, deadline)));
    }
    const startedAt = this.#now();
    const promise = this.#doScan(pid, deadline);
    const entry = { startedAt, promise };
    this.#scans.set(pid, entry);
    void promise.finally(() => {
      if (this.#scans.get(pid) === entry) this.#scans.delete(pid);
    });
    return promise;
  }

  /**
   * Reads a process's fd links and indexes its sockets. With `want`, the newest fds (highest numbers)
   * are read first and the scan stops once that socket is found: a process that has just started
   * opened its socket last.
   */
  async #doScan(pid: number, deadline: number, want?: number): Promise<ScanResult> {
    const dir = `${this.#root}/${pid}/fd`;
    if (this.#inline) {
      // Listing a big fd table blocks for milliseconds: the inline tier leaves it to the worker.
      // The size of /proc/PID/fd is its fd count on Linux 6.2+ (0, unknown, before).
      // FDSize (from the status the new-pid probe read) bounds the count from above: small enough,
      // no need to ask.
      const known = this.#pids.get(pid);
      let count = known?.fdCount;
      const limit = known?.fdLimit;
      if (count === undefined && limit !== undefined && limit > 0 && limit <= INLINE_MAX_FDS) count = limit;
      if (count === undefined) {
        try {
          count = (await this.#io.stat(dir)).size;
        } catch (err) {
          return this.#scanFailed(pid, err);
        }
      }
      if (count === 0 || count > INLINE_MAX_FDS) {
        return { sockets: [], complete: false, error: `${count || 'unknown'} fds: not scanned inline` };
      }
    }
    this.#stats.pidScans++;
    // A recent caller that has exited since (the last curl): cheaper to ask than to fail reading.
    // Not for a process whose status was read a moment ago (the new-pid probe): it is there.
    if (this.#io.exists && this.#statusJustRead.peek(pid) === undefined && !this.#io.exists(dir)) {
      return this.#scanFailed(pid, GONE);
    }
    let names: string[];
    try {
      names = await this.#io.readdir(dir);
    } catch (err) {
      return this.#scanFailed(pid, err);
    }
    // The executable is read beside the fd links: a short-lived client (curl) may be gone by the time
    // the lookup describes it, and its exe is the fact that matters most.
    const exe = this.#io.readlink(`${this.#root}/${pid}/exe`).then(
      (l) => {
        this.#exeSeen.set(pid, { link: l, at: this.#now() });
      },
      () => {},
    );
    if (want !== undefined) names.sort((a, b) => Number(b) - Number(a));
    const sockets: number[] = [];
    let complete = true;
    // Synchronous reads gain nothing from batches: one link at a time stops right at the socket.
    const sync = this.#io === syncProcIo;
    const step = sync ? 1 : want !== undefined ? Math.min(4, this.#o.fdConcurrency) : this.#o.fdConcurrency;
    let wanted = false;
    const note = (link: string) => {
      if (link.charCodeAt(0) !== 115 /* s */) return;
      const inode = parseSocketLink(link);
      if (inode === undefined) return;
      sockets.push(inode);
      if (inode === want) wanted = true;
    };
    for (let i = 0; i < names.length; i += step) {
      if ((i > 0 && this.#now() > deadline) || wanted) {
        complete = false;
        break;
      }
      if (sync) {
        this.#stats.fdReads++;
        note(await this.#io.readlink(`${dir}/${names[i]}`).catch(() => ''));
        continue;
      }
      const batch = names.slice(i, i + step);
      this.#stats.fdReads += batch.length;
      const links = await Promise.all(batch.map((n) => this.#io.readlink(`${dir}/${n}`).catch(() => '')));
      for (const l of links) note(l);
    }
    const at = this.#now();
    for (const inode of sockets) this.#index.set(inode, { pid, at });
    await exe;
    const entry = this.#pids.get(pid);
    if (entry) {
      entry.sockets = sockets.slice(0, MAX_SOCKETS_PER_PID);
      if (complete) entry.fdCount = names.length;
    }
    return { sockets, complete };
  }

  /** A scan that could not read the process: forget it when it is gone, and say why. */
  #scanFailed(pid: number, err: unknown): ScanResult {
    if (isGone(err)) this.#forget(pid);
    return {
      sockets: [],
      complete: false,
      error: isDenied(err) ? 'denied' : isGone(err) ? 'gone' : describeFsError(err),
    };
  }

  #forget(pid: number): void {
    this.#described.delete(pid);
    const e = this.#pids.get(pid);
    if (e?.sockets) {
      for (const inode of e.sockets) if (this.#index.peek(inode)?.pid === pid) this.#index.delete(inode);
    }
    this.#pids.delete(pid);
    this.#recent.delete(pid);
  }

  /** Lists /proc (shared by lookups that started before the listing did) and updates the pid table. */
  #listPids(since: number): Promise<number[]> {
    const cur = this.#listing;
    if (cur && cur.startedAt >= since) return cur.promise;
    const startedAt = this.#now();
    // The inline tier lists /proc in the background only, off its thread (a listing is hundreds of us).
    const promise = (this.#inline ? asyncProcIo : this.#io).readdir(this.#root).then((names) => {
      const pids: number[] = [];
      for (const n of names) {
        const c = n.charCodeAt(0);
        if (c < 48 || c > 57) continue;
        const pid = Number(n);
        if (Number.isInteger(pid)) pids.push(pid);
      }
      const seen = new Set(pids);
      for (const pid of this.#pids.keys()) if (!seen.has(pid)) this.#forget(pid);
      const firstSeen = this.#listedOnce ? startedAt : Number.NEGATIVE_INFINITY;
      for (const pid of pids) {
        if (this.#pids.size >= this.#o.maxTrackedPids) break;
        if (!this.#pids.has(pid)) this.#pids.set(pid, { firstSeen, probed: false });
      }
      this.#listedOnce = true;
      return pids;
    });
    this.#listing = { startedAt, promise };
    return promise;
  }

  /** Reads uid, fd count and network namespace of pids not probed yet, until the deadline. */
  async #probeUnprobed(
    deadline: number,
    want: (e: PidEntry) => boolean = () => true,
    parallel = 4,
  ): Promise<void> {
    const todo: Array<[number, PidEntry]> = [];
    for (const [pid, e] of this.#pids) if (!e.probed && want(e)) todo.push([pid, e]);
    // Newest first: they matter most for lookups.
    todo.sort((a, b) => b[1].firstSeen - a[1].firstSeen || b[0] - a[0]);
    let i = 0;
    const worker = async () => {
      let slice = this.#now();
      while (i < todo.length && this.#now() <= deadline) {
        const [pid, e] = todo[i++] as [number, PidEntry];
        await this.#probe(pid, e);
        // With synchronous I/O nothing else runs meanwhile: let waiting lookups in every millisecond.
        if (this.#now() - slice >= 1) {
          await new Promise((r) => setImmediate(r));
          slice = this.#now();
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  async #probe(pid: number, e: PidEntry): Promise<void> {
    const base = `${this.#root}/${pid}`;
    const [st, fd, ns] = await Promise.allSettled([
      this.#io.stat(base),
      this.#io.stat(`${base}/fd`),
      this.#io.readlink(`${base}/ns/net`),
    ]);
    if (st.status === 'fulfilled') e.uid = st.value.uid;
    // Linux 6.2+ reports the number of open fds as the size of /proc/PID/fd; older kernels say 0.
    if (fd.status === 'fulfilled' && fd.value.size > 0) e.fdCount = fd.value.size;
    if (ns.status === 'fulfilled') e.netns = parseNsLink(ns.value);
    e.probed = true;
  }

  async refresh(): Promise<void> {
    if (this.#refreshing || this.#closed) return;
    this.#refreshing = true;
    try {
      const start = this.#now();
      await this.#listPids(start);
      // The inline tier only needs the highest pid; probing processes is the worker's job.
      if (this.#inline) return;
      // One process at a time: lookups share the same libuv thread pool and must not queue behind this.
      await this.#probeUnprobed(start + this.#o.refreshBudgetMs, undefined, 1);
    } catch {
      // The next tick tries again; lookups never depend on the refresh having worked.
    } finally {
      this.#refreshing = false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // pid -> Caller

  async #describe(pid: number, socketUid: number | undefined): Promise<Caller> {
    const base = `${this.#root}/${pid}`;
    // The same process on another connection (an agent that connects per request): its description
    // stands while its exe link is the same (an exec would change it) and the socket's owner is the
    // uid it was described with. One readlink instead of six reads.
    const known = this.#described.get(pid);
    if (known) {
      const link = await this.#io.readlink(`${base}/exe`).catch(() => undefined);
      if (link === known.exeLink && (socketUid === undefined || socketUid === known.caller.uid)) {
        this.#stats.describeHits++;
        return cloneCaller(known.caller);
      }
      this.#described.delete(pid);
    }
    // What this lookup read a moment ago (the fd scan's exe link, the new-pid probe's status) is
    // not read again: a process that is still starting makes every /proc read slow.
    const seen = this.#exeSeen.get(pid);
    const freshExe = seen && this.#now() - seen.at <= JUST_READ_MS ? seen.link : undefined;
    const freshStatus = this.#statusJustRead.get(pid);
    this.#statusJustRead.delete(pid);
    const [exeR, cmdR, statusR, cgroupR, nsR, selfNs] = await Promise.allSettled([
      freshExe !== undefined ? Promise.resolve(freshExe) : this.#io.readlink(`${base}/exe`),
      this.#io.readOnce(`${base}/cmdline`, this.#o.maxCmdlineBytes),
      freshStatus !== undefined ? Promise.resolve(freshStatus) : this.#io.readOnce(`${base}/status`, 16_384),
      this.#io.readOnce(`${base}/cgroup`, 16_384),
      this.#io.readlink(`${base}/ns/net`),
      this.#selfNs(),
    ]);
    const caller: Caller = { resolved: 'partial', pid };
    const errors: string[] = [];
    if (exeR.status === 'fulfilled' || seen !== undefined) {
      const { exe, deleted } = parseExeLink(
        exeR.status === 'fulfilled' ? exeR.value : (seen?.link as string),
      );
      caller.exe = exe;
      if (deleted) caller.exeDeleted = true;
      if (exeR.status === 'rejected')
        errors.push(`the process exited during the lookup (exe as seen by its fd scan)`);
    } else {
      errors.push(`${describeFsError(exeR.reason)} reading ${base}/exe`);
    }
    if (cmdR.status === 'fulfilled') {
      caller.cmdline = parseCmdline(cmdR.value, {
        maxArgs: this.#o.maxCmdlineArgs,
        maxArgLength: this.#o.maxCmdlineArgLength,
      });
    }
    let ppid: number | undefined;
    if (statusR.status === 'fulfilled') {
      const s = parseStatus(statusR.value.toString('latin1'));
      if (s.uids) caller.uid = s.uids[1];
      ppid = s.ppid;
    } else {
      errors.push(`${describeFsError(statusR.reason)} reading ${base}/status`);
    }
    if (caller.uid === undefined && socketUid !== undefined) caller.uid = socketUid;
    if (caller.uid !== undefined) {
      const user = await this.#userName(caller.uid);
      if (user !== undefined) caller.user = user;
    }
    if (cgroupR.status === 'fulfilled') {
      const c = parseCgroup(cgroupR.value.toString('utf8'));
      if (c) caller.container = c;
    }
    if (nsR.status === 'fulfilled' && selfNs.status === 'fulfilled' && selfNs.value !== undefined) {
      const ns = parseNsLink(nsR.value);
      if (ns !== undefined) caller.netns = ns === selfNs.value ? 'host' : 'other';
    }
    if (ppid !== undefined && ppid > 0 && this.#o.maxParents > 0)
      caller.parents = await this.#ancestors(ppid);
    if (caller.exe !== undefined) caller.resolved = 'full';
    if (errors.length > 0) caller.error = errors.join('; ');
    else if (caller.resolved === 'full' && exeR.status === 'fulfilled') {
      this.#described.set(pid, { exeLink: exeR.value, caller: cloneCaller(caller) });
    }
    return caller;
  }

  async #ancestors(first: number): Promise<ProcessRef[]> {
    const out: ProcessRef[] = [];
    let pid: number | undefined = first;
    while (pid !== undefined && pid > 0 && out.length < this.#o.maxParents) {
      let info = this.#parents.get(pid);
      if (!info) {
        const base = `${this.#root}/${pid}`;
        const [exeR, statR] = await Promise.allSettled([
          this.#io.readlink(`${base}/exe`),
          this.#io.readOnce(`${base}/stat`, 4096),
        ]);
        info = {};
        if (exeR.status === 'fulfilled') info.exe = parseExeLink(exeR.value).exe;
        if (statR.status === 'fulfilled') {
          const s = parseStat(statR.value.toString('latin1'));
          if (s) info.ppid = s.ppid;
        } else if (isGone(statR.reason)) {
          break;
        }
        this.#parents.set(pid, info);
      }
      const ref: ProcessRef = { pid };
      if (info.exe !== undefined) ref.exe = info.exe;
      out.push(ref);
      pid = info.ppid;
    }
    return out;
  }

  #selfNs(): Promise<string | undefined> {
    this.#selfNetns ??= this.#io.readlink(`${this.#root}/self/ns/net`).then(parseNsLink, () => undefined);
    return this.#selfNetns;
  }

  async #userName(uid: number): Promise<string | undefined> {
    const have = this.#passwd?.get(uid);
    if (have !== undefined) return have;
    if (this.#now() - this.#passwdLoadedAt > PASSWD_REFRESH_MS) {
      // Off the inline tier's thread: /etc/passwd may be megabytes (read at most every 30 s).
      this.#passwdLoading ??= (this.#inline ? asyncProcIo : this.#io)
        .readAll(this.#passwdPath, 16 * 1024 * 1024)
        .then(
          (r) => {
            this.#passwd = parsePasswd(r.text);
          },
          () => {
            this.#passwd ??= new Map();
          },
        )
        .finally(() => {
          this.#passwdLoadedAt = this.#now();
          this.#passwdLoading = undefined;
        });
      await this.#passwdLoading;
    }
    return this.#passwd?.get(uid);
  }
}
