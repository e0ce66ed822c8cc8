/**
 * A fleet session: the AWS client factory of one run and the accounts and regions it covers.
 *
 *   openSession(options, env)   -> FleetSession (factory, targets, stats(), close())
 *
 * Credentials: `profile`, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY(/AWS_SESSION_TOKEN) from `env`,
 * else the SDK's default chain. Region: `regions`, else AWS_REGION / AWS_DEFAULT_REGION, else the
 * profile's.
 */
import type { RunStats } from '../../report/fleet.js';
import { AwsClientFactory, type AwsFactoryOptions } from '../aws/clients.js';
import { type ResolvedTargets, resolveTargets, type TargetSelection } from '../aws/targets.js';
import { type RunIo, unlessStopped } from './io.js';

export const FLEET_RUN_DEFAULTS = {
  /** Account x region scans in flight; also calls in flight per account and region when changing. */
  concurrency: 8,
  /** Attempts per AWS call, first included. */
  maxAttempts: 8,
} as const;

/** Which accounts and regions, and how to reach AWS. */
export interface FleetRunOptions extends TargetSelection {
  profile?: string | undefined;
  externalId?: string | undefined;
  /** Send every AWS call to this URL (a local test endpoint). */
  endpointUrl?: string | undefined;
  concurrency: number;
  maxAttempts: number;
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface FleetSession {
  readonly factory: AwsClientFactory;
  targets: ResolvedTargets;
  /** Epoch ms when the session opened. */
  readonly startedAt: number;
  /** Duration and AWS API calls so far. */
  stats(): RunStats;
  close(): void;
}

/** The factory options for a run: endpoint, profile, retries, sockets and credentials from env. */
export function factoryOptions(
  opts: FleetRunOptions,
  env: Env,
  extra: Partial<AwsFactoryOptions> = {},
): AwsFactoryOptions {
  const out: AwsFactoryOptions = {
    endpointUrl: opts.endpointUrl,
    profile: opts.profile,
    maxAttempts: opts.maxAttempts,
    externalId: opts.externalId,
    maxSockets: Math.max(16, opts.concurrency * 6),
    ...extra,
  };
  if (out.credentials === undefined && opts.profile === undefined) {
    const id = env['AWS_ACCESS_KEY_ID'];
    const secret = env['AWS_SECRET_ACCESS_KEY'];
    if (id && secret) {
      const token = env['AWS_SESSION_TOKEN'];
      out.credentials = {
        accessKeyId: id,
        secretAccessKey: secret,
        ...(token ? { sessionToken: token } : {}),
      };
    }
  }
  const envRegion = env['AWS_REGION'] || env['AWS_DEFAULT_REGION'];
  if (out.defaultRegion === undefined && envRegion) out.defaultRegion = envRegion;
  return out;
}

/** Builds the client factory, then resolves accounts and regions (STS, Organizations, DescribeRegions). */
export async function openSession(
  opts: FleetRunOptions,
  env: Env,
  extra: Partial<AwsFactoryOptions> = {},
): Promise<FleetSession> {
  const factory = new AwsClientFactory(factoryOptions(opts, env, extra));
  const startedAt = Date.now();
  try {
    const targets = await resolveTargets(factory, opts);
    return {
      factory,
      targets,
      startedAt,
      stats() {
        const snap = factory.counter.snapshot();
        return {
          durationMs: Date.now() - startedAt,
          apiCalls: snap.total,
          apiCallsByOperation: snap.byOperation,
        };
      },
      close: () => factory.destroy(),
    };
  } catch (err) {
    factory.destroy();
    throw err;
  }
}

/** Opens a session (stopped by io.signal), runs `work`, closes it. */
export async function withSession<T>(
  fleet: FleetRunOptions,
  io: RunIo,
  env: Env,
  work: (session: FleetSession) => Promise<T>,
  extra: Partial<AwsFactoryOptions> = {},
): Promise<T> {
  const opening = openSession(fleet, env, extra);
  let session: FleetSession;
  try {
    session = await unlessStopped(opening, io.signal, 'the scan finished');
  } catch (err) {
    // Stopped while it was opening: close it once it is open.
    opening.then(
      (s) => s.close(),
      () => {},
    );
    throw err;
  }
  try {
    return await work(session);
  } finally {
    session.close();
  }
}
