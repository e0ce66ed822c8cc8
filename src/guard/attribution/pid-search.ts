import type { ProcContext } from './context.js';
import type { FdScanner } from './fd-scan.js';
import { Lru } from './lru.js';
import type { RereadFile } from './proc-io.js';
import { parseStat, parseStatus } from './proc-parse.js';
import type { ProcessTable } from './process-table.js';

/**
 * inode -> pid without scanning every /proc/PID/fd: the index, then the processes that called
 * recently, then the newest pid numbers, then processes that appeared recently (newest first), then
 * the rest ordered by network namespace, uid match and fd count, until the lookup's deadline.
 * docs/attribution.md ("inode -> pid") explains each step.
 */

/** Newest pid numbers tried, and the run of older or unreadable ones that ends the search. */
export const NEW_PID_PROBES = 64;
export const NEW_PID_GAP = 8;
/** Clock ticks a second in /proc/PID/stat (USER_HZ, 100 on every Linux architecture in use). */
const USER_HZ = 100;
/** Start times are rounded to ticks, and uptime to 10 ms: a process is "newer" only past this, ms. */
const START_SLACK_MS = 30;
/** Recent callers probed (a few reads each) before any is scanned whole. */
const RECENT_PROBES = 16;
/** Recent callers and newest processes scanned while the socket table is read. */
const PREFETCH_RECENT = 1;
const PREFETCH_FRESH = 2;

export interface PidFound {
  pid?: number;
  /** Why no pid was found, for a person (empty when one was). */
  error: string;
}

export class PidSearch {
  readonly #ctx: ProcContext;
  readonly #table: ProcessTable;
  readonly #fds: FdScanner;
  /** Pids that called recently, most recent first. */
  readonly #recent: Lru<number, true>;
  /** /proc/sys/kernel/ns_last_pid kept open (synchronous I/O only; closed by close()). */
  #lastPidFile: RereadFile | undefined;
  /** pid_max, read on first use (see #scanNewPids). */
  #pidMaxValue: number | undefined;
  /** now() + this = milliseconds since boot (NaN when /proc/uptime cannot be read). */
  #bootOffsetMs: number | undefined;
  /** Pid numbers that are threads of another process (skipped by the newest-pid walk). */
  readonly #threads: Lru<number, true>;

