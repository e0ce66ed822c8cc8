import { parentPort, workerData } from 'node:worker_threads';
import type { ProcResolverOptions } from './options.js';
import { createProcResolver } from './resolver.js';
import type { ConnectionInfo } from './types.js';

/**
 * The resolver on its own thread (see threaded.ts): a lookup makes about ten /proc calls, and on a
 * busy guard each async one would wait behind the HTTP work on the main event loop. Here they run as
 * plain system calls on a thread that does nothing else.
 */

interface Request {
  id: number;
  conn: ConnectionInfo;
}

// Plain system calls: blocking this thread blocks nothing else, and each call is several times
// cheaper than a thread-pool round trip.
const resolver = createProcResolver({ io: 'sync', ...((workerData ?? {}) as ProcResolverOptions) });
parentPort?.on('message', (msg: Request | { statsId: number } | 'close') => {
  if (msg === 'close') {
    void resolver.close().then(() => process.exit(0));
    return;
  }
  if ('statsId' in msg) {
    parentPort?.postMessage({ id: msg.statsId, stats: resolver.stats() });
    return;
  }
  void resolver.resolveOwned(msg.conn).then((r) => parentPort?.postMessage({ id: msg.id, ...r }));
});
