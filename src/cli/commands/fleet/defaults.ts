/**
 * `fleet defaults [--set required] [--enforce|--no-enforce] [--readiness]`: shows the account-level IMDS
 * defaults per region (GetInstanceMetadataDefaults: the defaults, HttpTokensEnforced, who manages them)
 * and, with --readiness, what enforcing IMDSv2 would break; or plans and applies HttpTokens=required
 * and/or HttpTokensEnforced (ModifyInstanceMetadataDefaults), journalled and rollback-able. A region
 * an AWS Organizations declarative policy manages is blocked in the plan, never sent.
 */
import { runDefaults } from '../../../fleet/run/templates.js';
import { renderDefaults } from '../../../report/templates.js';
import { readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import {
  addChangeOptions,
  addScanOptions,
  addUsageOptions,
  FLEET_OUTPUT,
  readChangeOptions,
  readFleetOptions,
  readUsageOptions,
} from '../../fleet-options.js';
import { changePresenter, finishChange, outputFormat, runIo, writeDocument } from '../../fleet-run.js';
import { parseChoice } from '../../options.js';

export const defaultsCommand: CommandSpec = {
  name: 'defaults',
  summary:
    'Show the account-level IMDS defaults, enforcement and who manages them per region; --set required, --enforce, --no-enforce change them (journalled).',
  examples: [
    ['imdsguard fleet defaults --all-regions', 'the defaults of every enabled region'],
    [
      'imdsguard fleet defaults --set required --all-regions --yes',
      'require tokens for new launches everywhere',
    ],
    [
      'imdsguard fleet defaults --readiness --all-regions',
      'per region: would enforcing IMDSv2 break anything (templates, groups, instances still using IMDSv1)',
    ],
    [
      'imdsguard fleet defaults --enforce --regions eu-west-1 --dry-run',
      'plan HttpTokensEnforced=enabled, with what it would break, and check the permission',
    ],
  ],
  configure(cmd, ctx) {
    addUsageOptions(
      addChangeOptions(addScanOptions(cmd))
        .option('--set <tokens>', 'set the HttpTokens default: required', (v) =>
          parseChoice(v, ['required'] as const, '--set'),
        )
        .option(
          '--enforce',
          'set HttpTokensEnforced=enabled: AWS then refuses launches, and HttpTokens=optional on instances, that are not tokens required',
        )
        .option('--no-enforce', 'set HttpTokensEnforced=disabled')
        .option(
          '--readiness',
          'add, per region, what enforcing IMDSv2 would break (templates, groups, launch configurations, instances still using IMDSv1); always with --enforce',
        ),
      false,
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const change = readChangeOptions(raw, ctx);
      const enforce: 'enabled' | 'disabled' | undefined =
        raw['enforce'] === true ? 'enabled' : raw['enforce'] === false ? 'disabled' : undefined;
      const set =
        raw['set'] === 'required' || enforce !== undefined
          ? {
              ...(raw['set'] === 'required' ? { httpTokens: 'required' as const } : {}),
              ...(enforce !== undefined ? { httpTokensEnforced: enforce } : {}),
            }
          : null;
      const readiness =
        raw['readiness'] === true || enforce === 'enabled' ? readUsageOptions(raw, ctx) : null;
      const r = await runDefaults(
        { fleet, change, set, readiness },
        runIo(ctx),
        ctx.env,
        changePresenter(ctx, out),
      );
      if (set === null) {
        const text = renderDefaults(r.scans, outputFormat(out, ctx), r.readiness);
        await writeDocument(ctx, out, text);
      }
      finishChange(ctx, raw['verbose'] === true, { failed: r.failed, stats: r.outcome?.stats ?? null });
    });
  },
};
