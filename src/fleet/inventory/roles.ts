/**
 * Resolves the role(s) of every instance profile in use: one iam:GetInstanceProfile per distinct
 * profile per account (IAM is global, so across all regions of the account). Lookups start as soon as
 * a profile shows up in an instance page, so they overlap with the rest of the scan. A profile that no
 * longer exists has no role ([]); any other failure is recorded once for the account and its
 * instances keep roleNames: null.
 */
import { GetInstanceProfileCommand } from '@aws-sdk/client-iam';
import type { AccountTarget, AwsClientFactory } from '../aws/clients.js';
import { awsErrorCode, wrapAwsError } from '../aws/errors.js';
import type { InstanceRecord } from './model.js';

/** GetInstanceProfile calls in flight per account. */
export const ROLE_LOOKUP_CONCURRENCY = 4;

export interface RoleLookupFailure {
  accountId: string;
  error: unknown;
}

interface AccountLookups {
  target: AccountTarget;
  /** Profile name -> its roles, or null when the lookup failed. */
  results: Map<string, Promise<string[] | null>>;
  inFlight: number;
  queue: Array<() => void>;
  failure: RoleLookupFailure | undefined;
}

export class RoleResolver {
  private readonly accounts = new Map<string, AccountLookups>();
  private readonly factory: AwsClientFactory;

  constructor(factory: AwsClientFactory) {
    this.factory = factory;
  }

  /** Starts the lookups of the profiles of these instances that are not known yet. */
  request(target: AccountTarget, instances: readonly InstanceRecord[]): void {
    for (const i of instances) {
      if (!i.instanceProfileName) continue;
      let acc = this.accounts.get(target.accountId);
      if (!acc) {
        acc = { target, results: new Map(), inFlight: 0, queue: [], failure: undefined };
        this.accounts.set(target.accountId, acc);
      }
      if (!acc.results.has(i.instanceProfileName)) {
        acc.results.set(i.instanceProfileName, this.lookup(acc, i.instanceProfileName));
      }
    }
  }

  private async lookup(acc: AccountLookups, name: string): Promise<string[] | null> {
    if (acc.inFlight >= ROLE_LOOKUP_CONCURRENCY) await new Promise<void>((go) => acc.queue.push(go));
    acc.inFlight += 1;
    try {
      if (acc.failure) return null;
      const out = await this.factory
        .iam(acc.target)
        .send(new GetInstanceProfileCommand({ InstanceProfileName: name }));
      return (out.InstanceProfile?.Roles ?? [])
        .map((r) => r.RoleName)
        .filter((r): r is string => typeof r === 'string');
    } catch (err) {
      const code = awsErrorCode(err);
      if (code === 'NoSuchEntity' || code === 'NoSuchEntityException') return [];
      acc.failure ??= {
        accountId: acc.target.accountId,
        error: wrapAwsError(err, { operation: 'iam:GetInstanceProfile', accountId: acc.target.accountId }),
      };
      return null;
    } finally {
      acc.inFlight -= 1;
      acc.queue.shift()?.();
    }
  }

  /** Waits for the lookups of these instances' profiles (requested before) and sets their roleNames. */
  async assign(instances: readonly InstanceRecord[]): Promise<void> {
    for (const i of instances) {
      if (!i.instanceProfileName) continue;
      const roles = await this.accounts.get(i.accountId)?.results.get(i.instanceProfileName);
      i.roleNames = roles ? [...roles] : null;
    }
  }

  /** Waits for every lookup and returns one failure per account. */
  async failures(): Promise<RoleLookupFailure[]> {
    for (const acc of this.accounts.values()) await Promise.all(acc.results.values());
    return [...this.accounts.values()].flatMap((a) => (a.failure ? [a.failure] : []));
  }

  /** Waits for every lookup, sets roleNames on the instances, and returns one failure per account. */
  async finish(instances: readonly InstanceRecord[]): Promise<RoleLookupFailure[]> {
    await this.assign(instances);
    return this.failures();
  }
}
