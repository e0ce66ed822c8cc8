import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Caller, connectionInfo, type ProcessResolver } from '../attribution/types.js';

/**
 * Finds the process behind a client connection, once per connection, for one guard. A process does
 * not change under its socket, so the lookup is cached on the socket (a WeakMap: it goes with the
 * connection). When a rule needs the caller, a lookup that found nothing is retried, at most once a
 * second; for events alone it is never retried (the event already says why).
 */

/** A lookup that found nothing is retried after this long when a rule needs the caller, ms. */
export const RETRY_NONE_AFTER_MS = 1000;

interface Entry {
  p: Promise<Caller>;
  at: number;
  none: boolean;
}

export class CallerLookup {
  readonly #resolver: ProcessResolver;
  readonly #cache = new WeakMap<Socket, Entry>();

  constructor(resolver: ProcessResolver) {
    this.#resolver = resolver;
  }

  /**
   * The caller behind `socket`, bounded by timeoutMs (after it: resolved 'none' with the reason).
   * Never rejects. `retryNone`: look again if the cached lookup found nothing a while ago.
   */
  lookup(socket: Socket, timeoutMs: number, retryNone: boolean): Promise<Caller> {
    const now = performance.now();
    const cached = this.#cache.get(socket);
    if (cached !== undefined && !(retryNone && cached.none && now - cached.at > RETRY_NONE_AFTER_MS)) {
      return cached.p;
    }
    const entry: Entry = { p: Promise.resolve({ resolved: 'none' }), at: now, none: false };
    entry.p = this.#resolve(socket, timeoutMs).then((c) => {
      entry.none = c.resolved === 'none';
      return c;
    });
    this.#cache.set(socket, entry);
    return entry.p;
  }

  async #resolve(socket: Socket, timeoutMs: number): Promise<Caller> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Caller>((resolve) => {
      timer = setTimeout(
        () => resolve({ resolved: 'none', error: `attribution timed out after ${timeoutMs} ms` }),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([
        this.#resolver.resolve(connectionInfo(socket)).catch(
          (err: unknown): Caller => ({
            resolved: 'none',
            error: `attribution failed: ${(err as Error)?.message ?? String(err)}`,
          }),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
