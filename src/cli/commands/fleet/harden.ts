/** `fleet harden`: HttpTokens=required on selected instances (planHarden), journalled. */
import { planHarden } from '../../../fleet/plan/harden.js';
import { runInstanceChange } from '../../../fleet/run/instances.js';
import type { CommandSpec } from '../../context.js';
import {
  addInstanceChangeOptions,
  addUsageOptions,
  readInstanceChangeOptions,
  readUsageOptions,
} from '../../fleet-options.js';
import { changePresenter, finishChange, runIo } from '../../fleet-run.js';

export const hardenCommand: CommandSpec = {
  name: 'harden',
  summary:
    'Require IMDSv2 tokens (HttpTokens=required) on selected instances; keeps every other option and never re-enables a disabled endpoint. Journalled.',
  examples: [
    [
      'imdsguard fleet harden --tags env=staging',
      'print the plan for every staging instance (nothing is changed)',
    ],
    [
      'imdsguard fleet harden --tags env=staging --dry-run',
      'send every call with DryRun: checks permissions',
    ],
    [
      'imdsguard fleet harden --input-file ready.csv --exclude-tags team=legacy --yes --journal changes.db',
      'apply to the instances listed in the CSV, journalled in changes.db',
    ],
    [
      'imdsguard fleet harden --instance-ids i-0123456789abcdef0 -r eu-west-1 --json',
      'the plan for one instance of eu-west-1, as one JSON document',
    ],
  ],
  configure(cmd, ctx) {
    addInstanceChangeOptions(cmd);
    // Readiness is evidence about IMDSv1 calls: it says nothing about whether disabling the endpoint
    // or changing the hop limit is safe, so only harden has --only-ready.
    addUsageOptions(
      cmd.option(
        '--only-ready',
        'only instances that are ready (see fleet usage): running through the whole --days window with zero IMDSv1 calls',
      ),
      false,
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const args = readInstanceChangeOptions(raw, ctx);
      const onlyReady = raw['onlyReady'] === true ? readUsageOptions(raw, ctx) : null;
      const outcome = await runInstanceChange(
        { plan: planHarden, args: { command: 'harden' }, readsEnforcement: false },
        { ...args, onlyReady },
        runIo(ctx),
        ctx.env,
        changePresenter(ctx, args.out),
      );
      finishChange(ctx, args.verbose, outcome);
    });
  },
};
