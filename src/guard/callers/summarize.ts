import { type ContainerRef, type PodRef, podName } from '../attribution/types.js';
import type { GuardEvent } from '../events/types.js';

/**
 * PURE aggregation of guard events into one row per process identity (exe, user, and the Kubernetes
 * pod and container, else the container): the
 * answer to "what breaks if we enforce IMDSv2 on this host". No I/O, no clock: the caller passes the
 * events and, if it wants a window, the cut-off.
 */

export interface CallerSummary {
  /** Stable identity key: exe | user | pod:NAMESPACE/NAME/CONTAINER, or the container id. */
  key: string;
  /** Executable path; undefined when attribution did not find the process. */
  exe?: string;
  /** User name, else the uid as text; undefined when unknown. */
  user?: string;
  uid?: number;
  container?: ContainerRef;
  /**
   * The Kubernetes pod (namespace, name, container name, hostNetwork; see attribution.md). Calls of a
   * pod's container are one row whichever replica of its container made them.
   */
  pod?: PodRef;
  /** 'other' when the calls came from another network namespace. */
  netns?: 'host' | 'other';
  /** Tokenless (IMDSv1) requests. */
  v1: number;
  /** Requests that carried a token. */
  v2: number;
  /** Token requests (PUT /latest/api/token). */
  token: number;
  /** Requests the guard could not classify. */
  unknown: number;
  /** Requests the policy denied (refused in enforce, flagged in monitor). */
  denied: number;
  total: number;
  /** ISO 8601 times of the first and last request. */
  firstSeen: string;
  lastSeen: string;
  lastPath: string;
  /** The pid of the most recent request (processes come and go; this is a hint). */
  lastPid?: number;
  /** Distinct pids seen, capped at MAX_PIDS_PER_CALLER. */
  pids: number;
  /** True when the process was not (fully) identified: exe unknown. */
  unattributed: boolean;
}

export interface SummarizeOptions {
  /** Ignore events before this time (epoch milliseconds). */
  sinceMs?: number;
  /** Most identities kept; further ones are folded into one "(other callers)" row. Default 10,000. */
  maxIdentities?: number;
}

const MAX_PIDS_PER_CALLER = 1000;
export const OVERFLOW_KEY = '(other callers)';

interface Acc extends CallerSummary {
  firstMs: number;
  lastMs: number;
  pidSet: Set<number>;
}

/** Streaming form of summarizeCallers: add() events one at a time, then result(). */
export class CallerAggregator {
  readonly #byKey = new Map<string, Acc>();
  readonly #sinceMs: number | undefined;
  readonly #max: number;
  /** Events added that fell inside the window. */
  counted = 0;

  constructor(options: SummarizeOptions = {}) {
    this.#sinceMs = options.sinceMs;
    this.#max = Math.max(1, options.maxIdentities ?? 10_000);
  }

  add(e: GuardEvent): void {
    const ms = Date.parse(e.time);
    if (Number.isNaN(ms)) return;
    if (this.#sinceMs !== undefined && ms < this.#sinceMs) return;
    this.counted++;
    const c = e.caller;
    const exe = c?.exe;
    const user = c?.user ?? (c?.uid !== undefined ? String(c.uid) : undefined);
    let key = identityKey(exe, user, c?.container?.id, c?.pod);
    let acc = this.#byKey.get(key);
    if (!acc && this.#byKey.size >= this.#max) {
      key = OVERFLOW_KEY;
      acc = this.#byKey.get(key);
    }
    if (!acc) {
      acc = {
        key,
        v1: 0,
        v2: 0,
        token: 0,
        unknown: 0,
        denied: 0,
        total: 0,
        firstSeen: e.time,
        lastSeen: e.time,
        lastPath: e.request.path,
        pids: 0,
        unattributed: key === OVERFLOW_KEY ? false : exe === undefined,
        firstMs: ms,
        lastMs: ms,
        pidSet: new Set(),
      };
      if (key !== OVERFLOW_KEY) {
        if (exe !== undefined) acc.exe = exe;
        if (user !== undefined) acc.user = user;
        if (c?.uid !== undefined) acc.uid = c.uid;
        if (c?.container) acc.container = { ...c.container };
        if (c?.pod) acc.pod = { ...c.pod };
      }
      this.#byKey.set(key, acc);
    }
    acc.total++;
    switch (e.request.version) {
      case 'v1':
        acc.v1++;
        break;
      case 'v2':
        acc.v2++;
        break;
      case 'token':
        acc.token++;
        break;
      default:
        acc.unknown++;
    }
    if (e.decision === 'deny') acc.denied++;
    if (ms < acc.firstMs) {
      acc.firstMs = ms;
      acc.firstSeen = e.time;
    }
    if (ms >= acc.lastMs) {
      acc.lastMs = ms;
      acc.lastSeen = e.time;
      acc.lastPath = e.request.path;
      if (c?.pid !== undefined) acc.lastPid = c.pid;
      if (c?.netns !== undefined && key !== OVERFLOW_KEY) acc.netns = c.netns;
    }
    if (c?.pid !== undefined && acc.pidSet.size < MAX_PIDS_PER_CALLER) acc.pidSet.add(c.pid);
  }

  result(): CallerSummary[] {
    const out: CallerSummary[] = [];
    for (const a of this.#byKey.values()) {
      const { firstMs: _f, lastMs: _l, pidSet, ...rest } = a;
      out.push({ ...rest, pids: pidSet.size });
    }
    return out.sort(compareCallers);
  }
}

/** One row per process identity; IMDSv1 callers first (most v1 calls first), then by activity. */
export function summarizeCallers(
  events: Iterable<GuardEvent>,
  options: SummarizeOptions = {},
): CallerSummary[] {
  const agg = new CallerAggregator(options);
  for (const e of events) agg.add(e);
  return agg.result();
}

export function identityKey(
  exe: string | undefined,
  user: string | undefined,
  container: string | undefined,
  pod?: PodRef,
): string {
  return `${exe ?? '?'}|${user ?? '?'}|${podKey(pod) ?? container ?? ''}`;
}

/**
 * A pod's part of the identity: namespace/name/container when the pod is named (so the row outlives
 * a restart of the container, whose id changes), else its UID; undefined for no pod.
 */
function podKey(pod: PodRef | undefined): string | undefined {
  if (pod === undefined) return undefined;
  const name = podName(pod);
  if (name !== undefined) return `pod:${name}/${pod.container ?? ''}`;
  return pod.uid !== undefined ? `pod:${pod.uid}` : undefined;
}

/** A pod for a person: NAMESPACE/NAME (CONTAINER), else its UID; hostNetwork marked. */
export function podLabel(pod: PodRef): string {
  const name = podName(pod);
  const who =
    name !== undefined
      ? `${name}${pod.container !== undefined ? ` (${pod.container})` : ''}`
      : `pod ${pod.uid ?? '?'}`;
  return pod.hostNetwork ? `${who} [hostNetwork]` : who;
}

function compareCallers(a: CallerSummary, b: CallerSummary): number {
  const av1 = a.v1 > 0 ? 1 : 0;
  const bv1 = b.v1 > 0 ? 1 : 0;
  return (
    bv1 - av1 ||
    b.v1 - a.v1 ||
    b.total - a.total ||
    (b.lastSeen < a.lastSeen ? -1 : b.lastSeen > a.lastSeen ? 1 : 0) ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );
}

/** The IMDSv1 callers: what stops working once IMDSv2 is required. */
export function v1Callers(summaries: readonly CallerSummary[]): CallerSummary[] {
  return summaries.filter((s) => s.v1 > 0);
}
