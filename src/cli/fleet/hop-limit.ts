import { HOP_LIMIT_RANGE, planHopLimit } from '../../fleet/plan/instances.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import { parseIntInRange } from '../options.js';
import { addInstanceChangeOptions } from './change-run.js';
import { addFilterOptions } from './filters.js';
import { runInstanceChange } from './instance-change.js';

export const hopLimitCommand: FleetSubcommand = {
  name: 'hop-limit',
  summary:
    'Set the metadata PUT response hop limit (1..64) on selected instances; keeps every other option. Journalled.',
  examples: [
    ['imdsguard fleet hop-limit 1 --tags env=prod', 'plan: hop limit 1 (no containers) on production'],
    ['imdsguard fleet hop-limit 2 --tags eks:cluster-name=main --yes', 'hop limit 2 for container hosts'],
  ],
  configure(cmd, ctx) {
    cmd.argument('<n>', `the hop limit, ${HOP_LIMIT_RANGE.min}..${HOP_LIMIT_RANGE.max}`);
    addFilterOptions(addInstanceChangeOptions(cmd));
    cmd.action(async (n: string, raw: Record<string, unknown>) => {
      const hop = parseIntInRange(n, HOP_LIMIT_RANGE.min, HOP_LIMIT_RANGE.max, 'hop-limit <n>');
      await runInstanceChange(ctx, raw, (sel) => planHopLimit(sel, hop), {
        command: 'hop-limit',
        hopLimit: hop,
      });
    });
  },
};
