import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const guardCommand: CommandSpec = {
  name: 'guard',
  summary: 'Run the guard: a policy-enforcing reverse proxy in front of the metadata service.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'guard is not implemented yet');
    });
  },
};
