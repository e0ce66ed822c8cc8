import type { CommandSpec } from '../context.js';
import { callersCommand } from './callers.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { emulateCommand } from './emulate.js';
import { eventsCommand } from './events.js';
import { fleetCommand } from './fleet.js';
import { guardCommand } from './guard.js';
import { installCommand } from './install.js';
import { reportCommand } from './report.js';
import { uninstallCommand } from './uninstall.js';

/** The command table: one module per command, in the order --help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  demoCommand,
  emulateCommand,
  guardCommand,
  eventsCommand,
  callersCommand,
  reportCommand,
  installCommand,
  uninstallCommand,
  doctorCommand,
  fleetCommand,
];
