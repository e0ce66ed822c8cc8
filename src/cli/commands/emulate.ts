import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const emulateCommand: CommandSpec = {
  name: 'emulate',
  summary:
    'Run a faithful IMDSv1/v2 emulator (AWS, or another cloud flavour) for tests and readiness checks.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'emulate is not implemented yet');
    });
  },
};
