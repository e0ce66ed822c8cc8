/**
 * `fleet relax`: HttpTokens=optional on selected instances (IMDSv1 allowed again), journalled, for an
 * incident where the journal of the change to undo is not at hand. With the journal, `fleet rollback`
 * restores exactly what was there instead.
 */
import { planRelax } from '../../../fleet/plan/relax.js';
import type { CommandSpec } from '../../context.js';
import { instanceChangeCommand } from '../../fleet-run.js';

export const relaxCommand: CommandSpec = {
  name: 'relax',
  summary:
    'Allow IMDSv1 again (HttpTokens=optional) on selected instances, when no journal can roll back; keeps every other option, never re-enables a disabled endpoint. Journalled; blocked where AWS enforces IMDSv2.',
  examples: [
    [
      'imdsguard fleet relax --instances i-0123456789abcdef0 -r eu-west-1',
      'print the plan for one instance (nothing is changed)',
    ],
    [
      'imdsguard fleet relax --tags app=legacy-billing --dry-run',
      'send every call with DryRun: checks permissions',
    ],
    [
      'imdsguard fleet relax --tags app=legacy-billing --yes --journal incident.db',
      'apply in an incident; fleet rollback --journal incident.db undoes it exactly',
    ],
    [
      'imdsguard fleet rollback --journal changes.db',
      'when the journal of the hardening is at hand: the exact restore, preferred to relax',
    ],
  ],
  configure: instanceChangeCommand({ plan: planRelax, args: { command: 'relax' } }),
};
