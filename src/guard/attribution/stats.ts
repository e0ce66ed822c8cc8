/**
 * The resolver's counters (metrics, the admin endpoint, the benchmark). Every part of the resolver
 * counts into one Counters object; ResolverStats is what stats() hands out.
 */

export interface ResolverStats {
  lookups: number;
  /** Found in the resolved-caller cache (same socket seen before). */
  cacheHits: number;
  /** Found through the inode -> pid index (confirmed by one readlink). */
  indexHits: number;
  /** Found by reading the few fds where a known process's new socket most likely is. */
  probeHits: number;
  /** Found among the recent callers. */
  recentHits: number;
  /** Found among the newest pid numbers (a process that started just now). */
  newPidHits: number;
  /** Found among recently appeared processes. */
  freshHits: number;
  /** Descriptions reused for another connection of the same process. */
  describeHits: number;
  /** Found in the ordered scan of the remaining processes. */
  scanHits: number;
  /** No socket row, or no owning process found. */
  unresolved: number;
  budgetExceeded: number;
  tableReads: number;
  pidScans: number;
  fdReads: number;
  otherNetnsRows: number;
  /** sock_diag lookups made, and connections whose socket they found. */
  diagLookups: number;
  diagHits: number;
  diagErrors: number;
  /** How client sockets are found: 'sock_diag' (then /proc for what it cannot see) or 'proc'. */
  socketSource: 'sock_diag' | 'proc';
  /** Why sock_diag is not in use (addon not built, kernel refused it). */
  sockDiagUnavailable?: string;
  /** The inline tier's own counters (threaded.ts), when it runs. */
  inline?: ResolverStats;
  trackedPids: number;
  indexedSockets: number;
}

/** The counters the parts increment (the rest of ResolverStats is read from them at stats() time). */
export type Counters = Omit<
  ResolverStats,
  | 'trackedPids'
  | 'indexedSockets'
  | 'socketSource'
  | 'sockDiagUnavailable'
  | 'inline'
  | 'diagLookups'
  | 'diagHits'
  | 'diagErrors'
>;

export function newCounters(): Counters {
  return {
    lookups: 0,
    cacheHits: 0,
    indexHits: 0,
    probeHits: 0,
    recentHits: 0,
    newPidHits: 0,
    freshHits: 0,
    describeHits: 0,
    scanHits: 0,
    unresolved: 0,
    budgetExceeded: 0,
    tableReads: 0,
    pidScans: 0,
    fdReads: 0,
    otherNetnsRows: 0,
  };
}
