import { podName } from '../attribution/types.js';
import type { GuardEvent } from '../events/types.js';

/**
 * PURE: the guard's caller summary. Events are counted per caller (exe, user, container,
 * pod) and IMDS version over one interval; at the interval's end records() turns the counts into one
 * small record each, the counts start again, and the guard ships the records through its CloudWatch
 * Logs sink, where `fleet usage --host-evidence cloudwatch-logs:GROUP` queries them with Logs
 * Insights. docs/events.md ("Caller summary records") documents every field.
 *
 * The records are flat (one level of fields) so that Logs Insights queries them by name, and hold no
 * secret: no header value, no argv, no path (a path can name a role), no token.
 */

/** The instance the guard runs on, read once from the instance identity document. */
export interface InstanceIdentity {
  instanceId: string;
  accountId: string;
  region: string;
}

/** v1: tokenless; v2: with a token or the token PUT itself; none: the interval's heartbeat. */
export const CALLER_RECORD_VERSIONS = ['v1', 'v2', 'none'] as const;
export type CallerRecordVersion = (typeof CALLER_RECORD_VERSIONS)[number];

export interface CallerRecord {
  v: 1;
  kind: 'callers';
  /** ISO 8601: the end of the interval (also the CloudWatch Logs event's timestamp). */
  time: string;
  host: string;
  /** From the instance identity document; absent when it could not be read (not on EC2). */
  instanceId?: string;
  accountId?: string;
  region?: string;
  mode: GuardEvent['mode'];
  version: CallerRecordVersion;
  /**
   * The caller. Always present (Logs Insights groups on them), `-` when unknown: the executable path
   * (`(other callers)` on an overflow record), the user name (else the uid as text), the container id
   * (first 64 characters), the Kubernetes pod as `namespace/name`.
   */
  exe: string;
  user: string;
  container: string;
  pod: string;
  /** Requests of this version from this caller in the interval (0 on the heartbeat). */
  calls: number;
  /** Of those, the ones the policy denied (refused in enforce, flagged in monitor). */
  denied: number;
  /** Epoch milliseconds of the first and last request in the interval (the interval's bounds on the heartbeat). */
  firstSeenMs: number;
  lastSeenMs: number;
  intervalMs: number;
  /** True on the record that folds the callers beyond the per-interval bound. */
  overflow?: true;
}

export const OTHER_CALLERS = '(other callers)';
/** The value of a caller field attribution did not find. */
export const UNKNOWN = '-';
/** Longest exe, user, container or pod copied into a record (characters). */
const MAX_FIELD = 256;

function clip(s: string, max = MAX_FIELD): string {
  return s.length <= max ? s : s.slice(0, max);
}

interface Acc {
  version: 'v1' | 'v2';
  exe: string;
  user: string;
  container: string;
  pod: string;
  calls: number;
  denied: number;
  firstMs: number;
  lastMs: number;
  overflow?: true;
}

function recordVersion(v: GuardEvent['request']['version']): 'v1' | 'v2' | undefined {
  if (v === 'v1') return 'v1';
  if (v === 'v2' || v === 'token') return 'v2';
  return undefined; // unparseable targets are neither
}

/** Counts one interval's events per (caller, version); at most maxCallers keys, the rest folded. */
export class IntervalCallers {
  readonly #max: number;
  #byKey = new Map<string, Acc>();
  #startMs: number;
  #mode: GuardEvent['mode'] | undefined;

  constructor(startMs: number, maxCallers: number) {
    this.#startMs = startMs;
    this.#max = Math.max(1, maxCallers);
  }

  /** Callers counted so far in this interval (for tests and metrics). */
  get size(): number {
    return this.#byKey.size;
  }

  add(e: GuardEvent): void {
    const version = recordVersion(e.request.version);
    if (version === undefined) return;
    const ms = Date.parse(e.time);
    if (Number.isNaN(ms)) return;
    this.#mode = e.mode;
    const c = e.caller;
    const exe = c?.exe ? clip(c.exe) : UNKNOWN;
    const user = clip(c?.user || (c?.uid !== undefined ? String(c.uid) : UNKNOWN), 64);
    const container = c?.container?.id ? clip(c.container.id, 64) : UNKNOWN;
    const pod = clip(podName(c?.pod) ?? UNKNOWN);
    const key = `${version}\n${exe}\n${user}\n${container}\n${pod}`;
    let acc = this.#byKey.get(key);
    if (!acc && this.#byKey.size >= this.#max) {
      const other = `${version}\n${OTHER_CALLERS}`;
      acc = this.#byKey.get(other);
      if (!acc) {
        acc = {
          version,
          exe: OTHER_CALLERS,
          user: UNKNOWN,
          container: UNKNOWN,
          pod: UNKNOWN,
          calls: 0,
          denied: 0,
          firstMs: ms,
          lastMs: ms,
          overflow: true,
        };
        this.#byKey.set(other, acc);
      }
    }
    if (!acc) {
      acc = { version, exe, user, container, pod, calls: 0, denied: 0, firstMs: ms, lastMs: ms };
      this.#byKey.set(key, acc);
    }
    acc.calls++;
    if (e.decision === 'deny') acc.denied++;
    if (ms < acc.firstMs) acc.firstMs = ms;
    if (ms > acc.lastMs) acc.lastMs = ms;
  }

  /**
   * Ends the interval at endMs: one record per (caller, version), v1 first, or one heartbeat record
   * when nothing called (so the fleet side can tell "the guard ships and saw nothing" from "no guard").
   * The counts start again from endMs.
   */
  records(
    endMs: number,
    host: string,
    identity: InstanceIdentity | undefined,
    mode: GuardEvent['mode'],
  ): CallerRecord[] {
    const intervalMs = Math.max(0, endMs - this.#startMs);
    const base = {
      v: 1 as const,
      kind: 'callers' as const,
      time: new Date(endMs).toISOString(),
      host,
      ...(identity ?? {}),
      mode: this.#mode ?? mode,
    };
    const out: CallerRecord[] = [];
    for (const a of this.#byKey.values()) {
      const r: CallerRecord = {
        ...base,
        version: a.version,
        exe: a.exe,
        user: a.user,
        container: a.container,
        pod: a.pod,
        calls: a.calls,
        denied: a.denied,
        firstSeenMs: a.firstMs,
        lastSeenMs: a.lastMs,
        intervalMs,
      };
      if (a.overflow) r.overflow = true;
      out.push(r);
    }
    if (out.length === 0) {
      out.push({
        ...base,
        version: 'none',
        exe: UNKNOWN,
        user: UNKNOWN,
        container: UNKNOWN,
        pod: UNKNOWN,
        calls: 0,
        denied: 0,
        firstSeenMs: this.#startMs,
        lastSeenMs: endMs,
        intervalMs,
      });
    }
    out.sort((a, b) => (a.version === b.version ? b.calls - a.calls : a.version < b.version ? -1 : 1));
    this.#byKey = new Map();
    this.#startMs = endMs;
    this.#mode = undefined;
    return out;
  }
}
