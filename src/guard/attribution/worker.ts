import { parentPort, workerData } from 'node:worker_threads';
import { createProcResolver, type ProcResolverOptions } from './index.js';
import type { ConnectionInfo } from './types.js';

/**
 * The resolver on its own thread (see threaded.ts): a lookup makes about ten async /proc round trips,
 * and on a busy guard each of them would wait behind the HTTP work on the main event loop. Here they
 * wait on an event loop that does nothing else.
 */

interface Request {
  id: number;
  conn: ConnectionInfo;
}

const resolver = createProcResolver((workerData ?? {}) as ProcResolverOptions);
parentPort?.on('message', (msg: Request | 'close') => {
  if (msg === 'close') {
    void resolver.close().then(() => process.exit(0));
    return;
  }
  void resolver.resolve(msg.conn).then((caller) => parentPort?.postMessage({ id: msg.id, caller }));
});
