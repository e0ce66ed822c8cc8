/**
 * Resolves the role(s) of every instance profile in use: one iam:GetInstanceProfile per distinct
 * profile per account (IAM is global, so across all regions of the account). A profile that no longer
 * exists has no role ([]); any other failure is recorded once for the account and its instances keep
 * roleNames: null.
 */
import { GetInstanceProfileCommand } from '@aws-sdk/client-iam';
import type { AccountTarget, AwsClientFactory } from '../aws/clients.js';
import { mapBounded } from '../aws/concurrency.js';
import { awsErrorCode, wrapAwsError } from '../aws/errors.js';
import type { InstanceRecord } from './model.js';

/** Profiles looked up at once per account. */
export const ROLE_LOOKUP_CONCURRENCY = 4;

export interface RoleLookupFailure {
  accountId: string;
  error: unknown;
}

export async function resolveInstanceRoles(
  factory: AwsClientFactory,
  accounts: readonly AccountTarget[],
  instances: readonly InstanceRecord[],
  concurrency: number,
): Promise<RoleLookupFailure[]> {
  const byAccount = new Map<string, Map<string, InstanceRecord[]>>();
  for (const i of instances) {
    if (!i.instanceProfileName) continue;
    let profiles = byAccount.get(i.accountId);
    if (!profiles) {
      profiles = new Map();
      byAccount.set(i.accountId, profiles);
    }
    const list = profiles.get(i.instanceProfileName) ?? [];
    list.push(i);
    profiles.set(i.instanceProfileName, list);
  }
  const failures: RoleLookupFailure[] = [];
  const targets = accounts.filter((a) => byAccount.has(a.accountId));
  await mapBounded(targets, concurrency, async (target) => {
    const profiles = byAccount.get(target.accountId) as Map<string, InstanceRecord[]>;
    const iam = factory.iam(target);
    let failed = false;
    await mapBounded([...profiles.keys()], ROLE_LOOKUP_CONCURRENCY, async (name) => {
      if (failed) return;
      let roles: string[];
      try {
        const out = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }));
        roles = (out.InstanceProfile?.Roles ?? [])
          .map((r) => r.RoleName)
          .filter((r): r is string => typeof r === 'string');
      } catch (err) {
        if (awsErrorCode(err) === 'NoSuchEntity' || awsErrorCode(err) === 'NoSuchEntityException') {
          roles = [];
        } else {
          if (!failed) {
            failed = true;
            failures.push({
              accountId: target.accountId,
              error: wrapAwsError(err, { operation: 'iam:GetInstanceProfile', accountId: target.accountId }),
            });
          }
          return;
        }
      }
      for (const i of profiles.get(name) ?? []) i.roleNames = [...roles];
    });
  });
  return failures;
}
