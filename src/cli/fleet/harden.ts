import { planHarden } from '../../fleet/plan/instances.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import { addInstanceChangeOptions } from './change-run.js';
import { addFilterOptions } from './filters.js';
import { runInstanceChange } from './instance-change.js';

export const hardenCommand: FleetSubcommand = {
  name: 'harden',
  summary:
    'Require IMDSv2 tokens (HttpTokens=required) on selected instances; keeps every other option and never re-enables a disabled endpoint. Journalled.',
  examples: [
    [
      'imdsguard fleet harden --tags env=staging',
      'print the plan for every staging instance (nothing is changed)',
    ],
    [
      'imdsguard fleet harden --tags env=staging --dry-run',
      'send every call with DryRun: checks permissions',
    ],
    [
      'imdsguard fleet harden --input-file ready.csv --exclude-tags team=legacy --yes --journal changes.db',
      'apply to the instances listed in the CSV, journalled in changes.db',
    ],
  ],
  configure(cmd, ctx) {
    addFilterOptions(addInstanceChangeOptions(cmd));
    cmd.action(async (raw: Record<string, unknown>) => {
      await runInstanceChange(ctx, raw, planHarden, { command: 'harden' });
    });
  },
};
