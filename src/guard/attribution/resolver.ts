import { parseCgroup } from './cgroup-identity.js';
import type { ProcContext } from './context.js';
import { FdScanner } from './fd-scan.js';
import { Lru } from './lru.js';
import { type ProcResolverOptions, settingsOf } from './options.js';
import { PidSearch } from './pid-search.js';
import { PodAddresses } from './pods/addresses.js';
import { KubeletPods } from './pods/kubelet.js';
import { PodNamer } from './pods/pod-namer.js';
import { asyncProcIo, describeFsError, syncProcIo } from './proc-io.js';
import { isLoopback, uidUnknown } from './proc-parse.js';
import { cloneCaller, ProcessDescriber } from './process-describe.js';
import { ProcessTable } from './process-table.js';
import { type FoundSocket, SocketFinder } from './socket-finder.js';
import { newCounters, type ResolverStats } from './stats.js';
import type { Caller, ConnectionInfo, ProcessResolver } from './types.js';
import { UserNames } from './user-names.js';

/**
 * The socket -> process resolver over /proc. docs/attribution.md explains the design; in short:
 *
 * 1. the client's socket is found by its 4-tuple through netlink sock_diag (the optional native addon,
 *    microseconds), or else by its (address, port) in /proc/net/tcp or tcp6 (one read per lookup,
 *    shared by concurrent lookups); either gives the socket's uid and inode (socket-finder.ts);
 * 2. the inode is mapped to a pid WITHOUT scanning every /proc/PID/fd: an inode -> pid index, then the
 *    processes that called recently, then processes that appeared recently (newest first), then the
 *    rest ordered by uid match and fd count, until a per-lookup time budget runs out (pid-search.ts,
 *    over fd-scan.ts and process-table.ts);
 * 3. the pid is described (exe, bounded cmdline, uid/user, parents, container, network namespace)
 *    (process-describe.ts).
 *
 * This file only runs the three steps in order and keeps the resolved callers by socket inode.
 * Every cache is bounded; every failure becomes a Caller with `error`, never an exception.
 */

/** A client socket and where its owner holds it. */
export interface OwnedSocket {
  inode: number;
  pid: number;
  fd: number;
}

/** A caller, and the socket that led to it (when its owner was found). */
export interface Resolved {
  caller: Caller;
  socket?: OwnedSocket;
}

export interface ProcResolver extends ProcessResolver {
  /** resolve(), with the socket that led to the caller. */
  resolveOwned(conn: ConnectionInfo): Promise<Resolved>;
  stats(): ResolverStats;
  /**
   * Notes a caller that another tier found (the worker, for the inline tier): its next connections
   * are looked for there first, and its socket is indexed.
   */
  learn(pid: number, socket?: OwnedSocket): void;
  /** Refreshes the process list now; the background timer calls it every refreshIntervalMs. */
  refresh(): Promise<void>;
}

export function createProcResolver(options: ProcResolverOptions = {}): ProcResolver {
  return new ProcFsResolver(options);
}

class ProcFsResolver implements ProcResolver {
  readonly #ctx: ProcContext;
  readonly #table: ProcessTable;
  readonly #sockets: SocketFinder;
  readonly #fds: FdScanner;
  readonly #pids: PidSearch;
  readonly #describer: ProcessDescriber;
  readonly #users: UserNames;
  readonly #pods: PodNamer;
  /** Resolved callers by socket inode. */
  readonly #callers: Lru<number, Caller>;
  /** Client endpoints seen before: a lookup of a connection already seen skips the prefetch. */
  readonly #seenTuples: Lru<string, true>;
  #timer: NodeJS.Timeout | undefined;
  #refreshing = false;
  #closed = false;