  constructor(ctx: ProcContext, table: ProcessTable, fds: FdScanner) {
    this.#ctx = ctx;
    this.#table = table;
    this.#fds = fds;
    this.#recent = new Lru(ctx.settings.recentCallers, 0, ctx.now);
    this.#threads = new Lru(4096, 60_000, ctx.now);
    table.onForget((pid) => this.#recent.delete(pid));
  }

  /** Notes a pid that called: its next connections are looked for there first. */
  called(pid: number): void {
    this.#recent.set(pid, true);
  }

  close(): void {
    this.#recent.clear();
    this.#lastPidFile?.close();
    this.#lastPidFile = undefined;
  }

  async find(
    inode: number,
    uid: number | undefined,
    netns: string | undefined,
    since: number,
    deadline: number,
  ): Promise<PidFound> {
    const ctx = this.#ctx;
    const stats = ctx.counters;
    const tried = new Set<number>();

    // 0. The index: a socket seen in an earlier scan or probe of its process, confirmed by reading
    // the one fd it was seen under (the fd may since have been closed, or reused).
    const indexed = await this.#fromIndex(inode);
    if (indexed !== undefined) {
      stats.indexHits++;
      return this.#found(indexed, inode);
    }

    // 1. Recent callers: long-lived agents open a new connection per request. A few reads each,
    // where a new socket of theirs most likely is (their whole fd tables are the slow lane's). The
    // first one that may own the socket is probed even when the budget is already spent: a thread
    // paused before the search began (a loaded host) must not cost the likeliest answer.
    let probed = 0;
    for (const pid of this.#recent.keysByRecency().slice(0, RECENT_PROBES)) {
      if (probed > 0 && ctx.now() > deadline) break;
      const uids = this.#table.pids.get(pid)?.uids;
      if (uid !== undefined && uids !== undefined && !uids.includes(uid)) continue;
      probed++;
      if (await this.#fds.probe(pid, inode)) {
        stats.probeHits++;
        return this.#found(pid, inode);
      }
    }

    // 2. A process started just now (curl from a script): the newest pid numbers, from the last one
    // the kernel handed out downwards. Cheaper than listing /proc again.
    const above = await this.#scanNewPids(inode, uid, tried, since, deadline);
    if (above !== undefined) {
      stats[above.late ? 'indexHits' : 'newPidHits']++;
      return this.#found(above.pid, inode);
    }

    // The inline tier stops here: scanning whole processes and listing /proc is the worker's job.
    if (ctx.inline) return { error: 'not among known and new processes (inline lookup)' };

    // 3. and 4. Whole processes: what they hold lands in the index, and a process scanned after the
    // socket existed is not scanned again for it (a burst of connections costs one scan a process).
    return this.#wholeScans(inode, uid, netns, tried, since, deadline);
  }

  /** The pid the index names for a socket, confirmed by one readlink; undefined otherwise. */
  async #fromIndex(inode: number): Promise<number | undefined> {
    const hit = this.#fds.index.get(inode);
    if (hit === undefined) return undefined;
    if (await this.#fds.verify(hit.pid, hit.fd, inode)) return hit.pid;
    this.#fds.index.delete(inode);
    return undefined;
  }

  async #wholeScans(
    inode: number,
    uid: number | undefined,
    netns: string | undefined,
    tried: Set<number>,
    since: number,
    deadline: number,
  ): Promise<PidFound> {
    const ctx = this.#ctx;
    const table = this.#table;
    const stats = ctx.counters;
    const problems = { denied: 0, gone: 0, incomplete: 0 };
    let lateIndexHit = false;
    /** Counts a hit of a stage, or of the index when a concurrent scan found the socket first. */
    const hitIn = (stage: 'recentHits' | 'freshHits' | 'scanHits') => {
      stats[lateIndexHit ? 'indexHits' : stage]++;
    };
    const scanList = async (list: readonly number[], parallel: number): Promise<number | undefined> => {
      let i = 0;
      let found: number | undefined;
      const worker = async () => {
        while (found === undefined && i < list.length) {
          if (ctx.now() > deadline) return;
          // Another lookup's scan may have indexed this socket meanwhile (a client that opened
          // many connections at once): no need to scan anything more.
          const late = this.#fds.index.get(inode);
          if (late !== undefined) {
            found ??= late.pid;
            lateIndexHit = true;
            return;
          }
          const pid = list[i++] as number;
          if (tried.has(pid)) continue;
          tried.add(pid);
          // Scanned whole since this lookup began: the socket was not there (or it would be indexed).
          const scannedAt = table.pids.get(pid)?.scannedAt;
          if (scannedAt !== undefined && scannedAt >= since) continue;
          const r = await this.#fds.scan(pid, since, deadline, inode);
          if (r.sockets.includes(inode)) found ??= pid;
          else if (r.error === 'denied') problems.denied++;
          else if (r.error === 'gone') problems.gone++;
          else if (!r.complete) problems.incomplete++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(parallel, list.length) }, worker));
      return found;
    };

