/**
 * The one place AWS SDK clients are made. Every client of a run shares one HTTP handler (bounded
 * sockets and timeouts), the endpoint override, the retry policy (adaptive by default) and the API
 * call counter. Clients are cached per service, account and region: each account and region gets
 * its own client, so the SDK's adaptive rate limiter tracks the same bucket AWS throttles on.
 *
 * Accounts are AccountTarget values: the caller's own account (base credentials), or an account
 * reached through sts:AssumeRole (credentials fetched once, cached, refreshed 5 minutes before they
 * expire).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { ImdsguardError } from '../../errors.js';
import { ApiCallCounter, attachCounter } from './counter.js';
import { wrapAwsError } from './errors.js';
import { attachUnsupportedGuard, type UnsupportedCache } from './unsupported.js';

/** Defaults, with units. */
export const AWS_DEFAULTS = {
  /** Attempts per call, first try included (adaptive retry). */
  maxAttempts: 8,
  /** Per-request socket timeout, ms. */
  requestTimeoutMs: 30_000,
  /** TCP connect timeout, ms. */
  connectionTimeoutMs: 5_000,
  /** Sockets per host across every client of the run. */
  maxSockets: 64,
  /** Refresh assumed-role credentials this long before they expire, ms. */
  refreshBeforeExpiryMs: 5 * 60_000,
  /** AssumeRole session length, seconds. */
  sessionSeconds: 3600,
  roleSessionName: 'imdsguard',
  /** Region for global services (STS for the caller, Organizations) when none is configured. */
  globalRegion: 'us-east-1',
} as const;

export interface AwsFactoryOptions {
  /** Send every call to this URL (e.g. a local test endpoint); also --endpoint-url. */
  endpointUrl?: string | undefined;
  /** Shared config/credentials profile (--profile). */
  profile?: string | undefined;
  /** The region for calls that need one before --regions applies (default: the SDK's region chain). */
  defaultRegion?: string | undefined;
  /** Explicit base credentials (tests); default: the SDK's node provider chain for `profile`. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined;
  maxAttempts?: number | undefined;
  retryMode?: 'adaptive' | 'standard' | undefined;
  requestTimeoutMs?: number | undefined;
  connectionTimeoutMs?: number | undefined;
  maxSockets?: number | undefined;
  roleSessionName?: string | undefined;
  externalId?: string | undefined;
  counter?: ApiCallCounter | undefined;
}

/** An account to act in. */
export interface AccountTarget {
  accountId: string;
  name: string | null;
  /** null: the caller's own account, with the base credentials. */
  roleArn: string | null;
}

interface CachedCreds {
  creds?: AwsCredentialIdentity;
  pending?: Promise<AwsCredentialIdentity>;
}

type ServiceName = 'ec2' | 'autoscaling' | 'cloudwatch' | 'logs' | 'sts' | 'organizations' | 'iam';

export class AwsClientFactory {
  readonly counter: ApiCallCounter;
  readonly options: AwsFactoryOptions;
  private readonly handler: NodeHttpHandler;
  private readonly clients = new Map<string, unknown>();
  private readonly assumed = new Map<string, CachedCreds>();
  /** Endpoint + action pairs found unsupported in this run (unsupported.ts): never asked again. */
  private readonly unsupported: UnsupportedCache = new Map();
  private readonly baseCredentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private defaultRegionCache: Promise<string | undefined> | undefined;

