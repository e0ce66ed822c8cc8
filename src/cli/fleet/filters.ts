/**
 * Extra selection filters of the change commands (harden, disable, hop-limit). This is the one place
 * to plug in a filter such as `--only-ready` (issue 9): add its option in addFilterOptions, and return
 * its SelectionFilter from buildSelectionFilters. The planner shows every instance a filter leaves out
 * as skipped with reason `filtered` and the filter's own sentence.
 */
import type { Command } from 'commander';
import type { Inventory } from '../../fleet/inventory/model.js';
import type { SelectionFilter } from '../../fleet/plan/selection.js';
import { readinessFilter } from '../../fleet/posture/readiness.js';
import type { CliContext } from '../context.js';
import type { FleetSession } from '../fleet-options.js';
import {
  addUsageOptions,
  measureReadiness,
  parseUsageOptions,
  reportUsageFailures,
  usageFailures,
} from './usage.js';

/** Adds the filter options to a change command. */
export function addFilterOptions(cmd: Command): Command {
  // --only-ready (issue 9): harden only; readiness is evidence about IMDSv1 calls, which says
  // nothing about whether disabling the endpoint or changing the hop limit is safe.
  if (cmd.name() === 'harden') {
    addUsageOptions(
      cmd.option(
        '--only-ready',
        'only instances that are ready (see fleet usage): running through the whole --days window with zero IMDSv1 calls',
      ),
      false,
    );
  }
  return cmd;
}

export interface FilterContext {
  ctx: CliContext;
  session: FleetSession;
  inventory: Inventory;
}

/** The filters the parsed options ask for, in the order they apply. */
export async function buildSelectionFilters(
  raw: Record<string, unknown>,
  fc: FilterContext,
): Promise<SelectionFilter[]> {
  const filters: SelectionFilter[] = [];
  if (raw['onlyReady'] === true) {
    const u = parseUsageOptions(raw);
    const m = await measureReadiness(
      fc.session,
      fc.inventory.instances,
      { days: u.days, mode: 'auto', maxDatapoints: u.maxDatapoints },
      fc.ctx,
    );
    // An instance whose evidence could not be read is left out (unknown), and the run exits 1.
    reportUsageFailures(usageFailures({ failures: [] }, m.evidence), fc.ctx);
    filters.push(readinessFilter(m.rows));
  }
  return filters;
}
