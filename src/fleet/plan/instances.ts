/**
 * PURE: instance change plans. Each plan keeps every field it does not mean to change exactly as it
 * is (the applier sends them all explicitly), and never re-enables a disabled metadata endpoint.
 */
import type { InstanceRecord } from '../inventory/model.js';
import type { SelectionResult } from './selection.js';
import {
  type ChangeKind,
  type ChangePlan,
  type InstanceItem,
  type MetadataValues,
  matchesTarget,
  metadataValues,
  type SkipInfo,
  skip,
} from './types.js';

export const HOP_LIMIT_RANGE = { min: 1, max: 64 } as const;

/** Decides one instance: the options after the change, or why it is skipped. */
type Decide = (before: MetadataValues, i: InstanceRecord) => MetadataValues | SkipInfo;

function isSkip(x: MetadataValues | SkipInfo): x is SkipInfo {
  return (x as SkipInfo).reason !== undefined;
}

function buildPlan(kind: ChangeKind, sel: SelectionResult, decide: Decide): ChangePlan {
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

/** HttpTokens=required; every other field kept; disabled endpoints stay disabled (skipped). */
export function planHarden(sel: SelectionResult): ChangePlan {
  return buildPlan('harden', sel, (before) => {
    if (before.httpEndpoint === 'disabled') return skip('endpoint-disabled');
    const after = { ...before, httpTokens: 'required' as const };
    return matchesTarget(before, after) ? skip('already-compliant', 'HttpTokens is already required') : after;
  });
}

/** HttpEndpoint=disabled; every other field kept. */
export function planDisable(sel: SelectionResult): ChangePlan {
  return buildPlan('disable', sel, (before) => {
    const after = { ...before, httpEndpoint: 'disabled' as const };
    return matchesTarget(before, after)
      ? skip('already-compliant', 'the endpoint is already disabled')
      : after;
  });
}

/** HttpPutResponseHopLimit=n (1..64); every other field kept. */
export function planHopLimit(sel: SelectionResult, hopLimit: number): ChangePlan {
  if (!Number.isInteger(hopLimit) || hopLimit < HOP_LIMIT_RANGE.min || hopLimit > HOP_LIMIT_RANGE.max) {
    throw new RangeError(`hop limit ${hopLimit} is out of range 1..64`);
  }
  return buildPlan('hop-limit', sel, (before) => {
    const after = { ...before, httpPutResponseHopLimit: hopLimit };
    return matchesTarget(before, after)
      ? skip('already-compliant', `the hop limit is already ${hopLimit}`)
      : after;
  });
}
