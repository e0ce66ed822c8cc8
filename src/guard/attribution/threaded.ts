import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ASSETS, executableScript } from '../../native/sea.js';
import type { ProcResolverOptions } from './options.js';
import { createProcResolver, type Resolved } from './resolver.js';
import { loadSockDiag } from './sock-diag.js';
import type { ResolverStats } from './stats.js';
import type { Caller, ConnectionInfo, ProcessResolver } from './types.js';

export interface ThreadedResolver extends ProcessResolver {
  /** The worker's counters (or the fallback's); undefined when neither is running. */
  stats(): Promise<ResolverStats | undefined>;
}

/**
 * The guard's resolver: an inline tier on the calling thread for the cheap cases (with sock_diag
 * only; see createThreadedProcResolver), then createProcResolver on a worker thread. The guard's event
 * loop sends one message per lookup and gets one back; the /proc work runs on the worker, with plain
 * system calls, so a saturated guard does not stretch every lookup (measured: 8 concurrent lookups took
 * 250 to 550 ms on the main loop of a guard serving 1,000 req/s, against a few ms on an idle loop).
 *
 * Falls back to the in-thread resolver when the compiled worker is not there (running from the
 * TypeScript sources) or when the worker dies.
 */

/** The inline tier's default budget, milliseconds (see createThreadedProcResolver). */
export const DEFAULT_INLINE_BUDGET_MS = 1;

/**
 * The inline tier's share of the calling thread: at most this many milliseconds of inline lookups
 * in any second. A burst of new connections (a thousand at once) then goes to the worker instead of
 * holding the guard's thread for a millisecond each.
 */
const INLINE_MS_PER_SECOND = 100;

/** Lookups waiting for the worker; beyond it a lookup answers `none` at once. */
const MAX_PENDING = 10_000;

export interface ThreadedOptions extends Omit<ProcResolverOptions, 'now' | 'inline' | 'io'> {
  /**
   * Time budget of the inline tier on the calling thread, milliseconds; 0 turns it off. It runs
   * only with sock_diag. Default 1 (config: guard.attribution.inlineBudgetMs).
   */
  inlineBudgetMs?: number;
}

export function createThreadedProcResolver(options: ThreadedOptions = {}): ThreadedResolver {
  const { inlineBudgetMs = DEFAULT_INLINE_BUDGET_MS, ...workerOptions } = options;
  // The release executable carries the worker as an embedded script; the npm package as a file.
  const embedded = executableScript(ASSETS.attributionWorker);
  const file = fileURLToPath(new URL('./worker.js', import.meta.url));
  if (embedded === undefined && !existsSync(file)) {
    const inThread = createProcResolver(workerOptions);
    return {
      resolve: (c) => inThread.resolve(c),
      close: () => inThread.close(),
      stats: async () => inThread.stats(),
    };
  }
  // The inline tier answers what is cheap (a long-lived client's next connection, a new process
  // among the newest pids) in well under a millisecond, without the round trip to the worker,
  // whose wake-up alone can take a millisecond on a busy host. It blocks this thread for at most
  // its budget plus one process description; what it cannot find goes to the worker.
  const inline =
    inlineBudgetMs > 0 && workerOptions.sockDiag !== false && loadSockDiag().diag !== undefined
      ? createProcResolver({ ...workerOptions, inline: true, budgetMs: inlineBudgetMs })
      : undefined;

  let fallback: ReturnType<typeof createProcResolver> | undefined;
  let closed = false;
  const pending = new Map<number, (r: Resolved) => void>();
  const statsWaiting = new Map<number, (s: ResolverStats | undefined) => void>();
  let seq = 0;
  let worker: Worker | undefined =
    embedded !== undefined
      ? new Worker(embedded, { eval: true, workerData: workerOptions })
      : new Worker(file, { workerData: workerOptions });
  worker.unref();

  const fail = (why: string) => {
    worker = undefined;
    fallback ??= createProcResolver(workerOptions);
    for (const done of pending.values())
      done({ caller: { resolved: 'none', error: `attribution worker ${why}` } });
    pending.clear();
    for (const done of statsWaiting.values()) done(undefined);
    statsWaiting.clear();
  };
  worker.on('message', (m: ({ id: number } & Resolved) | { id: number; stats: ResolverStats }) => {
    if ('stats' in m) {
      statsWaiting.get(m.id)?.(m.stats);
      statsWaiting.delete(m.id);
      return;
    }
    const done = pending.get(m.id);
    pending.delete(m.id);
    done?.(m.socket ? { caller: m.caller, socket: m.socket } : { caller: m.caller });
  });
  worker.on('error', (err) => fail(`failed: ${err.message}`));
  worker.on('exit', (code) => {
    if (worker) fail(`exited (${code})`);
  });

  const workerStats = (): Promise<ResolverStats | undefined> => {
    if (!worker) return Promise.resolve(fallback?.stats());
    const id = ++seq;
    const w = worker;
    return new Promise((resolve) => {
      statsWaiting.set(id, resolve);
      w.postMessage({ statsId: id });
    });
  };

  const viaWorker = (conn: ConnectionInfo): Promise<Resolved> => {
    if (closed) return Promise.resolve({ caller: { resolved: 'none', error: 'attribution closed' } });
    if (!worker) {
      fallback ??= createProcResolver(workerOptions);
      return fallback.resolveOwned(conn);
    }
    if (pending.size >= MAX_PENDING) {
      return Promise.resolve({ caller: { resolved: 'none', error: 'attribution queue full' } });
    }
    const id = ++seq;
    const w = worker;
    return new Promise<Resolved>((resolve) => {
      pending.set(id, resolve);
      w.postMessage({ id, conn });
    });
  };

  let windowStart = performance.now();
  let inlineSpent = 0;
  const inlineAllowed = (): boolean => {
    const now = performance.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      inlineSpent = 0;
    }
    return inlineSpent < INLINE_MS_PER_SECOND;
  };

  return {
    async resolve(conn: ConnectionInfo): Promise<Caller> {
      if (closed) return { resolved: 'none', error: 'attribution closed' };
      if (inline && inlineAllowed()) {
        const t = performance.now();
        const quick = await inline.resolve(conn);
        // Its reads are synchronous and bounded by its budget (plus a description); longer means
        // it waited for something asynchronous (the first read of the passwd file), which did not
        // hold the thread.
        inlineSpent += Math.min(performance.now() - t, inlineBudgetMs + 2);
        if (quick.resolved === 'full') return quick;
      }
      const { caller, socket } = await viaWorker(conn);
      if (inline && caller.resolved === 'full' && caller.pid !== undefined) inline.learn(caller.pid, socket);
      return caller;
    },
    async stats(): Promise<ResolverStats | undefined> {
      const out = await workerStats();
      if (out && inline) out.inline = inline.stats();
      return out;
    },
    async close(): Promise<void> {
      await inline?.close();
      closed = true;
      const w = worker;
      worker = undefined;
      if (w) {
        // Keep the process alive until the worker has exited: with the worker and the timer unref'd,
        // an otherwise idle event loop would end while close() is still pending.
        w.ref();
        w.postMessage('close');
        await new Promise<void>((res) => {
          const t = setTimeout(() => {
            void w.terminate().then(() => res());
          }, 2000);
          w.once('exit', () => {
            clearTimeout(t);
            res();
          });
        });
      }
      for (const done of pending.values())
        done({ caller: { resolved: 'none', error: 'attribution closed' } });
      pending.clear();
      for (const done of statsWaiting.values()) done(undefined);
      statsWaiting.clear();
      await fallback?.close();
    },
  };
}
