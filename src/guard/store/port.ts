import type { ImdsVersion } from '../../imds/version.js';
import type { DecisionKind, GuardEvent } from '../events/types.js';

/**
 * The event store: every GuardEvent, queryable by time, decision, exe, user, path and version.
 * One interface, two implementations (SQLite for real use, memory for tests), one contract suite
 * (test/integration/store-contract.test.ts).
 */

export interface EventFilter {
  /** Events at or after this time (milliseconds since the epoch). */
  sinceMs?: number;
  /** Events before this time (milliseconds since the epoch). */
  untilMs?: number;
  decision?: DecisionKind;
  /** The caller's executable, exactly. */
  exe?: string;
  /** The caller's user name, exactly. */
  user?: string;
  /** Request paths starting with this. */
  pathPrefix?: string;
  version?: ImdsVersion;
  /** Most events returned (default 100). */
  limit?: number;
  /** newest first (default) or oldest first. */
  order?: 'desc' | 'asc';
  /** Keyset paging: only events after this one in the query's order. */
  after?: { timeMs: number; id: string };
}

/** Most events one query returns. */
export const MAX_QUERY_LIMIT = 100_000;
export const DEFAULT_QUERY_LIMIT = 100;

export interface EventStore {
  insert(events: readonly GuardEvent[]): Promise<void>;
  /** Matching events, newest first unless order is 'asc'; ties broken by id. */
  query(filter: EventFilter): Promise<GuardEvent[]>;
  /** Applies retention now; returns how many events were deleted. */
  prune(nowMs: number): Promise<number>;
  close(): Promise<void>;
}

export interface RetentionOptions {
  /** Oldest event kept, milliseconds. */
  maxAgeMs: number;
  /** Most bytes of database pages in use. */
  maxBytes: number;
}

export const DEFAULT_RETENTION: RetentionOptions = { maxAgeMs: 30 * 86_400_000, maxBytes: 256 * 1024 * 1024 };

export function limitOf(f: EventFilter): number {
  const n = f.limit ?? DEFAULT_QUERY_LIMIT;
  return Math.max(0, Math.min(MAX_QUERY_LIMIT, Math.floor(n)));
}

/** The same predicate in memory, for the memory store (and to keep both semantics side by side). */
export function matches(e: GuardEvent, f: EventFilter): boolean {
  const t = Date.parse(e.time);
  if (f.sinceMs !== undefined && !(t >= f.sinceMs)) return false;
  if (f.untilMs !== undefined && !(t < f.untilMs)) return false;
  if (f.decision !== undefined && e.decision !== f.decision) return false;
  if (f.exe !== undefined && e.caller?.exe !== f.exe) return false;
  if (f.user !== undefined && e.caller?.user !== f.user) return false;
  if (f.pathPrefix !== undefined && !e.request.path.startsWith(f.pathPrefix)) return false;
  if (f.version !== undefined && e.request.version !== f.version) return false;
  if (f.after !== undefined) {
    const a = f.after;
    const later = t > a.timeMs || (t === a.timeMs && e.id > a.id);
    const earlier = t < a.timeMs || (t === a.timeMs && e.id < a.id);
    if ((f.order ?? 'desc') === 'asc' ? !later : !earlier) return false;
  }
  return true;
}

export function compare(a: GuardEvent, b: GuardEvent): number {
  const d = Date.parse(a.time) - Date.parse(b.time);
  if (d !== 0) return d;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
