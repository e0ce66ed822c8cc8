/** The flow of harden, disable and hop-limit: select instances, plan, then executePlan. */

import type { SelectionResult } from '../../fleet/plan/selection.js';
import { selectInstances } from '../../fleet/plan/selection.js';
import type { ChangePlan } from '../../fleet/plan/types.js';
import type { CliContext } from '../context.js';
import { parseFleetOptions } from '../fleet-options.js';
import {
  collectForChange,
  executePlan,
  openChangeSession,
  parseChangeOptions,
  parseSelection,
} from './change-run.js';
import { buildSelectionFilters } from './filters.js';

export async function runInstanceChange(
  ctx: CliContext,
  raw: Record<string, unknown>,
  plan: (sel: SelectionResult) => ChangePlan,
  args: Record<string, unknown>,
): Promise<void> {
  const fleet = parseFleetOptions(raw);
  const criteria = await parseSelection(raw, ctx);
  const change = parseChangeOptions(raw, ctx);
  const { session, limiter } = await openChangeSession(fleet, ctx);
  try {
    const inventory = await collectForChange(session, fleet, ctx, {
      defaults: false,
      templates: false,
      autoScaling: false,
      images: false,
    });
    const filters = await buildSelectionFilters(raw, { ctx, session, inventory });
    const p = plan(selectInstances(inventory.instances, criteria, filters));
    await executePlan(ctx, {
      plan: p,
      session,
      fleet,
      change,
      accounts: session.targets.accounts,
      args: { ...args, regions: session.targets.regions, dryRun: change.dryRun },
      limiter,
      concurrency: fleet.concurrency,
    });
  } finally {
    session.close();
  }
}
