import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const callersCommand: CommandSpec = {
  name: 'callers',
  summary: 'Per process: IMDSv1 and IMDSv2 calls, token requests, last seen (what breaks if v2 is enforced).',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'callers is not implemented yet');
    });
  },
};
