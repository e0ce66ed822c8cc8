import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary:
    'Start an emulator and a guard on loopback, replay real-client and attack requests, print verdicts.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'demo is not implemented yet');
    });
  },
};
