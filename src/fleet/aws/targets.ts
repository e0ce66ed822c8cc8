/**
 * Which accounts and regions a fleet command covers: the caller's account by default, a list of
 * accounts (--accounts IDS --role NAME) or every active account of the organization (--org --role
 * NAME); the profile's region by default, a list (--regions), or every enabled region (--all-regions).
 */
import { DescribeRegionsCommand } from '@aws-sdk/client-ec2';
import { paginateListAccounts } from '@aws-sdk/client-organizations';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { ImdsguardError } from '../../errors.js';
import { type AccountTarget, AWS_DEFAULTS, type AwsClientFactory } from './clients.js';
import { wrapAwsError } from './errors.js';

export interface TargetSelection {
  regions?: string[] | undefined;
  allRegions?: boolean | undefined;
  org?: boolean | undefined;
  accounts?: string[] | undefined;
  /** Role name (or path/name) to assume in each target account. */
  role?: string | undefined;
}

export interface ResolvedTargets {
  callerAccountId: string;
  /** aws, aws-cn, aws-us-gov: taken from the caller's ARN. */
  partition: string;
  accounts: AccountTarget[];
  regions: string[];
}

const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const ACCOUNT_RE = /^\d{12}$/;
const ROLE_RE = /^[\w+=,.@/-]{1,512}$/;

/** Checks the selection flags alone (no AWS call). Throws IMDSGUARD_E_USAGE. */
export function validateSelection(sel: TargetSelection): void {
  if (sel.org && sel.accounts && sel.accounts.length > 0) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', '--org and --accounts cannot be used together');
  }
  if ((sel.org || (sel.accounts && sel.accounts.length > 0)) && !sel.role) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      '--org and --accounts need --role NAME (the role to assume in each account)',
    );
  }
  if (sel.role !== undefined && !sel.org && !(sel.accounts && sel.accounts.length > 0)) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', '--role needs --org or --accounts');
  }
  if (sel.role !== undefined && (sel.role.startsWith('arn:') || !ROLE_RE.test(sel.role))) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--role: expected a role name such as OrganizationAccountAccessRole, got "${sel.role}"`,
    );
  }
  for (const a of sel.accounts ?? []) {
    if (!ACCOUNT_RE.test(a))
      throw new ImdsguardError('IMDSGUARD_E_USAGE', `--accounts: "${a}" is not a 12-digit account id`);
  }
  if (sel.allRegions && sel.regions && sel.regions.length > 0) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', '--regions and --all-regions cannot be used together');
  }
  for (const r of sel.regions ?? []) {
    if (!REGION_RE.test(r))
      throw new ImdsguardError(
        'IMDSGUARD_E_USAGE',
        `--regions: "${r}" is not a region name such as us-east-1`,
      );
  }
}

export function roleArnFor(partition: string, accountId: string, role: string): string {
  return `arn:${partition}:iam::${accountId}:role/${role}`;
}

export async function resolveTargets(
  factory: AwsClientFactory,
  sel: TargetSelection,
): Promise<ResolvedTargets> {
  validateSelection(sel);
  const defaultRegion = await factory.defaultRegion();
  const stsRegion = defaultRegion ?? sel.regions?.[0] ?? AWS_DEFAULTS.globalRegion;
  let callerAccountId: string;
  let partition = 'aws';
  try {
    const me = await factory.sts(stsRegion).send(new GetCallerIdentityCommand({}));
    if (!me.Account) throw new Error('GetCallerIdentity returned no account');
    callerAccountId = me.Account;
    partition = me.Arn?.split(':')[1] || 'aws';
  } catch (err) {
    throw wrapAwsError(err, { operation: 'sts:GetCallerIdentity', region: stsRegion });
  }

  let accounts: AccountTarget[];
  const asTarget = (id: string, name: string | null): AccountTarget => ({
    accountId: id,
    name,
    roleArn: id === callerAccountId ? null : roleArnFor(partition, id, sel.role as string),
  });
  if (sel.org) {
    accounts = [];
    try {
      for await (const page of paginateListAccounts({ client: factory.organizations(), pageSize: 20 }, {})) {
        for (const a of page.Accounts ?? []) {
          if (!a.Id) continue;
          const state = (a as { State?: string }).State ?? a.Status;
          if (state !== undefined && state !== 'ACTIVE') continue;
          accounts.push(asTarget(a.Id, a.Name ?? null));
        }
      }
    } catch (err) {
      throw wrapAwsError(err, { operation: 'organizations:ListAccounts', accountId: callerAccountId });
    }
  } else if (sel.accounts && sel.accounts.length > 0) {
    accounts = [...new Set(sel.accounts)].map((id) => asTarget(id, null));
  } else {
    accounts = [{ accountId: callerAccountId, name: null, roleArn: null }];
  }
  accounts.sort((a, b) => a.accountId.localeCompare(b.accountId));

  let regions: string[];
  if (sel.regions && sel.regions.length > 0) {
    regions = [...new Set(sel.regions)];
  } else if (sel.allRegions) {
    const region = defaultRegion ?? AWS_DEFAULTS.globalRegion;
    const caller: AccountTarget = { accountId: callerAccountId, name: null, roleArn: null };
    try {
      const out = await factory.ec2(caller, region).send(new DescribeRegionsCommand({}));
      regions = (out.Regions ?? [])
        .filter((r) => r.OptInStatus !== 'not-opted-in')
        .map((r) => r.RegionName)
        .filter((r): r is string => typeof r === 'string');
    } catch (err) {
      throw wrapAwsError(err, { operation: 'ec2:DescribeRegions', accountId: callerAccountId, region });
    }
  } else if (defaultRegion) {
    regions = [defaultRegion];
  } else {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      'no region: pass --regions or --all-regions, or set AWS_REGION or a profile region',
    );
  }
  regions.sort();
  return { callerAccountId, partition, accounts, regions };
}
