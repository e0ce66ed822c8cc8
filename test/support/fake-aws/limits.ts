/**
 * Token-bucket API rate limits per account + region + action, like EC2's request throttling. Off until
 * enabled. A call that finds its bucket empty is refused (RequestLimitExceeded) and recorded, so a test
 * can assert that a client-side limiter kept under the limit.
 */

export interface BucketSpec {
  /** Bucket size (calls). */
  burst: number;
  /** Tokens added per second. */
  refillPerSecond: number;
}

/**
 * EC2's defaults for the actions imdsguard uses (EC2 API reference, "Request throttling": token buckets
 * per account and Region; DESIGN notes on IMDS: ModifyInstanceMetadataOptions burst 100, refill 5/s;
 * DescribeInstances 100, 20/s; ModifyInstanceMetadataDefaults about 2, refilling 2/s).
 */
export const EC2_DEFAULT_LIMITS: Record<string, BucketSpec> = {
  ModifyInstanceMetadataOptions: { burst: 100, refillPerSecond: 5 },
  DescribeInstances: { burst: 100, refillPerSecond: 20 },
  ModifyInstanceMetadataDefaults: { burst: 2, refillPerSecond: 2 },
};

export interface ExceededRecord {
  accountId: string;
  region: string;
  action: string;
  at: number;
}

interface Bucket {
  tokens: number;
  updated: number;
}

export class RateLimits {
  private readonly specs = new Map<string, BucketSpec>();
  private readonly buckets = new Map<string, Bucket>();
  /** Every refused call (bounded to the last 10,000). */
  readonly exceeded: ExceededRecord[] = [];
  private exceededTotal = 0;

  private readonly now: () => number;
  constructor(now: () => number = () => Date.now()) {
    this.now = now;
  }

  /** Enables a limit for one action, or EC2's defaults for ModifyInstanceMetadataOptions and DescribeInstances. */
  enable(action?: string, spec?: BucketSpec): this {
    if (action === undefined) {
      for (const [a, s] of Object.entries(EC2_DEFAULT_LIMITS)) this.specs.set(a, s);
    } else {
      const s = spec ?? EC2_DEFAULT_LIMITS[action];
      if (!s) throw new Error(`no default limit for ${action}; pass a spec`);
      this.specs.set(action, s);
    }
    return this;
  }

  disable(action?: string): this {
    if (action === undefined) this.specs.clear();
    else this.specs.delete(action);
    this.buckets.clear();
    return this;
  }

  /** Takes a token; false when the bucket is empty (the call must be refused). */
  take(accountId: string, region: string, action: string): boolean {
    const spec = this.specs.get(action);
    if (!spec) return true;
    const key = `${accountId}/${region}/${action}`;
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: spec.burst, updated: t };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(spec.burst, b.tokens + ((t - b.updated) / 1000) * spec.refillPerSecond);
    b.updated = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    this.exceededTotal += 1;
    this.exceeded.push({ accountId, region, action, at: t });
    if (this.exceeded.length > 10_000) this.exceeded.shift();
    return false;
  }

  /** Whether any call was refused since the start (or since the last reset). */
  get wasExceeded(): boolean {
    return this.exceededTotal > 0;
  }

  get exceededCount(): number {
    return this.exceededTotal;
  }

  reset(): this {
    this.buckets.clear();
    this.exceeded.length = 0;
    this.exceededTotal = 0;
    return this;
  }
}
