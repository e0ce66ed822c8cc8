/**
 * PURE: `fleet relax` allows IMDSv1 again (HttpTokens=optional) on selected instances, for an incident
 * where the journal of the change to undo is not at hand. Every other option is kept exactly; an
 * instance whose endpoint is disabled is skipped (relax never re-enables it: that is `fleet enable`).
 * In a region where AWS enforces IMDSv2 (HttpTokensEnforced) the item is blocked by markBlocked.
 */
import { buildPlan } from './instances.js';
import type { SelectionResult } from './selection.js';
import { type ChangePlan, matchesTarget, skip } from './types.js';

/** HttpTokens=optional; every other field kept; disabled endpoints stay disabled (skipped). */
export function planRelax(sel: SelectionResult): ChangePlan {
  return buildPlan('relax', sel, (before) => {
    if (before.httpEndpoint === 'disabled') {
      return skip(
        'endpoint-disabled',
        'the metadata endpoint is disabled; relax never re-enables it (fleet enable does)',
      );
    }
    const after = { ...before, httpTokens: 'optional' as const };
    return matchesTarget(before, after) ? skip('already-compliant', 'HttpTokens is already optional') : after;
  });
}
