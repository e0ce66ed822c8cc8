import { GONE, type ProcContext } from './context.js';
import { Lru } from './lru.js';
import { describeFsError, isDenied, isGone, syncProcIo } from './proc-io.js';
import { parseSocketLink } from './proc-parse.js';
import type { ProcessTable } from './process-table.js';

/**
 * Reads a process's /proc/PID/fd links and learns which socket inodes it holds: the inode -> pid
 * index that every later lookup asks first. Scans of the same pid by concurrent lookups are shared.
 */

export interface ScanResult {
  sockets: number[];
  complete: boolean;
  error?: 'denied' | 'gone' | string;
}

interface InFlight<T> {
  startedAt: number;
  promise: Promise<T>;
}

const MAX_SOCKETS_PER_PID = 4096;
/** The inline tier scans only processes with at most this many open fds (a few us per fd). */
const INLINE_MAX_FDS = 256;

export class FdScanner {
  readonly #ctx: ProcContext;
  readonly #table: ProcessTable;
  /** inode -> the pid whose fds held it, and when that was seen. */
  readonly index: Lru<number, { pid: number; at: number }>;
  readonly #scans = new Map<number, InFlight<ScanResult>>();

  constructor(ctx: ProcContext, table: ProcessTable) {
    this.#ctx = ctx;
    this.#table = table;
    this.index = new Lru(ctx.settings.socketIndexSize, 0, ctx.now);
    table.onForget((pid, e) => {
      if (e?.sockets) {
        for (const inode of e.sockets) if (this.index.peek(inode)?.pid === pid) this.index.delete(inode);
      }
    });
  }

  /** Whether a scan of this pid is running. */
  busy(pid: number): boolean {
    return this.#scans.has(pid);
  }

  /** Scans one process's fds for socket inodes and indexes them. Shared by concurrent lookups. */
  scan(pid: number, since: number, deadline: number, inode?: number): Promise<ScanResult> {
    const cur = this.#scans.get(pid);
    if (cur && cur.startedAt >= since) return cur.promise;
    if (cur && inode !== undefined) {
      // An older scan is running: it may well see this socket too (a client opening many connections
      // at once). Wait for it, and scan again only if the socket was not there.
      return cur.promise.then((r) => (r.sockets.includes(inode) ? r : this.scan(pid, since, deadline)));
    }
    const startedAt = this.#ctx.now();
    const promise = this.scanNow(pid, deadline);
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
   * opened its socket last. Not shared (see scan).
   */
  async scanNow(pid: number, deadline: number, want?: number): Promise<ScanResult> {
    const ctx = this.#ctx;
    const io = ctx.io;
    const dir = `${ctx.root}/${pid}/fd`;
    if (ctx.inline) {
      // Listing a big fd table blocks for milliseconds: the inline tier leaves it to the worker.
      // The size of /proc/PID/fd is its fd count on Linux 6.2+ (0, unknown, before).
      // FDSize (from the status the new-pid probe read) bounds the count from above: small enough,
      // no need to ask.
      const known = this.#table.pids.get(pid);
      let count = known?.fdCount;
      const limit = known?.fdLimit;
      if (count === undefined && limit !== undefined && limit > 0 && limit <= INLINE_MAX_FDS) count = limit;
      if (count === undefined) {
        try {
          count = (await io.stat(dir)).size;
        } catch (err) {
          return this.#failed(pid, err);
        }
      }
      if (count === 0 || count > INLINE_MAX_FDS) {
        return { sockets: [], complete: false, error: `${count || 'unknown'} fds: not scanned inline` };
      }
    }
    ctx.counters.pidScans++;
    // A recent caller that has exited since (the last curl): cheaper to ask than to fail reading.
    // Not for a process whose status was read a moment ago (the new-pid probe): it is there.
    if (io.exists && this.#table.statusJustRead.peek(pid) === undefined && !io.exists(dir)) {
      return this.#failed(pid, GONE);
    }
    let names: string[];
    try {
      names = await io.readdir(dir);
    } catch (err) {
      return this.#failed(pid, err);
    }
    // The executable is read beside the fd links: a short-lived client (curl) may be gone by the time
    // the lookup describes it, and its exe is the fact that matters most.
    const exe = io.readlink(`${ctx.root}/${pid}/exe`).then(
      (l) => {
        this.#table.exeSeen.set(pid, { link: l, at: ctx.now() });
      },
      () => {},
    );
    if (want !== undefined) names.sort((a, b) => Number(b) - Number(a));
    const sockets: number[] = [];
    let complete = true;
    // Synchronous reads gain nothing from batches: one link at a time stops right at the socket.
    const sync = io === syncProcIo;
    const fdConcurrency = ctx.settings.fdConcurrency;
    const step = sync ? 1 : want !== undefined ? Math.min(4, fdConcurrency) : fdConcurrency;
    let wanted = false;
    const note = (link: string) => {
      if (link.charCodeAt(0) !== 115 /* s */) return;
      const inode = parseSocketLink(link);
      if (inode === undefined) return;
      sockets.push(inode);
      if (inode === want) wanted = true;
    };
    for (let i = 0; i < names.length; i += step) {
      if ((i > 0 && ctx.now() > deadline) || wanted) {
        complete = false;
        break;
      }
      if (sync) {
        ctx.counters.fdReads++;
        note(await io.readlink(`${dir}/${names[i]}`).catch(() => ''));
        continue;
      }
      const batch = names.slice(i, i + step);
      ctx.counters.fdReads += batch.length;
      const links = await Promise.all(batch.map((n) => io.readlink(`${dir}/${n}`).catch(() => '')));
      for (const l of links) note(l);
    }
    const at = ctx.now();
    for (const inode of sockets) this.index.set(inode, { pid, at });
    await exe;
    const entry = this.#table.pids.get(pid);
    if (entry) {
      entry.sockets = sockets.slice(0, MAX_SOCKETS_PER_PID);
      if (complete) entry.fdCount = names.length;
    }
    return { sockets, complete };
  }

  /** A scan that could not read the process: forget it when it is gone, and say why. */
  #failed(pid: number, err: unknown): ScanResult {
    if (isGone(err)) this.#table.forget(pid);
    return {
      sockets: [],
      complete: false,
      error: isDenied(err) ? 'denied' : isGone(err) ? 'gone' : describeFsError(err),
    };
  }

  clear(): void {
    this.index.clear();
  }
}
