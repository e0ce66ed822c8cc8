/**
 * The extra throttle rounds every call of a change run gets, writes and read-backs alike: the SDK's own
 * retries first (standard mode, --max-attempts; each attempt paced by the rate limiter), then up to
 * `rounds` more rounds with exponential backoff and jitter. Only throttling is retried here: the SDK
 * already retried transient failures, and a refusal is final.
 */
import { isThrottleError } from '../aws/errors.js';
import type { Clock } from './rate-limit.js';

/** Defaults, with units. */
export const RETRY_DEFAULTS = {
  /** Extra rounds for a call still throttled after the SDK's own retries. */
  throttleRetries: 5,
  /** First wait before such a round, ms (doubles each round, with jitter). */
  throttleBackoffMs: 1000,
  /** Longest wait between rounds, ms. */
  throttleBackoffMaxMs: 20_000,
} as const;

export interface RetryOptions {
  rounds?: number | undefined;
  backoffMs?: number | undefined;
  clock: Clock;
  /** Random source for the jitter (tests). */
  random: () => number;
  /** Runs before every round, the first included (the applier journals the write-ahead row here). */
  beforeRound?: (() => void | Promise<void>) | undefined;
}

/** Runs `call`, again after a backoff while it fails with throttling, up to `rounds` more times. */
export async function withThrottleRetries<T>(call: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const rounds = opts.rounds ?? RETRY_DEFAULTS.throttleRetries;
  let backoff = opts.backoffMs ?? RETRY_DEFAULTS.throttleBackoffMs;
  for (let round = 0; ; round++) {
    await opts.beforeRound?.();
    try {
      return await call();
    } catch (err) {
      if (!isThrottleError((err as { cause?: unknown }).cause ?? err) || round >= rounds) throw err;
      await opts.clock.sleep(Math.min(RETRY_DEFAULTS.throttleBackoffMaxMs, backoff * (0.5 + opts.random())));
      backoff *= 2;
    }
  }
}
