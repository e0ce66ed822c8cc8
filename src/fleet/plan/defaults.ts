/**
 * PURE: the account-level IMDS defaults per region (GetInstanceMetadataDefaults /
 * ModifyInstanceMetadataDefaults). A null field is "no preference": launches then fall back to the AMI
 * and EC2's own defaults. To clear a field the API takes `no-preference` (hop limit: -1).
 * HttpTokensEnforced (since February 2026) is one of the fields: `fleet defaults --enforce` and
 * `--no-enforce` drive it, and a rollback restores it like the others. A region an Organizations
 * declarative policy manages cannot be changed from the account: markBlocked (blocked.ts) blocks it.
 */
import type { AccountDefaultsRecord, RegionScan } from '../inventory/model.js';
import { type ChangePlan, type DefaultsItem, skip } from './types.js';

export const DEFAULTS_FIELDS = [
  'httpTokens',
  'httpEndpoint',
  'httpPutResponseHopLimit',
  'instanceMetadataTags',
  'httpTokensEnforced',
] as const satisfies readonly (keyof AccountDefaultsRecord)[];

/** What `fleet defaults` sets: the HttpTokens default (--set), enforcement (--enforce, --no-enforce). */
export interface DefaultsChange {
  httpTokens?: 'required' | undefined;
  httpTokensEnforced?: 'enabled' | 'disabled' | undefined;
}

function describeChange(set: DefaultsChange): string {
  return [
    set.httpTokens ? `HttpTokens=${set.httpTokens}` : null,
    set.httpTokensEnforced ? `HttpTokensEnforced=${set.httpTokensEnforced}` : null,
  ]
    .filter((x) => x !== null)
    .join(' and ');
}

export function sameDefaults(a: AccountDefaultsRecord, b: AccountDefaultsRecord): boolean {
  return DEFAULTS_FIELDS.every((f) => a[f] === b[f]);
}

/**
 * Sets the HttpTokens default and/or enforcement in every scanned account and region whose defaults
 * were read, keeping every other field.
 */
export function planDefaults(scans: readonly RegionScan[], set: DefaultsChange): ChangePlan {
  const items: DefaultsItem[] = [];
  for (const s of scans) {
    if (s.status === 'failed' || s.defaults === null) continue;
    const before = { ...s.defaults };
    const after = {
      ...before,
      ...(set.httpTokens ? { httpTokens: set.httpTokens } : {}),
      ...(set.httpTokensEnforced ? { httpTokensEnforced: set.httpTokensEnforced } : {}),
    };
    const same = sameDefaults(before, after);
    items.push({
      type: 'account-defaults',
      seq: items.length,
      accountId: s.accountId,
      region: s.region,
      resourceId: `${s.accountId}/${s.region}`,
      action: same ? 'skip' : 'change',
      skip: same ? skip('already-compliant', `the defaults already have ${describeChange(set)}`) : null,
      before,
      after,
    });
  }
  return { kind: 'defaults', rollbackOf: null, items, missing: [], notes: [] };
}
