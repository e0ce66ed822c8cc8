/**
 * Process attribution: who is on the other end of a connection to the guard. The guard sees only
 * ProcessResolver (types.ts); createProcResolver (resolver.ts) is the /proc implementation, and
 * createThreadedProcResolver (threaded.ts) runs it on a worker thread with an inline tier.
 */
export type { ProcResolverOptions } from './options.js';
export { createProcResolver, type ProcResolver } from './resolver.js';
export type { ResolverStats } from './stats.js';
export type { Caller, ConnectionInfo, ProcessRef, ProcessResolver } from './types.js';
export { noAttribution } from './types.js';
