import { type Caller, podName } from '../attribution/types.js';

/**
 * Who a token was issued to, and whether a later caller is that holder. Pure: facts in, verdict out.
 *
 * A token belongs to the process that asked for it and to its family on the same host or in the
 * same container, under the same uid:
 *   - the process itself (same pid, and the same start time when both are known: a reused pid is
 *     another process);
 *   - its descendants (a program that gets a token and runs curl with it) and its ancestors;
 *   - processes that share one of the two nearest ancestors with it, other than pid 1 (the shell
 *     pattern `TOKEN=$(curl -X PUT …); curl -H "X-aws-ec2-metadata-token: $TOKEN" …`, where each
 *     curl is its own process under the same script).
 * Anything else is another caller: another uid, another container or pod, another network
 * namespace, or an unrelated process (two services started by pid 1 are not related). That is how a
 * token moves when it is stolen inside the host.
 *
 * A fact unknown on either side (attribution failed or was off) is not held against the caller: only
 * the facts both sides know are compared.
 */

/** What the ledger keeps about the caller a token was issued to (no command line, no secrets). */
export interface TokenHolder {
  pid?: number;
  /** The process's start time (clock ticks after boot, /proc/PID/stat field 22), when known. */
  startTime?: string;
  exe?: string;
  uid?: number;
  /** Container id, when the caller ran in one. */
  container?: string;
  /** Pod, as namespace/name (or its uid), when the caller ran in one. */
  pod?: string;
  netns?: 'host' | 'other';
  /** Ancestor pids, nearest first (a few levels). */
  ancestors?: number[];
}

/** Most ancestors kept per holder. */
export const MAX_ANCESTORS = 8;
/** How many of the nearest ancestors count for "shares an ancestor". */
const SHARED_ANCESTOR_LEVELS = 2;

/** The holder facts of a caller; undefined when nothing is known. */
export function holderOf(caller: Caller | undefined): TokenHolder | undefined {
  if (!caller) return undefined;
  const h: TokenHolder = {};
  if (caller.pid !== undefined) h.pid = caller.pid;
  if (caller.startTime !== undefined) h.startTime = caller.startTime;
  if (caller.exe !== undefined) h.exe = caller.exe;
  if (caller.uid !== undefined) h.uid = caller.uid;
  if (caller.container) h.container = caller.container.id;
  const pod = caller.pod;
  if (pod) {
    const name = podName(pod) ?? pod.uid;
    if (name !== undefined) h.pod = name;
  }
  if (caller.netns !== undefined) h.netns = caller.netns;
  if (caller.parents && caller.parents.length > 0)
    h.ancestors = caller.parents.slice(0, MAX_ANCESTORS).map((p) => p.pid);
  return Object.keys(h).length > 0 ? h : undefined;
}

/** Why a caller is not the holder, or undefined when it is (or cannot be told apart). */
export function otherCallerReason(holder: TokenHolder, caller: TokenHolder): string | undefined {
  if (differs(holder.uid, caller.uid)) return `uid ${caller.uid} used a token issued to uid ${holder.uid}`;
  if (
    holder.container !== caller.container &&
    (holder.container !== undefined || caller.container !== undefined)
  ) {
    // a container is known from the cgroup: absent means the host, when the process was described
    if (holder.pid !== undefined && caller.pid !== undefined)
      return `${where(caller.container)} used a token issued to ${where(holder.container)}`;
  }
  if (differs(holder.pod, caller.pod)) return `pod ${caller.pod} used a token issued to pod ${holder.pod}`;
  if (differs(holder.netns, caller.netns))
    return `a caller in the ${caller.netns} network namespace used a token issued in the ${holder.netns} one`;
  if (holder.pid === undefined || caller.pid === undefined) return undefined;
  if (holder.pid === caller.pid) {
    if (differs(holder.startTime, caller.startTime))
      return `pid ${caller.pid} is another process than the one the token was issued to (the pid was reused)`;
    return undefined;
  }
  if (related(holder, caller)) return undefined;
  return `pid ${caller.pid}${caller.exe ? ` (${caller.exe})` : ''} used a token issued to pid ${holder.pid}${
    holder.exe ? ` (${holder.exe})` : ''
  }, an unrelated process`;
}

function differs<T>(a: T | undefined, b: T | undefined): boolean {
  return a !== undefined && b !== undefined && a !== b;
}

function where(container: string | undefined): string {
  return container === undefined ? 'the host' : `container ${container.slice(0, 12)}`;
}

function related(a: TokenHolder, b: TokenHolder): boolean {
  const pa = a.ancestors ?? [];
  const pb = b.ancestors ?? [];
  if (b.pid !== undefined && pa.includes(b.pid)) return true;
  if (a.pid !== undefined && pb.includes(a.pid)) return true;
  const near = new Set(pa.slice(0, SHARED_ANCESTOR_LEVELS).filter((p) => p > 1));
  return pb.slice(0, SHARED_ANCESTOR_LEVELS).some((p) => near.has(p));
}
