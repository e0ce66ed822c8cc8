/** `fleet hop-limit <n>`: HttpPutResponseHopLimit on selected instances, journalled. */
import { HOP_LIMIT_RANGE, planHopLimit } from '../../../fleet/plan/hop-limit.js';
import { runInstanceChange } from '../../../fleet/run/instances.js';
import type { CommandSpec } from '../../context.js';
import { addInstanceChangeOptions, readInstanceChangeOptions } from '../../fleet-options.js';
import { changePresenter, finishChange, runIo } from '../../fleet-run.js';
import { parseIntInRange } from '../../options.js';

export const hopLimitCommand: CommandSpec = {
  name: 'hop-limit',
  summary:
    'Set the metadata PUT response hop limit (1..64) on selected instances; keeps every other option. Journalled.',
  examples: [
    ['imdsguard fleet hop-limit 1 --tags env=prod', 'plan: hop limit 1 (no containers) on production'],
    ['imdsguard fleet hop-limit 2 --tags eks:cluster-name=main --yes', 'hop limit 2 for container hosts'],
  ],
  configure(cmd, ctx) {
    cmd.argument('<n>', `the hop limit, ${HOP_LIMIT_RANGE.min}..${HOP_LIMIT_RANGE.max}`);
    addInstanceChangeOptions(cmd);
    cmd.action(async (n: string, raw: Record<string, unknown>) => {
      const hop = parseIntInRange(n, HOP_LIMIT_RANGE.min, HOP_LIMIT_RANGE.max, 'hop-limit <n>');
      const args = readInstanceChangeOptions(raw, ctx);
      const outcome = await runInstanceChange(
        { plan: (sel) => planHopLimit(sel, hop), args: { command: 'hop-limit', hopLimit: hop } },
        { ...args, onlyReady: null },
        runIo(ctx),
        ctx.env,
        changePresenter(ctx, args.out),
      );
      finishChange(ctx, args.verbose, outcome);
    });
  },
};
