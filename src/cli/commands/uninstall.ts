import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const uninstallCommand: CommandSpec = {
  name: 'uninstall',
  summary: 'Print or apply the removal of exactly what install added.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'uninstall is not implemented yet');
    });
  },
};
