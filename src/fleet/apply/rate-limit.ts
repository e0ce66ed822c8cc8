/**
 * Client-side token buckets matching EC2's API request limits, one per account + region + action, so a
 * change run never asks for more than AWS grants and throttling stays the exception. Each HTTP attempt
 * (retries included) takes a token: the SDK middleware below sits under the SDK's retry middleware.
 * The clock is injectable for tests.
 */
import type { FinalizeHandlerArguments, HandlerExecutionContext } from '@smithy/types';
import type { MiddlewareClient } from '../aws/counter.js';

export interface BucketSpec {
  /** Bucket size: calls allowed at once. */
  burst: number;
  /** Tokens added per second. */
  refillPerSecond: number;
}

/**
 * EC2's documented request-token-bucket defaults (EC2 API reference, "Request throttling"): mutating
 * ModifyInstanceMetadataOptions is a resource-intensive action with a bucket of 100 and 5 per second;
 * the describe calls are non-mutating (100, 20/s). ModifyInstanceMetadataDefaults has a small bucket
 * (about 2, refilling 2/s). Actions not listed share the conservative default.
 */
export const EC2_API_LIMITS: Record<string, BucketSpec> = {
  ModifyInstanceMetadataOptions: { burst: 100, refillPerSecond: 5 },
  DescribeInstances: { burst: 100, refillPerSecond: 20 },
  CreateLaunchTemplateVersion: { burst: 100, refillPerSecond: 5 },
  ModifyLaunchTemplate: { burst: 100, refillPerSecond: 5 },
  ModifyInstanceMetadataDefaults: { burst: 2, refillPerSecond: 2 },
};

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const REAL_CLOCK: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** A FIFO token bucket: take() resolves when a token is available. */
export class TokenBucket {
  private tokens: number;
  private updated: number;
  private queue: Promise<void> = Promise.resolve();
  private taken = 0;

  readonly spec: BucketSpec;
  private readonly clock: Clock;

  constructor(spec: BucketSpec, clock: Clock = REAL_CLOCK) {
    this.spec = spec;
    this.clock = clock;
    if (spec.burst < 1 || spec.refillPerSecond <= 0)
      throw new RangeError('a bucket needs burst >= 1 and a refill > 0');
    this.tokens = spec.burst;
    this.updated = clock.now();
  }

  private refill(): void {
    const t = this.clock.now();
    this.tokens = Math.min(
      this.spec.burst,
      this.tokens + ((t - this.updated) / 1000) * this.spec.refillPerSecond,
    );
    this.updated = t;
  }

  /** Tokens available now (tests, diagnostics). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  get takenCount(): number {
    return this.taken;
  }

  take(): Promise<void> {
    const next = this.queue.then(async () => {
      for (;;) {
        this.refill();
        if (this.tokens >= 1) {
          this.tokens -= 1;
          this.taken += 1;
          return;
        }
        const waitMs = Math.ceil(((1 - this.tokens) / this.spec.refillPerSecond) * 1000);
        await this.clock.sleep(Math.max(1, waitMs));
      }
    });
    this.queue = next.catch(() => {});
    return next;
  }
}

/** The buckets of a run, per account + region + action. */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly limits: Record<string, BucketSpec>;
  private readonly clock: Clock;

  constructor(limits: Record<string, BucketSpec> = EC2_API_LIMITS, clock: Clock = REAL_CLOCK) {
    this.limits = limits;
    this.clock = clock;
  }

  /** The bucket for this action, or undefined when the action is not limited. */
  bucket(accountId: string, region: string, action: string): TokenBucket | undefined {
    const spec = this.limits[action];
    if (!spec) return undefined;
    const key = `${accountId}/${region}/${action}`;
    let b = this.buckets.get(key);
    if (!b) {
      b = new TokenBucket(spec, this.clock);
      this.buckets.set(key, b);
    }
    return b;
  }

  async take(accountId: string, region: string, action: string): Promise<void> {
    await this.bucket(accountId, region, action)?.take();
  }
}

/**
 * Adds the rate-limit middleware to an SDK client: every HTTP attempt of a limited action waits for a
 * token of its account + region bucket. Idempotent per client (the middleware has a fixed name).
 */
export function attachRateLimiter(
  client: MiddlewareClient,
  limiter: RateLimiter,
  labels: { accountId: string; region: string },
): void {
  client.middlewareStack.add(
    (next: (args: FinalizeHandlerArguments<object>) => Promise<unknown>, context: HandlerExecutionContext) =>
      async (args: FinalizeHandlerArguments<object>) => {
        const action = String(context.commandName ?? '').replace(/Command$/, '');
        await limiter.take(labels.accountId, labels.region, action);
        return next(args);
      },
    // finalizeRequest, low priority: below the retry middleware, so each attempt takes a token.
    { step: 'finalizeRequest', name: 'imdsguardRateLimit', priority: 'low', override: true },
  );
}
