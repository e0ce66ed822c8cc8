import { planDisable } from '../../fleet/plan/instances.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import { addInstanceChangeOptions } from './change-run.js';
import { addFilterOptions } from './filters.js';
import { runInstanceChange } from './instance-change.js';

export const disableCommand: FleetSubcommand = {
  name: 'disable',
  summary:
    'Disable the metadata endpoint (HttpEndpoint=disabled) on selected instances; keeps every other option. Journalled.',
  examples: [
    ['imdsguard fleet disable --instances i-0123456789abcdef0', 'print the plan for one instance'],
    [
      'imdsguard fleet disable --tags role=batch,env=prod --yes',
      'disable IMDS on every instance tagged role=batch AND env=prod',
    ],
  ],
  configure(cmd, ctx) {
    addFilterOptions(addInstanceChangeOptions(cmd));
    cmd.action(async (raw: Record<string, unknown>) => {
      await runInstanceChange(ctx, raw, planDisable, { command: 'disable' });
    });
  },
};
