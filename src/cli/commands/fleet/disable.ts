/** `fleet disable`: HttpEndpoint=disabled on selected instances, journalled. */
import { planDisable } from '../../../fleet/plan/disable.js';
import { runInstanceChange } from '../../../fleet/run/instances.js';
import type { CommandSpec } from '../../context.js';
import { addInstanceChangeOptions, readInstanceChangeOptions } from '../../fleet-options.js';
import { changePresenter, finishChange, runIo } from '../../fleet-run.js';

export const disableCommand: CommandSpec = {
  name: 'disable',
  summary:
    'Disable the metadata endpoint (HttpEndpoint=disabled) on selected instances; keeps every other option. Journalled.',
  examples: [
    ['imdsguard fleet disable --instances i-0123456789abcdef0', 'print the plan for one instance'],
    [
      'imdsguard fleet disable --tags role=batch,env=prod --yes',
      'disable IMDS on every instance tagged role=batch AND env=prod',
    ],
  ],
  configure(cmd, ctx) {
    addInstanceChangeOptions(cmd);
    cmd.action(async (raw: Record<string, unknown>) => {
      const args = readInstanceChangeOptions(raw, ctx);
      const outcome = await runInstanceChange(
        { plan: planDisable, args: { command: 'disable' } },
        { ...args, onlyReady: null },
        runIo(ctx),
        ctx.env,
        changePresenter(ctx, args.out),
      );
      finishChange(ctx, args.verbose, outcome);
    });
  },
};
