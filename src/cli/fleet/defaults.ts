/**
 * fleet defaults [--set required]: shows the account-level IMDS defaults per region
 * (GetInstanceMetadataDefaults), or plans and applies HttpTokens=required (ModifyInstanceMetadataDefaults),
 * journalled and rollback-able. A field with no preference shows as no-preference.
 */
import { planDefaults } from '../../fleet/plan/defaults.js';
import { renderJson } from '../../report/json.js';
import { writeOutput } from '../../report/output.js';
import { renderTable } from '../../report/table.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import { addFleetOptions, outputFormat, parseFleetOptions } from '../fleet-options.js';
import { parseChoice } from '../options.js';
import {
  addChangeOptions,
  collectForChange,
  executePlan,
  openChangeSession,
  parseChangeOptions,
} from './change-run.js';

export const defaultsCommand: FleetSubcommand = {
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
    addChangeOptions(addFleetOptions(cmd)).option(
      '--set <tokens>',
      'set the HttpTokens default: required',
      (v) => parseChoice(v, ['required'] as const, '--set'),
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = parseFleetOptions(raw);
      const change = parseChangeOptions(raw, ctx);
      const { session, limiter } = await openChangeSession(fleet, ctx);
      try {
        const inv = await collectForChange(session, fleet, ctx, {
          defaults: true,
          templates: false,
          autoScaling: false,
          images: false,
        });
        if (raw['set'] === 'required') {
          await executePlan(ctx, {
            plan: planDefaults(inv.scans, { httpTokens: 'required' }),
            session,
            fleet,
            change,
            accounts: session.targets.accounts,
            args: { command: 'defaults', set: 'required', regions: session.targets.regions },
            limiter,
            concurrency: fleet.concurrency,
          });
          return;
        }
        const rows = inv.scans.filter((s) => s.defaults !== null);
        const format = outputFormat(fleet, ctx);
        const np = (v: string | number | null | undefined) =>
          v === null || v === undefined ? 'no-preference' : v;
        const text =
          format === 'table'
            ? renderTable(
                rows,
                [
                  { header: 'account', value: (s) => s.accountId },
                  { header: 'region', value: (s) => s.region },
                  { header: 'http_tokens', value: (s) => np(s.defaults?.httpTokens) },
                  { header: 'http_endpoint', value: (s) => np(s.defaults?.httpEndpoint) },
                  { header: 'hop_limit', value: (s) => np(s.defaults?.httpPutResponseHopLimit) },
                  { header: 'instance_metadata_tags', value: (s) => np(s.defaults?.instanceMetadataTags) },
                ],
                { empty: 'No region could be read.' },
              )
            : renderJson({
                schemaVersion: 1,
                defaults: rows.map((s) => ({ accountId: s.accountId, region: s.region, ...s.defaults })),
              });
        await writeOutput(ctx.stdout, text, fleet.output, ctx.cwd);
      } finally {
        session.close();
      }
    });
  },
};
