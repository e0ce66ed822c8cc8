import { GONE, type ProcContext } from './context.js';
import { describeFsError, isDenied, isGone, syncProcIo } from './proc-io.js';
import { parseSocketLink } from './proc-parse.js';
import { CLIENT_FDS, FREE_FDS, type ProcessTable } from './process-table.js';
import { SocketIndex } from './socket-index.js';

/**
 * Reads a process's /proc/PID/fd links and learns which socket inodes it holds, under which fd: the
 * inode -> (pid, fd) index that every later lookup asks first. Three ways, cheapest first:
 *
 * - verify: one readlink of the fd the index names (a hit is confirmed, never trusted);
 * - probe: a few readlinks where a known process's new socket most likely is (the fds of its
 *   earlier client sockets, which a client that reconnects gets back, and the fds just above the
 *   highest it had): a lookup for a process holding thousands of sockets costs a handful of reads;
 * - scan: every fd (shared by concurrent lookups), which indexes all the process's sockets at once.
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

/** The inline tier scans only processes with at most this many open fds (a few us per fd). */
const INLINE_MAX_FDS = 256;
/** fds above the highest known one that a probe reads. */
const PROBE_ABOVE = 4;

/** The lowest `n` numbers from 0 up that are not in `open` (sorted ascending). */
function lowestFree(open: readonly number[], n: number): number[] {
  const out: number[] = [];
  let next = 0;
  for (const fd of open) {
    while (next < fd && out.length < n) out.push(next++);
    if (out.length >= n) break;
    next = fd + 1;
  }
  while (out.length < n) out.push(next++);
  return out;
}

export class FdScanner {
  readonly #ctx: ProcContext;
  readonly #table: ProcessTable;
  readonly index: SocketIndex;
  readonly #scans = new Map<number, InFlight<ScanResult>>();

  constructor(ctx: ProcContext, table: ProcessTable) {
    this.#ctx = ctx;
    this.#table = table;
    this.index = new SocketIndex(ctx.settings.socketIndexSize);
  }

  /** Whether a scan of this pid is running. */
  busy(pid: number): boolean {
    return this.#scans.has(pid);
  }

  /** Whether /proc/PID/fd/FD is still the socket `inode` (one readlink). */
  async verify(pid: number, fd: number, inode: number): Promise<boolean> {
    this.#ctx.counters.fdReads++;
    const link = await this.#ctx.io.readlink(`${this.#ctx.root}/${pid}/fd/${fd}`).catch(() => '');
    return parseSocketLink(link) === inode;
  }

  /** Notes the fd of a process's client socket: its next connection is probed there first. */
  noteClient(pid: number, fd: number): void {
    const e = this.#table.pids.get(pid);
    if (!e) return;
    const fds = (e.clientFds ?? []).filter((f) => f !== fd);
    fds.unshift(fd);
    e.clientFds = fds.slice(0, CLIENT_FDS);
    if (e.maxFd === undefined || fd > e.maxFd) e.maxFd = fd;
  }

  /**
   * Reads the few fds where a new socket of a process already scanned most likely is, indexing every
   * socket it sees; true when `inode` was among them. A process never scanned is not probed.
   */
  async probe(pid: number, inode: number): Promise<boolean> {
    const e = this.#table.pids.get(pid);
    if (e?.maxFd === undefined) return false;
    const ctx = this.#ctx;
    const dir = `${ctx.root}/${pid}/fd`;
    // The fds of its earlier client sockets (a client that reconnects gets its fd back), the lowest
    // ones free at its last scan (the kernel hands out the lowest free number), just above its highest.
    const candidates = new Set([...(e.clientFds ?? []), ...(e.freeFds ?? [])]);
    for (let fd = e.maxFd + 1; fd <= e.maxFd + PROBE_ABOVE; fd++) candidates.add(fd);
    const clientFds = new Set(e.clientFds);
    for (const fd of candidates) {
      // Most of the other candidates are not open: asking costs less than a failed readlink's error.
      if (!clientFds.has(fd) && ctx.io.exists && !ctx.io.exists(`${dir}/${fd}`)) continue;
      ctx.counters.fdReads++;
      let link: string;
      try {
        link = await ctx.io.readlink(`${dir}/${fd}`);
      } catch (err) {
        if (isGone(err) && ctx.io.exists && !ctx.io.exists(dir)) {
          this.#table.forget(pid);
          return false;
        }
        continue;
      }
      if (fd > e.maxFd) e.maxFd = fd;
      // Open now: no longer free.
      if (e.freeFds?.includes(fd)) e.freeFds = e.freeFds.filter((f) => f !== fd);
      const found = parseSocketLink(link);
      if (found === undefined) continue;
      this.index.set(found, pid, fd);
      if (found === inode) return true;
    }
    return false;
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
    const startedAt = ctx.now();
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
    const fds = names.map(Number);
    if (want !== undefined) fds.sort((a, b) => b - a);
    const sockets: number[] = [];
    let complete = true;
    // Synchronous reads gain nothing from batches: one link at a time stops right at the socket.
    const sync = io === syncProcIo;
    const fdConcurrency = ctx.settings.fdConcurrency;
    const step = sync ? 1 : want !== undefined ? Math.min(4, fdConcurrency) : fdConcurrency;
    let wanted = false;
    const note = (fd: number, link: string) => {
      if (link.charCodeAt(0) !== 115 /* s */) return;
      const inode = parseSocketLink(link);
      if (inode === undefined) return;
      sockets.push(inode);
      this.index.set(inode, pid, fd);
      if (inode === want) wanted = true;
    };
    for (let i = 0; i < fds.length; i += step) {
      if ((i > 0 && ctx.now() > deadline) || wanted) {
        complete = false;
        break;
      }
      if (sync) {
        ctx.counters.fdReads++;
        const fd = fds[i] as number;
        note(fd, await io.readlink(`${dir}/${fd}`).catch(() => ''));
        continue;
      }
      const batch = fds.slice(i, i + step);
      ctx.counters.fdReads += batch.length;
      const links = await Promise.all(batch.map((fd) => io.readlink(`${dir}/${fd}`).catch(() => '')));
      links.forEach((l, j) => {
        note(batch[j] as number, l);
      });
    }
    await exe;
    const entry = this.#table.pids.get(pid);
    if (entry) {
      // The listing has every fd open when it was read, whether or not all were read: where the
      // process's next socket will be (see probe).
      const open = fds.sort((a, b) => a - b);
      entry.maxFd = open[open.length - 1] ?? -1;
      entry.freeFds = lowestFree(open, FREE_FDS);
      if (complete) {
        entry.fdCount = names.length;
        entry.scannedAt = startedAt;
      }
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
