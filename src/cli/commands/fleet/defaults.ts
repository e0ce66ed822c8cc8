/**
 * `fleet defaults [--set required]`: shows the account-level IMDS defaults per region
 * (GetInstanceMetadataDefaults), or plans and applies HttpTokens=required
 * (ModifyInstanceMetadataDefaults), journalled and rollback-able. A field with no preference shows as
 * no-preference.
 */
import { runDefaults } from '../../../fleet/run/templates.js';
import { renderDefaults } from '../../../report/templates.js';
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
import { parseChoice } from '../../options.js';

export const defaultsCommand: CommandSpec = {
  name: 'defaults',
  summary:
    'Show the account-level IMDS defaults per region; --set required makes new launches require tokens (journalled).',
  examples: [
    ['imdsguard fleet defaults --all-regions', 'the defaults of every enabled region'],
    [
      'imdsguard fleet defaults --set required --all-regions --yes',
      'require tokens for new launches everywhere',
    ],
  ],
  configure(cmd, ctx) {
    addChangeOptions(addScanOptions(cmd)).option(
      '--set <tokens>',
      'set the HttpTokens default: required',
      (v) => parseChoice(v, ['required'] as const, '--set'),
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const change = readChangeOptions(raw, ctx);
      const set = raw['set'] === 'required' ? { httpTokens: 'required' as const } : null;
      const r = await runDefaults({ fleet, change, set }, runIo(ctx), ctx.env, changePresenter(ctx, out));
      if (set === null) {
        const text = renderDefaults(r.scans, outputFormat(out, ctx));
        await writeDocument(ctx, out, text);
      }
      finishChange(ctx, raw['verbose'] === true, { failed: r.failed, stats: r.outcome?.stats ?? null });
    });
  },
};
