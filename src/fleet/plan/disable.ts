/** PURE: `fleet disable` turns the metadata endpoint off (HttpEndpoint=disabled) on selected instances. */
import { buildPlan } from './instances.js';
import type { SelectionResult } from './selection.js';
import { type ChangePlan, matchesTarget, skip } from './types.js';

/** HttpEndpoint=disabled; every other field kept. */
export function planDisable(sel: SelectionResult): ChangePlan {
  return buildPlan('disable', sel, (before) => {
    const after = { ...before, httpEndpoint: 'disabled' as const };
    return matchesTarget(before, after)
      ? skip('already-compliant', 'the endpoint is already disabled')
      : after;
  });
}