    // Recent callers, whole: a probe missed (the new socket took an fd freed elsewhere).
    const recent = await scanList(this.#recent.keysByRecency(), 2);
    if (recent !== undefined) {
      hitIn('recentHits');
      return this.#found(recent, inode);
    }

    // 3. Processes that appeared recently, newest first (curl, a cron job, a fresh container).
    const listed = await table.list(since);
    const now = ctx.now();
    const fresh: number[] = [];
    const rest: number[] = [];
    for (const pid of listed) {
      const e = table.pids.get(pid);
      if (e && now - e.firstSeen <= ctx.settings.freshWindowMs) fresh.push(pid);
      else rest.push(pid);
    }
    const inNs = (pid: number) => (netns !== undefined && table.pids.get(pid)?.netns === netns ? 0 : 1);
    fresh.sort(
      (a, b) =>
        inNs(a) - inNs(b) ||
        (table.pids.get(b)?.firstSeen ?? 0) - (table.pids.get(a)?.firstSeen ?? 0) ||
        b - a,
    );
    const freshHit = await scanList(fresh, ctx.settings.scanConcurrency);
    if (freshHit !== undefined) {
      hitIn('freshHits');
      return this.#found(freshHit, inode);
    }

    // 4. Everyone else: same network namespace, then same uid, then fewest fds first.
    const uidRank = (pid: number) => {
      const u = table.pids.get(pid)?.uid;
      return u === undefined ? 1 : u === uid ? 0 : 2;
    };
    const fds = (pid: number) => table.pids.get(pid)?.fdCount ?? 64;
    rest.sort((a, b) => inNs(a) - inNs(b) || uidRank(a) - uidRank(b) || fds(a) - fds(b) || b - a);
    const scanHit = await scanList(rest, ctx.settings.scanConcurrency);
    if (scanHit !== undefined) {
      hitIn('scanHits');
      return this.#found(scanHit, inode);
    }

    const reasons: string[] = [];
    const overBudget = ctx.now() > deadline;
    if (overBudget) {
      stats.budgetExceeded++;
      reasons.push(
        `owner not found within the ${ctx.settings.budgetMs} ms budget (${tried.size} of ${listed.length} processes inspected)`,
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

  /** The owner was found: its socket's fd is where its next connection is probed first. */
  #found(pid: number, inode: number): PidFound {
    const owner = this.#fds.index.get(inode);
    if (owner?.pid === pid) this.#fds.noteClient(pid, owner.fd);
    return { pid, error: '' };
  }

  /**
   * Looks for the socket's owner among the newest pids: from the last pid the kernel handed out
   * (/proc/sys/kernel/ns_last_pid) downwards, wrapping at pid_max. A process (not a thread) that is
   * new to the resolver, or appeared within the fresh window, and whose uids include the socket's
   * uid, is scanned. Stops at NEW_PID_PROBES numbers, at a run of NEW_PID_GAP numbers that belong
   * to older processes or cannot be read (unused numbers are skipped), or at the deadline; the
   * listing of /proc takes over.
   */
  async #scanNewPids(
    inode: number,
    uid: number | undefined,
    tried: Set<number>,
    since: number,
    deadline: number,
  ): Promise<{ pid: number; late: boolean } | undefined> {
    const ctx = this.#ctx;
    const table = this.#table;
    const last = await this.#lastPid();
    if (last === undefined) return undefined;
    const pidMax = await this.#pidMax();
    let older = 0;
    let pid = last;
    for (let i = 0; i < NEW_PID_PROBES && older < NEW_PID_GAP; i++, pid = pid > 1 ? pid - 1 : pidMax - 1) {
      // The newest pid is always looked at, even past the deadline (a pause of this thread, a
      // collection, may have used the budget up): it is a few reads, and it is usually the caller.
      if (i > 0 && ctx.now() > deadline) return undefined;
      // Another lookup's scan indexed it meanwhile (the new process's other connections).
      const late = i > 0 ? this.#fds.index.get(inode) : undefined;
      if (late !== undefined) return { pid: late.pid, late: true };
      if (tried.has(pid) || this.#threads.get(pid) !== undefined) continue;
      // A process seen appearing long ago marks the older region (later stages cover it). One from
      // the first listing has no known age: it may have started a moment before, so it is looked at.
      let entry = table.pids.get(pid);
      if (
        entry &&
        entry.firstSeen !== Number.NEGATIVE_INFINITY &&
        ctx.now() - entry.firstSeen > ctx.settings.freshWindowMs
      ) {
        older++;
        continue;
      }
      let uids = entry?.uids;
      if (uids === undefined) {
        let status: ReturnType<typeof parseStatus>;
        try {
          const raw = await ctx.io.readOnce(`${ctx.root}/${pid}/status`, 16_384);
          status = parseStatus(raw.toString('latin1'));
          table.statusJustRead.set(pid, raw);
        } catch (err) {
          // A number no process holds now was handed out after the caller's (the walk goes
          // downwards) to a process that has already exited: on a busy host most of the newest
          // numbers are such. It says nothing about age, so it does not end the walk
          // (NEW_PID_PROBES bounds it); a process that cannot be read does.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') older++;
          continue;
        }
        // A thread's number: its process has its own (a busy process's threads do not end the search).
        if (status.tgid !== pid) {
          this.#threads.set(pid, true);
          continue;
        }
        if (!entry && table.pids.size < ctx.settings.maxTrackedPids) {
          entry = { firstSeen: ctx.now(), probed: false };
          table.pids.set(pid, entry);
        }
        if (entry && status.uids) {
          entry.uids = status.uids;
          entry.uid ??= status.uids[1];
        }
        if (entry && status.fdSize !== undefined) entry.fdLimit = status.fdSize;
        uids = status.uids;
      }
      older = 0;
      if (uid !== undefined && uids && !uids.includes(uid)) continue;
      // Scanned whole after the socket existed: it would be indexed.
      if (entry?.scannedAt !== undefined && entry.scannedAt >= since) continue;
      // Started after the socket existed: not its owner (on a busy host the newest numbers are
      // mostly such processes).
      if (await this.#startedAfter(pid, since)) continue;
      tried.add(pid);
      // Inline, a targeted scan: newest fds first, stopping at the socket (not shared with other
      // lookups, since it may stop before their sockets; the process then becomes a recent caller,
      // whose next scan is complete). Elsewhere a complete, shared scan indexes all its sockets.
      const r = ctx.inline
        ? await this.#fds.scanNow(pid, deadline, inode)
        : await this.#fds.scan(pid, since, deadline, inode);
      if (r.sockets.includes(inode)) return { pid, late: false };
    }
    return undefined;
  }

  /**
   * Whether a process started after `since` (a now() time), from /proc/PID/stat's start time (clock
   * ticks after boot, 100 a second) and /proc/uptime; false when either is unknown.
   */
  async #startedAfter(pid: number, since: number): Promise<boolean> {
    const ctx = this.#ctx;
    if (this.#bootOffsetMs === undefined) {
      const uptime = await ctx.io.readOnce(`${ctx.root}/uptime`, 64).then(
        (b) => Number.parseFloat(b.toString('latin1')),
        () => Number.NaN,
      );
      // now() + offset = milliseconds since boot.
      this.#bootOffsetMs = Number.isFinite(uptime) ? uptime * 1000 - ctx.now() : Number.NaN;
    }
    if (Number.isNaN(this.#bootOffsetMs)) return false;
    const entry = this.#table.pids.get(pid);
    let startedMs = entry?.startedMs;
    if (startedMs === undefined) {
      const stat = await ctx.io.readOnce(`${ctx.root}/${pid}/stat`, 4096).then(
        (b) => parseStat(b.toString('latin1')),
        () => undefined,
      );
      if (stat === undefined) return false;
      startedMs = Number(stat.startTime) * (1000 / USER_HZ);
      if (entry) entry.startedMs = startedMs;
    }
    return startedMs > since + this.#bootOffsetMs + START_SLACK_MS;
  }

  /** The last pid handed out in this pid namespace; undefined when the kernel does not say. */
  async #lastPid(): Promise<number | undefined> {
    const ctx = this.#ctx;
    const path = `${ctx.root}/sys/kernel/ns_last_pid`;
    try {
      let text: string;
      if (ctx.io.reread && !ctx.closed()) {
        // Synchronous I/O keeps the file open: one pread per lookup instead of open, read, close.
        this.#lastPidFile ??= ctx.io.reread(path, 32);
        text = this.#lastPidFile.read().toString('latin1');
      } else {
        text = (await ctx.io.readOnce(path, 32)).toString('latin1');
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
      const n = await this.#ctx.io.readOnce(`${this.#ctx.root}/sys/kernel/pid_max`, 32).then(
        (b) => Number(b.toString('latin1')),
        () => Number.NaN,
      );
      this.#pidMaxValue = Number.isInteger(n) && n > 1 ? n : 4_194_304;
    }
    return this.#pidMaxValue;
  }

  /**
   * Scans the likeliest owners of a new socket while its row is searched for in the /proc tables:
   * the most recent caller and the newest processes. The results land in the index.
   */
  async prefetch(since: number, deadline: number): Promise<void> {
    const table = this.#table;
    // The most recent caller: only where its new socket is likely to be (a probe indexes what it
    // reads; a caller with thousands of fds is not read whole for every connection).
    const recent = this.#recent.keysByRecency().slice(0, PREFETCH_RECENT);
    const listing = table.list(since);
    for (const pid of recent) await this.#fds.probe(pid, 0);
    // A process already being scanned is left alone: lookups wait for that scan (see FdScanner.scan).
    const idle = (pid: number) => !this.#fds.busy(pid);
    const listed = await listing;
    const now = this.#ctx.now();
    const window = this.#ctx.settings.freshWindowMs;
    const fresh = listed
      .filter((pid) => now - (table.pids.get(pid)?.firstSeen ?? Number.NEGATIVE_INFINITY) <= window)
      .sort((a, b) => (table.pids.get(b)?.firstSeen ?? 0) - (table.pids.get(a)?.firstSeen ?? 0) || b - a)
      .slice(0, PREFETCH_FRESH);
    await Promise.all(
      fresh
        .filter(idle)
        .map((pid) =>
          table.pids.get(pid)?.maxFd !== undefined
            ? this.#fds.probe(pid, 0)
            : this.#fds.scan(pid, since, deadline),
        ),
    );
  }
}
