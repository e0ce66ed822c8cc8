/** PURE: instances grouped by account and instance profile (and its roles, when resolved). */
import { allowsImdsV1, compareStrings, type InstanceRecord } from '../inventory/model.js';
import { isLive } from './summary.js';

export interface RoleGroup {
  accountId: string;
  /** null: instances without an instance profile. */
  instanceProfileArn: string | null;
  instanceProfileName: string | null;
  /** null until roles are resolved (see InstanceRecord.roleNames). */
  roleNames: string[] | null;
  regions: string[];
  instances: number;
  running: number;
  /** Instances where IMDSv1 works: their role credentials are one SSRF away. */
  imdsV1Allowed: number;
  instanceIds: string[];
}

/** Groups every live instance (terminated and shutting-down left out); sorted by account, then profile. */
export function groupByRole(instances: readonly InstanceRecord[]): RoleGroup[] {
  const groups = new Map<string, RoleGroup>();
  for (const i of instances) {
    if (!isLive(i)) continue;
    const key = `${i.accountId}|${i.instanceProfileArn ?? ''}`;
    let g = groups.get(key);
    if (!g) {
      g = {
        accountId: i.accountId,
        instanceProfileArn: i.instanceProfileArn,
        instanceProfileName: i.instanceProfileName,
        roleNames: i.roleNames,
        regions: [],
        instances: 0,
        running: 0,
        imdsV1Allowed: 0,
        instanceIds: [],
      };
      groups.set(key, g);
    }
    g.instances += 1;
    if (i.state === 'running') g.running += 1;
    if (allowsImdsV1(i.metadataOptions)) g.imdsV1Allowed += 1;
    if (!g.regions.includes(i.region)) g.regions.push(i.region);
    g.instanceIds.push(i.instanceId);
  }
  const out = [...groups.values()];
  for (const g of out) {
    g.regions.sort();
    g.instanceIds.sort();
  }
  return out.sort(
    (a, b) =>
      compareStrings(a.accountId, b.accountId) ||
      (a.instanceProfileArn === null ? 1 : 0) - (b.instanceProfileArn === null ? 1 : 0) ||
      compareStrings(a.instanceProfileArn ?? '', b.instanceProfileArn ?? ''),
  );
}
