/**
 * PURE: the hardening planner. `fleet harden` requires IMDSv2 tokens (HttpTokens=required) on the
 * selected instances; every other metadata option is kept exactly as it is, and an instance whose
 * metadata endpoint is disabled is skipped: hardening never re-enables it (metabadger and AWS's own
 * EC2.8 remediation both did).
 */
import { buildPlan } from './instances.js';
import type { SelectionResult } from './selection.js';
import { type ChangePlan, matchesTarget, skip } from './types.js';

/** HttpTokens=required; every other field kept; disabled endpoints stay disabled (skipped). */
export function planHarden(sel: SelectionResult): ChangePlan {
  return buildPlan('harden', sel, (before) => {
    if (before.httpEndpoint === 'disabled') return skip('endpoint-disabled');
    const after = { ...before, httpTokens: 'required' as const };
    return matchesTarget(before, after) ? skip('already-compliant', 'HttpTokens is already required') : after;
  });
}
