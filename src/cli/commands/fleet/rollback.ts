/** `fleet rollback`: restores the exact previous settings of a change set from the journal. */
import { listChangeSets, runRollback } from '../../../fleet/run/rollback.js';
import { renderChangeSets } from '../../../report/changes.js';
import { readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import {
  addChangeOptions,
  addScanOptions,
  FLEET_OUTPUT,
  readChangeOptions,
  readFleetOptions,
} from '../../fleet-options.js';
import { changePresenter, finishChange, outputFormat, runIo, writeDocument } from '../../fleet-run.js';

export const rollbackCommand: CommandSpec = {
  name: 'rollback',
  summary:
    'Restore the exact previous metadata options (templates, defaults) of a change set from the journal.',
  examples: [
    ['imdsguard fleet rollback --journal changes.db', 'plan the rollback of the most recent change set'],
    ['imdsguard fleet rollback --journal changes.db --list', 'list the change sets of the journal'],
    [
      'imdsguard fleet rollback --change-set cs-20260122T184501Z-3f9a1c --journal changes.db --yes',
      'restore every instance of that change set exactly as it was',
    ],
  ],
  configure(cmd, ctx) {
    addChangeOptions(addScanOptions(cmd))
      .option(
        '--change-set <id>',
        'the change set to roll back (default: the most recent one of the journal)',
      )
      .option('--force', 'also restore resources someone changed since the change set')
      .option('--list', 'list the change sets of the journal and exit');
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const change = readChangeOptions(raw, ctx);
      if (raw['list'] === true) {
        const sets = listChangeSets(change.journal);
        const text = renderChangeSets(change.journal, sets, outputFormat(out, ctx));
        await writeDocument(ctx, out, text);
        return;
      }
      const outcome = await runRollback(
        {
          fleet,
          change,
          changeSet: typeof raw['changeSet'] === 'string' ? raw['changeSet'] : undefined,
          force: raw['force'] === true,
        },
        runIo(ctx),
        ctx.env,
        changePresenter(ctx, out),
      );
      finishChange(ctx, raw['verbose'] === true, outcome);
    });
  },
};
