/** The fleet change subcommands (issue 8), registered by cli/commands/fleet.ts. */
import type { FleetSubcommand } from '../commands/fleet.js';
import { defaultsCommand } from './defaults.js';
import { disableCommand } from './disable.js';
import { guardrailsCommand } from './guardrails.js';
import { hardenCommand } from './harden.js';
import { hopLimitCommand } from './hop-limit.js';
import { rollbackCommand } from './rollback.js';
import { templatesCommand } from './templates.js';

/** In the order --help lists them. */
export const FLEET_CHANGE_SUBCOMMANDS: readonly FleetSubcommand[] = [
  hardenCommand,
  disableCommand,
  hopLimitCommand,
  rollbackCommand,
  templatesCommand,
  defaultsCommand,
  guardrailsCommand,
];
