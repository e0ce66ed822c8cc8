import { ImdsguardError } from '../../errors.js';
import type { CommandSpec } from '../context.js';

export const installCommand: CommandSpec = {
  name: 'install',
  summary:
    'Print or apply the redirect rules, service user and systemd unit that put the guard in front of IMDS.',
  examples: [],
  configure(cmd) {
    cmd.action(() => {
      throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', 'install is not implemented yet');
    });
  },
};
