import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'Write an HTML report of the guard events on this host.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'report is not implemented yet');
    });
  },
};
