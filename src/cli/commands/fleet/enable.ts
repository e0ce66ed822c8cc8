/**
 * `fleet enable`: HttpEndpoint=enabled on selected instances whose metadata endpoint is disabled,
 * journalled. Every other option is kept, HttpTokens included.
 */
import { planEnable } from '../../../fleet/plan/enable.js';
import type { CommandSpec } from '../../context.js';
import { instanceChangeCommand } from '../../fleet-run.js';

export const enableCommand: CommandSpec = {
  name: 'enable',
  summary:
    'Re-enable the metadata endpoint (HttpEndpoint=enabled) on selected instances; keeps every other option, HttpTokens included. Journalled; blocked where AWS enforces IMDSv2 and the instance is on optional.',
  examples: [
    ['imdsguard fleet enable --instances i-0123456789abcdef0', 'print the plan for one instance'],
    [
      'imdsguard fleet enable --tags role=batch --states running,stopped --dry-run',
      'send every call with DryRun: checks permissions',
    ],
    [
      'imdsguard fleet enable --tags role=batch --yes --journal incident.db',
      'apply; fleet rollback --journal incident.db disables them again exactly',
    ],
  ],
  configure: instanceChangeCommand({ plan: planEnable, args: { command: 'enable' } }),
};
