/**
 * `fleet templates [--fix]`: launch templates whose default version launches IMDSv1 instances, the
 * Auto Scaling groups that still launch them (or launch configurations), and the AMIs in use without
 * ImdsSupport v2.0 (reported, never changed: that change cannot be undone). --fix plans, and with
 * --yes applies, a new version per template (HttpTokens=required, everything else inherited through
 * SourceVersion) made the default; rollback restores the previous default version.
 */
import { runTemplates } from '../../../fleet/run/templates.js';
import { renderTemplates } from '../../../report/templates.js';
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

export const templatesCommand: CommandSpec = {
  name: 'templates',
  summary:
    'Report launch templates, Auto Scaling groups and AMIs that launch IMDSv1 instances; --fix adds a tokens-required version as the default (journalled).',
  examples: [
    ['imdsguard fleet templates --all-regions', 'report the regression sources'],
    ['imdsguard fleet templates --fix --dry-run', 'check permissions for the fix'],
    ['imdsguard fleet templates --fix --yes --journal changes.db', 'fix every default version, journalled'],
  ],
  configure(cmd, ctx) {
    addChangeOptions(addScanOptions(cmd)).option(
      '--fix',
      'create a version with HttpTokens=required from each default version and make it the default',
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const change = readChangeOptions(raw, ctx);
      const fix = raw['fix'] === true;
      const r = await runTemplates({ fleet, change, fix }, runIo(ctx), ctx.env, changePresenter(ctx, out));
      if (!fix) {
        await writeDocument(ctx, out, renderTemplates(r.report, outputFormat(out, ctx)));
      }
      finishChange(ctx, raw['verbose'] === true, { failed: r.failed, stats: r.outcome?.stats ?? null });
    });
  },
};
