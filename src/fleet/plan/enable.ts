/**
 * PURE: `fleet enable` turns a disabled metadata endpoint back on (HttpEndpoint=enabled) on selected
 * instances. Every other option is kept exactly, HttpTokens included: an instance disabled while it
 * required tokens comes back requiring them.
 */
import { buildPlan } from './instances.js';
import type { SelectionResult } from './selection.js';
import { type ChangePlan, matchesTarget, skip } from './types.js';

/** HttpEndpoint=enabled; every other field kept. */
export function planEnable(sel: SelectionResult): ChangePlan {
  return buildPlan('enable', sel, (before) => {
    const after = { ...before, httpEndpoint: 'enabled' as const };
    return matchesTarget(before, after)
      ? skip('already-compliant', 'the endpoint is already enabled')
      : after;
  });
}
