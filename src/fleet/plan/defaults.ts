/**
 * PURE: the account-level IMDS defaults per region (GetInstanceMetadataDefaults /
 * ModifyInstanceMetadataDefaults). A null field is "no preference": launches then fall back to the AMI
 * and EC2's own defaults. To clear a field the API takes `no-preference` (hop limit: -1).
 */
import type { AccountDefaultsRecord, RegionScan } from '../inventory/model.js';
import { type ChangePlan, type DefaultsItem, skip } from './types.js';

export const DEFAULTS_FIELDS = [
  'httpTokens',
  'httpEndpoint',
  'httpPutResponseHopLimit',
  'instanceMetadataTags',
] as const satisfies readonly (keyof AccountDefaultsRecord)[];

export function sameDefaults(a: AccountDefaultsRecord, b: AccountDefaultsRecord): boolean {
  return DEFAULTS_FIELDS.every((f) => a[f] === b[f]);
}

/** Sets HttpTokens=required as the account default in every scanned account and region. */
export function planDefaults(scans: readonly RegionScan[], set: { httpTokens: 'required' }): ChangePlan {
  const items: DefaultsItem[] = [];
  for (const s of scans) {
    if (s.status === 'failed' || s.defaults === null) continue;
    const before = { ...s.defaults };
    const after = { ...before, httpTokens: set.httpTokens };
    const same = sameDefaults(before, after);
    items.push({
      type: 'account-defaults',
      seq: items.length,
      accountId: s.accountId,
      region: s.region,
      resourceId: `${s.accountId}/${s.region}`,
      action: same ? 'skip' : 'change',
      skip: same ? skip('already-compliant', 'the default already requires tokens') : null,
      before,
      after,
    });
  }
  return { kind: 'defaults', rollbackOf: null, items, missing: [], notes: [] };
}
