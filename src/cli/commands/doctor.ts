import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const doctorCommand: CommandSpec = {
  name: 'doctor',
  summary: 'Check the redirect, the guard, its exemption, IMDS reachability and capabilities on this host.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'doctor is not implemented yet');
    });
  },
};
