/** `fleet disable`: HttpEndpoint=disabled on selected instances, journalled. */
import { planDisable } from '../../../fleet/plan/disable.js';
import type { CommandSpec } from '../../context.js';
import { instanceChangeCommand } from '../../fleet-run.js';

export const disableCommand: CommandSpec = {
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
  configure: instanceChangeCommand({ plan: planDisable, args: { command: 'disable' } }),
};
