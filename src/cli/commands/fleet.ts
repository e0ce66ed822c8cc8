import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const fleetCommand: CommandSpec = {
  name: 'fleet',
  summary: 'Inventory, measure, harden and roll back IMDS settings across an AWS fleet.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'fleet is not implemented yet');
    });
  },
};
