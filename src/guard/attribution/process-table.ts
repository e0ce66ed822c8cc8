import type { ProcContext } from './context.js';
import { Lru } from './lru.js';
import { asyncProcIo } from './proc-io.js';
import { parseNsLink } from './proc-parse.js';

/**
 * The processes the resolver knows: pid -> when it appeared, its uid, fd count and network
 * namespace, learned from listings of /proc (the background refresh, a lookup that needs it) and
 * from probes of single processes. Also what a lookup read a moment ago (a status, an exe link), so
 * that the next step of the same lookup does not read it again.
 */

export interface PidEntry {
  /** When the pid first appeared in a listing (now() ms); -Infinity for the first listing. */
  firstSeen: number;
  probed: boolean;
  /** Owner of /proc/PID (the probe), the effective uid. */
  uid?: number;
  /** Real, effective, saved and filesystem uid (from /proc/PID/status, when it was read). */
  uids?: [number, number, number, number];
  /** Start time, milliseconds after boot (from /proc/PID/stat, when it was read). */
  startedMs?: number;
  fdCount?: number;
  /** FDSize from /proc/PID/status: an upper bound of fdCount, known before any fd scan. */
  fdLimit?: number;
  netns?: string;
  /** When the last complete scan of its fds started (now() ms): every socket it held then is indexed. */
  scannedAt?: number;
  /** The highest fd number seen open (by a scan or a probe): a new fd is often the next one. */
  maxFd?: number;
  /** The lowest fd numbers that were free at the last complete scan: the kernel gives a new socket
   * the lowest free number. At most FREE_FDS. */
  freeFds?: number[];
  /** fds that held the client sockets of earlier lookups, most recent first (a client that closes
   * its connection and opens the next one gets the same fd back). At most CLIENT_FDS. */
  clientFds?: number[];
}

/** fds of earlier client sockets remembered per process. */
export const CLIENT_FDS = 8;
/** Lowest free fd numbers remembered per process. */
export const FREE_FDS = 8;

interface InFlight<T> {
  startedAt: number;
  promise: Promise<T>;
}

/** How long a /proc read stays fresh enough for the description to reuse it, milliseconds. */
export const JUST_READ_MS = 50;

export class ProcessTable {
  readonly #ctx: ProcContext;
  readonly pids = new Map<number, PidEntry>();
  /** exe links read during fd scans, by pid (a short-lived client may exit before it is described). */
  readonly exeSeen: Lru<number, { link: string; at: number }>;
  /** /proc/PID/status as the new-pid probe just read it, for the description to reuse (JUST_READ_MS). */
  readonly statusJustRead: Lru<number, Buffer>;
  readonly #onForget: Array<(pid: number) => void> = [];
  #listing: InFlight<number[]> | undefined;
  #listedOnce = false;
  #selfNetns: Promise<string | undefined> | undefined;

  constructor(ctx: ProcContext) {
    this.#ctx = ctx;
    this.exeSeen = new Lru(4096, 10_000, ctx.now);
    this.statusJustRead = new Lru(64, JUST_READ_MS, ctx.now);
  }

  /** Runs fn whenever a pid is forgotten (it exited): other parts drop what they know of it. */
  onForget(fn: (pid: number) => void): void {
    this.#onForget.push(fn);
  }

  /** Adds a pid learned elsewhere (another tier found it), if there is room. */
  track(pid: number): void {
    if (this.pids.has(pid) || this.pids.size >= this.#ctx.settings.maxTrackedPids) return;
    this.pids.set(pid, { firstSeen: this.#ctx.now(), probed: false });
  }

  forget(pid: number): void {
    for (const fn of this.#onForget) fn(pid);
    this.pids.delete(pid);
  }

  /** The guard's own network namespace (inode), read once. */
  selfNs(): Promise<string | undefined> {
    this.#selfNetns ??= this.#ctx.io
      .readlink(`${this.#ctx.root}/self/ns/net`)
      .then(parseNsLink, () => undefined);
    return this.#selfNetns;
  }

  /** Lists /proc (shared by lookups that started before the listing did) and updates the pid table. */
  list(since: number): Promise<number[]> {
    const cur = this.#listing;
    if (cur && cur.startedAt >= since) return cur.promise;
    const ctx = this.#ctx;
    const startedAt = ctx.now();
    // The inline tier lists /proc in the background only, off its thread (a listing is hundreds of us).
    const promise = (ctx.inline ? asyncProcIo : ctx.io).readdir(ctx.root).then((names) => {
      const pids: number[] = [];
      for (const n of names) {
        const c = n.charCodeAt(0);
        if (c < 48 || c > 57) continue;
        const pid = Number(n);
        if (Number.isInteger(pid)) pids.push(pid);
      }
      const seen = new Set(pids);
      // Gone: not in the listing, and known before it began (a lookup may have added a process that
      // started after the directory was read).
      for (const [pid, e] of this.pids) if (!seen.has(pid) && e.firstSeen < startedAt) this.forget(pid);
      const firstSeen = this.#listedOnce ? startedAt : Number.NEGATIVE_INFINITY;
      for (const pid of pids) {
        if (this.pids.size >= ctx.settings.maxTrackedPids) break;
        if (!this.pids.has(pid)) this.pids.set(pid, { firstSeen, probed: false });
      }
      this.#listedOnce = true;
      return pids;
    });
    this.#listing = { startedAt, promise };
    return promise;
  }

  /** Reads uid, fd count and network namespace of pids not probed yet, until the deadline. */
  async probeUnprobed(
    deadline: number,
    want: (e: PidEntry) => boolean = () => true,
    parallel = 4,
  ): Promise<void> {
    const now = this.#ctx.now;
    const todo: Array<[number, PidEntry]> = [];
    for (const [pid, e] of this.pids) if (!e.probed && want(e)) todo.push([pid, e]);
    // Newest first: they matter most for lookups.
    todo.sort((a, b) => b[1].firstSeen - a[1].firstSeen || b[0] - a[0]);
    let i = 0;
    const worker = async () => {
      let slice = now();
      while (i < todo.length && now() <= deadline) {
        const [pid, e] = todo[i++] as [number, PidEntry];
        await this.#probe(pid, e);
        // With synchronous I/O nothing else runs meanwhile: let waiting lookups in every millisecond.
        if (now() - slice >= 1) {
          await new Promise((r) => setImmediate(r));
          slice = now();
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  async #probe(pid: number, e: PidEntry): Promise<void> {
    const io = this.#ctx.io;
    const base = `${this.#ctx.root}/${pid}`;
    const [st, fd, ns] = await Promise.allSettled([
      io.stat(base),
      io.stat(`${base}/fd`),
      io.readlink(`${base}/ns/net`),
    ]);
    if (st.status === 'fulfilled') e.uid = st.value.uid;
    // Linux 6.2+ reports the number of open fds as the size of /proc/PID/fd; older kernels say 0.
    if (fd.status === 'fulfilled' && fd.value.size > 0) e.fdCount = fd.value.size;
    if (ns.status === 'fulfilled') e.netns = parseNsLink(ns.value);
    e.probed = true;
  }

  clear(): void {
    this.pids.clear();
  }
}