  constructor(options: AwsFactoryOptions = {}) {
    this.options = options;
    this.counter = options.counter ?? new ApiCallCounter();
    const maxSockets = options.maxSockets ?? AWS_DEFAULTS.maxSockets;
    this.httpAgent = new HttpAgent({ keepAlive: true, maxSockets });
    this.httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets });
    this.handler = new NodeHttpHandler({
      requestTimeout: options.requestTimeoutMs ?? AWS_DEFAULTS.requestTimeoutMs,
      connectionTimeout: options.connectionTimeoutMs ?? AWS_DEFAULTS.connectionTimeoutMs,
      httpAgent: this.httpAgent,
      httpsAgent: this.httpsAgent,
    });
    this.baseCredentials =
      options.credentials ??
      fromNodeProviderChain(options.profile !== undefined ? { profile: options.profile } : {});
  }

  private commonConfig(region: string, credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider) {
    return {
      region,
      credentials,
      requestHandler: this.handler,
      maxAttempts: this.options.maxAttempts ?? AWS_DEFAULTS.maxAttempts,
      retryMode: this.options.retryMode ?? 'adaptive',
      ...(this.options.endpointUrl !== undefined ? { endpoint: this.options.endpointUrl } : {}),
      ...(this.options.profile !== undefined ? { profile: this.options.profile } : {}),
    };
  }

  private credentialsFor(target: AccountTarget): AwsCredentialIdentity | AwsCredentialIdentityProvider {
    if (target.roleArn === null) return this.baseCredentials;
    return () => this.assumeRole(target);
  }

  private cached<C extends { middlewareStack: unknown }>(
    service: ServiceName,
    accountId: string,
    region: string,
    make: () => C,
  ): C {
    const key = `${service}|${accountId}|${region}`;
    let c = this.clients.get(key) as C | undefined;
    if (!c) {
      c = make();
      attachCounter(c as never, this.counter, { service, accountId, region });
      attachUnsupportedGuard(c as never, this.unsupported);
      this.clients.set(key, c);
    }
    return c;
  }

  ec2(target: AccountTarget, region: string): EC2Client {
    return this.cached(
      'ec2',
      target.accountId,
      region,
      () => new EC2Client(this.commonConfig(region, this.credentialsFor(target))),
    );
  }

  autoScaling(target: AccountTarget, region: string): AutoScalingClient {
    return this.cached(
      'autoscaling',
      target.accountId,
      region,
      () => new AutoScalingClient(this.commonConfig(region, this.credentialsFor(target))),
    );
  }

  cloudWatch(target: AccountTarget, region: string): CloudWatchClient {
    return this.cached(
      'cloudwatch',
      target.accountId,
      region,
      () => new CloudWatchClient(this.commonConfig(region, this.credentialsFor(target))),
    );
  }

  /** CloudWatch Logs (Logs Insights queries of the guards' caller summary). */
  logs(target: AccountTarget, region: string): CloudWatchLogsClient {
    return this.cached(
      'logs',
      target.accountId,
      region,
      () => new CloudWatchLogsClient(this.commonConfig(region, this.credentialsFor(target))),
    );
  }

  /** IAM (a global service) in the target account. */
  iam(target: AccountTarget): IAMClient {
    const r = AWS_DEFAULTS.globalRegion;
    return this.cached(
      'iam',
      target.accountId,
      r,
      () => new IAMClient(this.commonConfig(r, this.credentialsFor(target))),
    );
  }

  /** STS with the base (caller) credentials. */
  sts(region?: string): STSClient {
    const r = region ?? AWS_DEFAULTS.globalRegion;
    return this.cached('sts', 'caller', r, () => new STSClient(this.commonConfig(r, this.baseCredentials)));
  }

  /** Organizations with the base credentials (management or delegated-admin account). */
  organizations(): OrganizationsClient {
    const r = AWS_DEFAULTS.globalRegion;
    return this.cached(
      'organizations',
      'caller',
      r,
      () => new OrganizationsClient(this.commonConfig(r, this.baseCredentials)),
    );
  }

  /** The region of the profile / environment (AWS_REGION, AWS_DEFAULT_REGION, config file), if any. */
  defaultRegion(): Promise<string | undefined> {
    if (!this.defaultRegionCache && this.options.defaultRegion) {
      this.defaultRegionCache = Promise.resolve(this.options.defaultRegion);
    }
    if (!this.defaultRegionCache) {
      this.defaultRegionCache = (async () => {
        try {
          const probe = new STSClient(
            this.options.profile !== undefined ? { profile: this.options.profile } : {},
          );
          const r = await probe.config.region();
          probe.destroy();
          return typeof r === 'string' && r.length > 0 ? r : undefined;
        } catch {
          return undefined;
        }
      })();
    }
    return this.defaultRegionCache;
  }

  /** The caller's account id (sts:GetCallerIdentity); fails with IMDSGUARD_E_AWS_AUTH on bad credentials. */
  async callerAccountId(): Promise<string> {
    const region = (await this.defaultRegion()) ?? AWS_DEFAULTS.globalRegion;
    try {
      const out = await this.sts(region).send(new GetCallerIdentityCommand({}));
      if (!out.Account) throw new Error('GetCallerIdentity returned no account');
      return out.Account;
    } catch (err) {
      throw wrapAwsError(err, { operation: 'sts:GetCallerIdentity', region });
    }
  }

  /**
   * Credentials for an assumed-role target: AssumeRole once, cached until 5 minutes before expiry.
   * Errors are ImdsguardError (IMDSGUARD_E_AWS_ASSUME_ROLE or IMDSGUARD_E_AWS_AUTH).
   */
  async assumeRole(target: AccountTarget): Promise<AwsCredentialIdentity> {
    if (target.roleArn === null) {
      throw new ImdsguardError('IMDSGUARD_E_INTERNAL', `account ${target.accountId} has no role to assume`);
    }
    let entry = this.assumed.get(target.roleArn);
    if (!entry) {
      entry = {};
      this.assumed.set(target.roleArn, entry);
    }
    const fresh =
      entry.creds &&
      (entry.creds.expiration === undefined ||
        entry.creds.expiration.getTime() - Date.now() > AWS_DEFAULTS.refreshBeforeExpiryMs);
    if (fresh && entry.creds) return entry.creds;
    if (entry.pending) return entry.pending;
    const roleArn = target.roleArn;
    const e = entry;
    e.pending = (async () => {
      const region = (await this.defaultRegion()) ?? AWS_DEFAULTS.globalRegion;
      try {
        const out = await this.sts(region).send(
          new AssumeRoleCommand({
            RoleArn: roleArn,
            RoleSessionName: this.options.roleSessionName ?? AWS_DEFAULTS.roleSessionName,
            DurationSeconds: AWS_DEFAULTS.sessionSeconds,
            ...(this.options.externalId !== undefined ? { ExternalId: this.options.externalId } : {}),
          }),
        );
        const c = out.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error('AssumeRole returned no credentials');
        const creds: AwsCredentialIdentity = {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
          ...(c.Expiration ? { expiration: c.Expiration } : {}),
        };
        e.creds = creds;
        return creds;
      } catch (err) {
        throw wrapAwsError(err, { operation: 'sts:AssumeRole', accountId: target.accountId, region });
      } finally {
        e.pending = undefined;
      }
    })();
    return e.pending;
  }

  /** Closes every socket of every client made here. */
  destroy(): void {
    this.handler.destroy();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.clients.clear();
  }
}