  constructor(o: ProcResolverOptions) {
    const settings = settingsOf(o);
    const inline = o.inline === true;
    const now = o.now ?? (() => performance.now());
    const io = o.io === 'sync' || inline ? syncProcIo : asyncProcIo;
    this.#ctx = {
      root: (o.procRoot ?? '/proc').replace(/\/+$/, ''),
      io,
      now,
      inline,
      settings,
      counters: newCounters(),
      closed: () => this.#closed,
    };
    this.#table = new ProcessTable(this.#ctx);
    this.#sockets = new SocketFinder(this.#ctx, this.#table, o);
    this.#fds = new FdScanner(this.#ctx, this.#table);
    this.#pids = new PidSearch(this.#ctx, this.#table, this.#fds);
    this.#users = new UserNames(o.passwdPath ?? '/etc/passwd', io, now, inline);
    // Off the inline tier's thread, like the passwd file: these are read on a miss only.
    const podIo = inline ? asyncProcIo : io;
    this.#pods = new PodNamer(
      new KubeletPods({ podsRoot: o.podsRoot, containerLogsRoot: o.containerLogsRoot, io: podIo, now }),
      new PodAddresses({
        cniNetworksRoot: o.cniNetworksRoot,
        vpcCniIpamFile: o.vpcCniIpamFile,
        cgroupRoot: o.cgroupRoot,
        io: podIo,
        now,
      }),
    );
    this.#describer = new ProcessDescriber(this.#ctx, this.#table, this.#users, this.#pods);
    this.#callers = new Lru(settings.callerCacheSize, settings.callerCacheTtlMs, now);
    this.#seenTuples = new Lru(4096, 60_000, now);
    const interval = settings.refreshIntervalMs;
    if (interval > 0) {
      // Warm start: the first listing (the processes that exist before any call) and the user names.
      void this.#table.list(now()).catch(() => {});
      void this.#users.name(0);
      this.#timer = setInterval(() => {
        void this.refresh();
      }, interval);
      this.#timer.unref();
    }
  }

  stats(): ResolverStats {
    const d = this.#sockets.diagState();
    const out: ResolverStats = {
      ...this.#ctx.counters,
      diagLookups: d.stats.lookups,
      diagHits: d.stats.hits,
      diagErrors: d.stats.errors,
      socketSource: d.usable ? 'sock_diag' : 'proc',
      trackedPids: this.#table.pids.size,
      indexedSockets: this.#fds.index.size,
    };
    if (d.unavailable !== undefined) out.sockDiagUnavailable = d.unavailable;
    return out;
  }

  learn(pid: number, socket?: OwnedSocket): void {
    if (!Number.isInteger(pid) || pid <= 0) return;
    this.#pids.called(pid);
    if (socket?.pid !== pid) return;
    this.#table.track(pid);
    this.#fds.index.set(socket.inode, pid, socket.fd);
    this.#fds.noteClient(pid, socket.fd);
  }

  async refresh(): Promise<void> {
    if (this.#refreshing || this.#closed) return;
    this.#refreshing = true;
    try {
      const start = this.#ctx.now();
      await this.#table.list(start);
      // The inline tier only needs the highest pid; probing processes is the worker's job.
      if (this.#ctx.inline) return;
      // One process at a time: lookups share the same libuv thread pool and must not queue behind this.
      await this.#table.probeUnprobed(start + this.#ctx.settings.refreshBudgetMs, undefined, 1);
    } catch {
      // The next tick tries again; lookups never depend on the refresh having worked.
    } finally {
      this.#refreshing = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#callers.clear();
    this.#fds.clear();
    this.#pids.close();
    this.#describer.clear();
    this.#table.clear();
  }

  async resolve(conn: ConnectionInfo): Promise<Caller> {
    return (await this.resolveOwned(conn)).caller;
  }

  async resolveOwned(conn: ConnectionInfo): Promise<Resolved> {
    this.#ctx.counters.lookups++;
    const start = this.#ctx.now();
    try {
      return await this.#resolve(conn, start, start + this.#ctx.settings.budgetMs);
    } catch (err) {
      this.#ctx.counters.unresolved++;
      return { caller: { resolved: 'none', error: `attribution failed: ${describeFsError(err)}` } };
    }
  }

  async #resolve(conn: ConnectionInfo, start: number, deadline: number): Promise<Resolved> {
    const counters = this.#ctx.counters;
    const client = `${conn.remoteAddress}:${conn.remotePort}`;
    // sock_diag finds the socket at once; the /proc table walk takes milliseconds. During that walk,
    // scan the likeliest owners of a connection not seen before (processes that called recently or
    // just started), so the index already knows the inode when the row arrives.
    let found: FoundSocket | undefined = this.#sockets.exact(conn);
    if (!found && this.#ctx.inline) {
      counters.unresolved++;
      return { caller: { resolved: 'none', error: `no socket for client ${client} found by sock_diag` } };
    }
    if (!found) {
      if (this.#seenTuples.get(client) === undefined) {
        this.#seenTuples.set(client, true);
        void this.#pids.prefetch(start, deadline).catch(() => {});
      }
      found = await this.#sockets.inTables(conn, start, deadline);
    }
    if (!found) {
      counters.unresolved++;
      const error = `no TCP socket for client ${client} in the guard's or any visible network namespace (the connection closed, or the client is beyond NAT)`;
      // A pod's socket lives in its own network namespace; without a process of it in sight, its
      // address may still name it (the CNI's records).
      const pod = isLoopback(conn.remoteAddress)
        ? undefined
        : await this.#pods.fromAddress(conn.remoteAddress);
      if (pod) {
        return {
          caller: {
            resolved: 'partial',
            netns: 'other',
            pod,
            error: `${error}; the pod is named by its address`,
          },
        };
      }
      return { caller: { resolved: 'none', error } };
    }
    const { row } = found;
    // Timewait sockets (TIME_WAIT, an orphaned FIN_WAIT2) print uid 0 whatever the owner was; other
    // ownerless rows keep the real uid.
    const uid = uidUnknown(row) ? undefined : row.uid;
    const base: Caller = { resolved: 'partial' };
    if (uid !== undefined) {
      base.uid = uid;
      const user = await this.#users.name(uid);
      if (user !== undefined) base.user = user;
    }
    // A row in the guard's own socket table is a client in the guard's own network namespace.
    base.netns = found.netns !== undefined ? 'other' : 'host';
    if (row.inode === 0) {
      counters.unresolved++;
      await this.#podOfNetns(base, found.netns);
      base.error = `the client socket ${client} is already closed (the process may have exited); only its uid is known`;
      if (uid === undefined) {
        base.resolved = 'none';
        base.error = `the client socket ${client} is already closed (the process may have exited)`;
      }
      return { caller: base };
    }
    const cached = this.#callers.get(row.inode);
    if (cached) {
      counters.cacheHits++;
      return { caller: cloneCaller(cached) };
    }
    // The socket existed when the guard saw the connection (before this lookup, if it waited).
    const socketSince =
      conn.seenAt !== undefined ? Math.min(start, start - (Date.now() - conn.seenAt)) : start;
    const pidResult = await this.#pids.find(row.inode, uid, found.netns, socketSince, deadline);
    if (pidResult.pid === undefined) {
      counters.unresolved++;
      base.error = `socket inode ${row.inode} of ${client}: ${pidResult.error}`;
      await this.#podOfNetns(base, found.netns);
      return { caller: base };
    }
    const caller = await this.#describer.describe(pidResult.pid, uid);
    if (caller.netns === undefined && found.netns !== undefined) caller.netns = 'other';
    if (caller.uid === undefined && base.uid !== undefined) {
      caller.uid = base.uid;
      if (base.user !== undefined) caller.user = base.user;
    }
    this.#pids.called(pidResult.pid);
    if (caller.resolved === 'full') this.#callers.set(row.inode, cloneCaller(caller));
    const owner = this.#fds.index.get(row.inode);
    return owner?.pid === pidResult.pid
      ? { caller, socket: { inode: row.inode, pid: owner.pid, fd: owner.fd } }
      : { caller };
  }

  /**
   * When the socket is in another network namespace but its process was not found: the pod of that
   * namespace, from the cgroup of a process in it (the pod's sandbox, or any of its containers).
   */
  async #podOfNetns(caller: Caller, netns: string | undefined): Promise<void> {
    if (netns === undefined) return;
    for (const [pid, e] of this.#table.pids) {
      if (e.netns !== netns) continue;
      const text = await this.#ctx.io.readOnce(`${this.#ctx.root}/${pid}/cgroup`, 16_384).then(
        (b) => b.toString('utf8'),
        () => '',
      );
      const container = parseCgroup(text);
      if (container?.podUid === undefined) continue;
      const pod = await this.#pods.fromContainer(container, false, 'netns');
      if (pod) caller.pod = pod;
      return;
    }
  }
}
