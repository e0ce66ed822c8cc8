/**
 * `imdsguard fleet`: one subcommand per file in this folder, each a CommandSpec like every other
 * command. The use cases they call live in src/fleet/run.
 */
import type { CommandSpec } from '../../context.js';
import { withExamples } from '../../context.js';
import { defaultsCommand } from './defaults.js';
import { disableCommand } from './disable.js';
import { discoverCommand } from './discover.js';
import { enableCommand } from './enable.js';
import { guardrailsCommand } from './guardrails.js';
import { hardenCommand } from './harden.js';
import { hopLimitCommand } from './hop-limit.js';
import { relaxCommand } from './relax.js';
import { reportCommand } from './report.js';
import { rolesCommand } from './roles.js';
import { rollbackCommand } from './rollback.js';
import { templatesCommand } from './templates.js';
import { usageCommand } from './usage.js';

/** The fleet subcommands, in the order --help lists them. */
export const FLEET_SUBCOMMANDS: readonly CommandSpec[] = [
  discoverCommand,
  rolesCommand,
  usageCommand,
  hardenCommand,
  disableCommand,
  hopLimitCommand,
  relaxCommand,
  enableCommand,
  rollbackCommand,
  templatesCommand,
  defaultsCommand,
  guardrailsCommand,
  reportCommand,
];

export const fleetCommand: CommandSpec = {
  name: 'fleet',
  summary: 'Inventory, measure, harden and roll back IMDS settings across an AWS fleet.',
  examples: [
    ['imdsguard fleet discover --all-regions', 'IMDS posture of every instance in every enabled region'],
    [
      'imdsguard fleet roles --org --role OrganizationAccountAccessRole',
      'instance profiles across the organization',
    ],
  ],
  configure(cmd, ctx) {
    for (const sub of FLEET_SUBCOMMANDS) {
      const c = cmd.command(sub.name).description(sub.summary);
      // Inherit the program's output routing and exitOverride (set on `cmd` by program.ts).
      c.copyInheritedSettings(cmd);
      sub.configure(c, ctx);
      withExamples(c, sub.examples);
    }
  },
};
