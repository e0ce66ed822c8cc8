/**
 * Counts AWS API calls with SDK middleware: one "call" per send(), one "attempt" per HTTP request
 * (retries included), plus throttled and failed attempts. `--verbose` prints it; benches read it.
 */
import type {
  FinalizeHandlerArguments,
  HandlerExecutionContext,
  InitializeHandlerArguments,
} from '@smithy/types';
import { isThrottleError } from './errors.js';

export interface ApiCallStats {
  /** send() calls. */
  calls: number;
  /** HTTP attempts, retries included. */
  attempts: number;
  /** Attempts answered with a throttling error. */
  throttled: number;
  /** Attempts answered with any other error. */
  errors: number;
}

export interface ApiCallTargetStats extends ApiCallStats {
  operation: string;
  accountId: string;
  region: string;
}

export interface ApiCallSnapshot {
  total: ApiCallStats;
  /** Keyed by "service:Operation", e.g. "ec2:DescribeInstances". */
  byOperation: Record<string, ApiCallStats>;
  byTarget: ApiCallTargetStats[];
}

export interface CallLabels {
  service: string;
  accountId: string;
  region: string;
}

function zero(): ApiCallStats {
  return { calls: 0, attempts: 0, throttled: 0, errors: 0 };
}

export class ApiCallCounter {
  private readonly targets = new Map<string, ApiCallTargetStats>();

  private entry(operation: string, accountId: string, region: string): ApiCallTargetStats {
    const key = `${operation}|${accountId}|${region}`;
    let e = this.targets.get(key);
    if (!e) {
      e = { operation, accountId, region, ...zero() };
      this.targets.set(key, e);
    }
    return e;
  }

  recordCall(operation: string, accountId: string, region: string): void {
    this.entry(operation, accountId, region).calls += 1;
  }

  recordAttempt(
    operation: string,
    accountId: string,
    region: string,
    outcome: 'ok' | 'throttled' | 'error',
  ): void {
    const e = this.entry(operation, accountId, region);
    e.attempts += 1;
    if (outcome === 'throttled') e.throttled += 1;
    else if (outcome === 'error') e.errors += 1;
  }

  /** A copy of the counts so far. */
  snapshot(): ApiCallSnapshot {
    const total = zero();
    const byOperation: Record<string, ApiCallStats> = {};
    const byTarget: ApiCallTargetStats[] = [];
    for (const e of this.targets.values()) {
      byTarget.push({ ...e });
      const op = byOperation[e.operation] ?? zero();
      byOperation[e.operation] = op;
      for (const k of ['calls', 'attempts', 'throttled', 'errors'] as const) {
        op[k] += e[k];
        total[k] += e[k];
      }
    }
    byTarget.sort((a, b) =>
      `${a.operation}|${a.accountId}|${a.region}`.localeCompare(`${b.operation}|${b.accountId}|${b.region}`),
    );
    return { total, byOperation, byTarget };
  }
}

/** The part of an SDK v3 client the counter needs. */
export interface MiddlewareClient {
  middlewareStack: {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's middleware types differ per client
    add(middleware: any, options: any): void;
  };
}

const SERVICE_PREFIX: Record<string, string> = {
  EC2Client: 'ec2',
  AutoScalingClient: 'autoscaling',
  STSClient: 'sts',
  OrganizationsClient: 'organizations',
  CloudWatchClient: 'cloudwatch',
  IAMClient: 'iam',
};

/** Adds the counting middleware to a client; idempotent per client. */
export function attachCounter(client: MiddlewareClient, counter: ApiCallCounter, labels: CallLabels): void {
  const op = (context: HandlerExecutionContext) =>
    `${labels.service || SERVICE_PREFIX[String(context.clientName)] || 'aws'}:${String(context.commandName ?? 'unknown').replace(/Command$/, '')}`;
  client.middlewareStack.add(
    (
      next: (args: InitializeHandlerArguments<object>) => Promise<unknown>,
      context: HandlerExecutionContext,
    ) =>
      async (args: InitializeHandlerArguments<object>) => {
        counter.recordCall(op(context), labels.accountId, labels.region);
        return next(args);
      },
    { step: 'initialize', name: 'imdsguardCallCounter', priority: 'high', override: true },
  );
  client.middlewareStack.add(
    (next: (args: FinalizeHandlerArguments<object>) => Promise<unknown>, context: HandlerExecutionContext) =>
      async (args: FinalizeHandlerArguments<object>) => {
        try {
          const out = await next(args);
          counter.recordAttempt(op(context), labels.accountId, labels.region, 'ok');
          return out;
        } catch (err) {
          counter.recordAttempt(
            op(context),
            labels.accountId,
            labels.region,
            isThrottleError(err) ? 'throttled' : 'error',
          );
          throw err;
        }
      },
    // Below the retry middleware (priority high in the same step): runs once per attempt.
    { step: 'finalizeRequest', name: 'imdsguardAttemptCounter', priority: 'low', override: true },
  );
}
