import { parseCgroup } from './cgroup-identity.js';
import type { ProcContext } from './context.js';
import { Lru } from './lru.js';
import type { PodNamer } from './pods/pod-namer.js';
import { describeFsError, isGone } from './proc-io.js';
import { parseCmdline, parseExeLink, parseNsLink, parseStat, parseStatus } from './proc-parse.js';
import { JUST_READ_MS, type ProcessTable } from './process-table.js';
import type { Caller, ProcessRef } from './types.js';
import type { UserNames } from './user-names.js';

/**
 * pid -> Caller: the executable, a bounded and redacted command line, uid and user, a few
 * ancestors, the container (from the cgroup) and the network namespace. A process described a
 * moment ago is not read again while its exe link stays the same.
 */

interface ParentInfo {
  exe?: string;
  ppid?: number;
}

/** A process's description, reused while its exe link stays the same (see describe). */
interface Described {
  exeLink: string;
  caller: Caller;
}

/**
 * A copy of a Caller whose arrays and objects are its own: callers are cached and handed out, and
 * their receivers may change them. Cheaper than structuredClone, which serializes.
 */
export function cloneCaller(c: Caller): Caller {
  const out: Caller = { ...c };
  if (c.cmdline) out.cmdline = [...c.cmdline];
  if (c.parents) out.parents = c.parents.map((p) => ({ ...p }));
  if (c.container) out.container = { ...c.container };
  if (c.pod) out.pod = { ...c.pod };
  return out;
}

export class ProcessDescriber {
  readonly #ctx: ProcContext;
  readonly #table: ProcessTable;
  readonly #users: UserNames;
  readonly #pods: PodNamer;
  /** Descriptions of recent callers, by pid. */
  readonly #described: Lru<number, Described>;
  readonly #parents: Lru<number, ParentInfo>;

  constructor(ctx: ProcContext, table: ProcessTable, users: UserNames, pods: PodNamer) {
    this.#ctx = ctx;
    this.#table = table;
    this.#users = users;
    this.#pods = pods;
    const s = ctx.settings;
    this.#described = new Lru(s.describeCacheSize, s.describeCacheTtlMs, ctx.now);
    this.#parents = new Lru(s.parentCacheSize, s.parentCacheTtlMs, ctx.now);
    table.onForget((pid) => this.#described.delete(pid));
  }

  async describe(pid: number, socketUid: number | undefined): Promise<Caller> {
    const ctx = this.#ctx;
    const io = ctx.io;
    const s = ctx.settings;
    const base = `${ctx.root}/${pid}`;
    // The same process on another connection (an agent that connects per request): its description
    // stands while its exe link is the same (an exec would change it) and the socket's owner is the
    // uid it was described with. One readlink instead of six reads.
    const known = this.#described.get(pid);
    let linkNow: string | undefined;
    if (known) {
      linkNow = await io.readlink(`${base}/exe`).catch(() => undefined);
      if (linkNow === known.exeLink && (socketUid === undefined || socketUid === known.caller.uid)) {
        ctx.counters.describeHits++;
        return cloneCaller(known.caller);
      }
      this.#described.delete(pid);
    }
    // What this lookup read a moment ago (the fd scan's exe link, the new-pid probe's status) is
    // not read again: a process that is still starting makes every /proc read slow. The link just
    // read above wins over an earlier one: after an exec, the earlier one names the old program.
    const seen = this.#table.exeSeen.get(pid);
    const freshExe = linkNow ?? (seen && ctx.now() - seen.at <= JUST_READ_MS ? seen.link : undefined);
    const freshStatus = this.#table.statusJustRead.get(pid);
    this.#table.statusJustRead.delete(pid);
    const [exeR, cmdR, statusR, cgroupR, nsR, selfNs, statR] = await Promise.allSettled([
      freshExe !== undefined ? Promise.resolve(freshExe) : io.readlink(`${base}/exe`),
      io.readOnce(`${base}/cmdline`, s.maxCmdlineBytes),
      freshStatus !== undefined ? Promise.resolve(freshStatus) : io.readOnce(`${base}/status`, 16_384),
      io.readOnce(`${base}/cgroup`, 16_384),
      io.readlink(`${base}/ns/net`),
      this.#table.selfNs(),
      io.readOnce(`${base}/stat`, 4096),
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
        maxArgs: s.maxCmdlineArgs,
        maxArgLength: s.maxCmdlineArgLength,
      });
    }
    if (statR.status === 'fulfilled') {
      const st = parseStat(statR.value.toString('latin1'));
      if (st) caller.startTime = st.startTime;
    }
    let ppid: number | undefined;
    if (statusR.status === 'fulfilled') {
      const st = parseStatus(statusR.value.toString('latin1'));
      if (st.uids) caller.uid = st.uids[1];
      ppid = st.ppid;
    } else {
      errors.push(`${describeFsError(statusR.reason)} reading ${base}/status`);
    }
    if (caller.uid === undefined && socketUid !== undefined) caller.uid = socketUid;
    if (caller.uid !== undefined) {
      const user = await this.#users.name(caller.uid);
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
    if (caller.container?.podUid !== undefined) {
      const pod = await this.#pods.fromContainer(caller.container, caller.netns === 'host', 'cgroup');
      if (pod) caller.pod = pod;
    }
    if (ppid !== undefined && ppid > 0 && s.maxParents > 0) caller.parents = await this.#ancestors(ppid);
    if (caller.exe !== undefined) caller.resolved = 'full';
    if (errors.length > 0) caller.error = errors.join('; ');
    else if (caller.resolved === 'full' && exeR.status === 'fulfilled') {
      this.#described.set(pid, { exeLink: exeR.value, caller: cloneCaller(caller) });
    }
    return caller;
  }

  async #ancestors(first: number): Promise<ProcessRef[]> {
    const ctx = this.#ctx;
    const out: ProcessRef[] = [];
    let pid: number | undefined = first;
    while (pid !== undefined && pid > 0 && out.length < ctx.settings.maxParents) {
      let info = this.#parents.get(pid);
      if (!info) {
        const base = `${ctx.root}/${pid}`;
        const [exeR, statR] = await Promise.allSettled([
          ctx.io.readlink(`${base}/exe`),
          ctx.io.readOnce(`${base}/stat`, 4096),
        ]);
        info = {};
        if (exeR.status === 'fulfilled') info.exe = parseExeLink(exeR.value).exe;
        if (statR.status === 'fulfilled') {
          const st = parseStat(statR.value.toString('latin1'));
          if (st) info.ppid = st.ppid;
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

  clear(): void {
    this.#parents.clear();
  }
}
