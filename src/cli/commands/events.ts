import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const eventsCommand: CommandSpec = {
  name: 'events',
  summary: 'Query recorded guard events.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'events is not implemented yet');
    });
  },
};
