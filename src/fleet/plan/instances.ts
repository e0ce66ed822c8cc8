/**
 * PURE: what every instance change plan shares (harden.ts, disable.ts, hop-limit.ts): one item per
 * selected instance, its options before and after, or why it is skipped. Each plan keeps every field
 * it does not mean to change exactly as it is (the applier sends them all explicitly).
 */
import type { InstanceRecord } from '../inventory/model.js';
import type { SelectionResult } from './selection.js';
import {
  type ChangeKind,
  type ChangePlan,
  type InstanceItem,
  type MetadataValues,
  metadataValues,
  type SkipInfo,
} from './types.js';

/** Decides one instance: the options after the change, or why it is skipped. */
export type Decide = (before: MetadataValues, i: InstanceRecord) => MetadataValues | SkipInfo;

function isSkip(x: MetadataValues | SkipInfo): x is SkipInfo {
  return (x as SkipInfo).reason !== undefined;
}

/** A plan of `kind` over the selection: selection skips first, then `decide` per instance. */
export function buildPlan(kind: ChangeKind, sel: SelectionResult, decide: Decide): ChangePlan {
  const items: InstanceItem[] = sel.selected.map(({ instance: i, skip: s }, seq) => {
    const before = metadataValues(i.metadataOptions);
    const decided = s ?? decide(before, i);
    const skipped = isSkip(decided);
    return {
      type: 'instance',
      seq,
      accountId: i.accountId,
      region: i.region,
      resourceId: i.instanceId,
      name: i.tags['Name'] ?? null,
      state: i.state,
      action: skipped ? 'skip' : 'change',
      skip: skipped ? decided : null,
      before,
      after: skipped ? before : decided,
    };
  });
  return { kind, rollbackOf: null, items, missing: [...sel.missing], notes: [] };
}
