/**
 * `fleet report`: one self-contained HTML page (or the same numbers as JSON) of the fleet's IMDS
 * posture: overview, enforcement by account and region, readiness, regression sources, the trend from
 * the history, and every finding. From a live scan or a saved `fleet discover --format json`.
 */
import { resolve } from 'node:path';
import { ImdsguardError } from '../../../errors.js';
import { runReport } from '../../../fleet/run/report.js';
import { renderFleetHtml } from '../../../report/html/fleet.js';
import { renderJson } from '../../../report/json.js';
import { type OutputSpec, readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import {
  addHistoryOptions,
  addScanOptions,
  addUsageOptions,
  readFleetOptions,
  readHistoryOption,
  readUsageOptions,
} from '../../fleet-options.js';
import { printStats, runIo, writeDocument } from '../../fleet-run.js';

export const REPORT_FORMATS = ['html', 'json'] as const;
const OUTPUT: OutputSpec<(typeof REPORT_FORMATS)[number]> = { formats: REPORT_FORMATS, defaultText: 'html' };

export const reportCommand: CommandSpec = {
  name: 'report',
  summary:
    'One self-contained HTML report (or JSON) of IMDSv2 enforcement, readiness, regression sources, findings and the trend.',
  examples: [
    [
      'imdsguard fleet report --all-regions --output imds-report.html',
      'scan every enabled region, record the scan in the history, write the HTML report',
    ],
    [
      'imdsguard fleet report --org --role Audit --usage --days 30 --output report.html',
      'the whole organization, with readiness from 30 days of CloudWatch evidence',
    ],
    [
      'imdsguard fleet report --org --role Audit --usage --host-evidence cloudwatch-logs:/imdsguard/callers --output report.html',
      "readiness with the IMDSv1 process behind every not-ready instance, from the guards' CloudWatch Logs",
    ],
    [
      'imdsguard fleet report --input fleet.json --format json',
      'the report of a saved `fleet discover --format json`, as JSON (the same numbers as the HTML)',
    ],
  ],
  configure(cmd, ctx) {
    addScanOptions(cmd, OUTPUT);
    addHistoryOptions(cmd);
    addUsageOptions(cmd);
    cmd
      .option('--input <file>', 'a saved `fleet discover --format json` to report on, instead of scanning')
      .option(
        '--usage',
        'read CloudWatch evidence of IMDSv1 calls for the readiness breakdown (live scan only)',
      )
      .option('--usage-input <file>', 'a saved `fleet usage --format json` for the readiness breakdown');
    cmd.action(async (raw: Record<string, unknown>) => {
      const out = readOutputOptions(raw, OUTPUT);
      const fleet = readFleetOptions(raw);
      const usage = raw['usage'] === true ? readUsageOptions(raw, ctx) : null;
      const input = typeof raw['input'] === 'string' ? resolve(ctx.cwd, raw['input']) : undefined;
      const usageInput =
        typeof raw['usageInput'] === 'string' ? resolve(ctx.cwd, raw['usageInput']) : undefined;
      if (input !== undefined && usage !== null) {
        throw new ImdsguardError(
          'IMDSGUARD_E_USAGE',
          '--usage reads CloudWatch during a live scan; it cannot be used with --input',
          { hint: 'save a `fleet usage --format json` and pass it with --usage-input' },
        );
      }
      if (usageInput !== undefined && usage !== null) {
        throw new ImdsguardError('IMDSGUARD_E_USAGE', '--usage and --usage-input exclude each other');
      }
      if (raw['hostEvidence'] !== undefined && usage === null) {
        throw new ImdsguardError(
          'IMDSGUARD_E_USAGE',
          '--host-evidence joins host callers to measured readiness: add --usage',
        );
      }
      const history = readHistoryOption(raw, ctx);
      const r = await runReport({ fleet, input, usageInput, usage, history }, runIo(ctx), ctx.env);
      const text = out.format === 'json' ? renderJson(r.document) : renderFleetHtml(r.document);
      await writeDocument(ctx, out, text);
      printStats(ctx, raw['verbose'] === true, r.stats);
      if (r.failed) ctx.exitCode = 1;
    });
  },
};
