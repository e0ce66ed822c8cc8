/** PURE: `fleet hop-limit <n>` sets HttpPutResponseHopLimit on selected instances. */
import { buildPlan } from './instances.js';
import type { SelectionResult } from './selection.js';
import { type ChangePlan, matchesTarget, skip } from './types.js';

export const HOP_LIMIT_RANGE = { min: 1, max: 64 } as const;

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
