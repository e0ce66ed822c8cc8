import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Caller, connectionInfo, type ProcessResolver } from '../attribution/types.js';

/**
 * Finds the process behind a client connection, once per connection, for one guard. A process does
 * not change under its socket, so the lookup is cached on the socket (a WeakMap: it goes with the
 * connection).
 *
 * A request waits for the lookup at most timeoutMs; past it, it gets a placeholder (resolved 'none',
 * "attribution timed out") and is decided without the caller, but the lookup itself goes on (the
 * resolver's own budget bounds it). The connection's next request gets its result, or waits for it
 * again, and the request's event waits for it (final(), bounded): a slow lookup still names the
 * caller. When a rule needs the caller, a lookup that found nothing is retried, at most once a
 * second; for events alone it is never retried (the event already says why).
 */

/** A lookup that found nothing is retried after this long when a rule needs the caller, ms. */
export const RETRY_NONE_AFTER_MS = 1000;
/** Events waiting at once for lookups that missed their request's deadline; beyond, not waited for. */
export const MAX_LATE_EVENTS = 10_000;

interface Entry {
  /** The resolver's lookup, not cut by any request's timeout. */
  full: Promise<Caller>;
  /** Its answer, once it came. */
  result?: Caller;
  /** performance.now() when it started. */
  at: number;
}

export class CallerLookup {
  readonly #resolver: ProcessResolver;
  readonly #cache = new WeakMap<Socket, Entry>();
  /** The placeholders handed out when a lookup missed a request's deadline. */
  readonly #placeholders = new WeakSet<Caller>();
  #lateWaiting = 0;

  constructor(resolver: ProcessResolver) {
    this.#resolver = resolver;
  }

  /**
   * The caller behind `socket`, within timeoutMs (after it: a placeholder, resolved 'none' with the
   * reason, while the lookup goes on). Never rejects. `retryNone`: look again if the cached lookup
   * found nothing a while ago.
   */
  lookup(socket: Socket, timeoutMs: number, retryNone: boolean): Promise<Caller> {
    const now = performance.now();
    let entry = this.#cache.get(socket);
    if (
      entry === undefined ||
      (retryNone && entry.result?.resolved === 'none' && now - entry.at > RETRY_NONE_AFTER_MS)
    ) {
      entry = this.#start(socket, now);
    }
    if (entry.result !== undefined) return Promise.resolve(entry.result);
    return this.#within(entry.full, timeoutMs);
  }

  /** Whether `caller` is the placeholder of a lookup that missed its request's deadline. */
  isPlaceholder(caller: Caller): boolean {
    return this.#placeholders.has(caller);
  }

  /**
   * The lookup's own answer for the event of a request that got a placeholder, waited for until
   * `waitMs` after the lookup started; undefined past that, or when MAX_LATE_EVENTS events already
   * wait (the event then keeps the placeholder).
   */
  async final(socket: Socket, waitMs: number): Promise<{ caller: Caller; ms: number } | undefined> {
    const entry = this.#cache.get(socket);
    if (entry === undefined) return undefined;
    const done = (c: Caller) => ({ caller: c, ms: Math.round((performance.now() - entry.at) * 1000) / 1000 });
    if (entry.result !== undefined) return done(entry.result);
    const left = waitMs - (performance.now() - entry.at);
    if (left <= 0 || this.#lateWaiting >= MAX_LATE_EVENTS) return undefined;
    this.#lateWaiting++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const c = await Promise.race([
        entry.full,
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), left);
        }),
      ]);
      return c === undefined ? undefined : done(c);
    } finally {
      clearTimeout(timer);
      this.#lateWaiting--;
    }
  }

  #start(socket: Socket, at: number): Entry {
    const entry: Entry = { full: Promise.resolve({ resolved: 'none' }), at };
    entry.full = this.#resolver
      .resolve(connectionInfo(socket))
      .catch(
        (err: unknown): Caller => ({
          resolved: 'none',
          error: `attribution failed: ${(err as Error)?.message ?? String(err)}`,
        }),
      )
      .then((c) => {
        entry.result = c;
        return c;
      });
    this.#cache.set(socket, entry);
    return entry;
  }

  async #within(full: Promise<Caller>, timeoutMs: number): Promise<Caller> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Caller>((resolve) => {
      timer = setTimeout(() => {
        const placeholder: Caller = {
          resolved: 'none',
          error: `attribution timed out after ${timeoutMs} ms`,
        };
        this.#placeholders.add(placeholder);
        resolve(placeholder);
      }, timeoutMs);
    });
    try {
      return await Promise.race([full, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
