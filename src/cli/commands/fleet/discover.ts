/** `fleet discover`: the IMDS settings of every instance, template, group, AMI and account default. */
import { SEVERITIES, type Severity } from '../../../fleet/posture/findings.js';
import { runDiscover } from '../../../fleet/run/discover.js';
import { findingsByInstance, instanceColumns, renderDiscover } from '../../../report/fleet.js';
import { renderDiscoverWithUsage } from '../../../report/usage.js';
import { readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import {
  addHistoryOptions,
  addScanOptions,
  addUsageOptions,
  FLEET_OUTPUT,
  readFleetOptions,
  readHistoryOption,
  readUsageOptions,
} from '../../fleet-options.js';
import { outputFormat, printStats, runIo, writeDocument } from '../../fleet-run.js';
import { parseChoice } from '../../options.js';

const SEVERITY_ORDER: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

export const discoverCommand: CommandSpec = {
  name: 'discover',
  summary:
    'Inventory IMDS settings of every instance, template, group, AMI and account default; report findings.',
  examples: [
    ['imdsguard fleet discover', 'the profile region of the caller account, as a table on a terminal'],
    ['imdsguard fleet discover -r eu-west-1 -p audit --json', 'one region with the audit profile, as JSON'],
    [
      'imdsguard fleet discover --all-regions --format json --output fleet.json',
      'every enabled region, one JSON document',
    ],
    [
      'imdsguard fleet discover --org --role OrganizationAccountAccessRole --regions us-east-1,eu-west-1 --format csv',
      'every account of the organization, one CSV row per instance',
    ],
  ],
  configure(cmd, ctx) {
    addScanOptions(cmd);
    addHistoryOptions(cmd).option(
      '--fail-on <severity>',
      `exit 1 when a finding of this severity or worse exists: ${SEVERITIES.join('|')}|none (default: high)`,
      (v) => parseChoice(v, [...SEVERITIES, 'none'] as const, '--fail-on'),
    );
    addUsageOptions(
      cmd.option(
        '--usage',
        'add readiness from CloudWatch usage evidence (as fleet usage) to every instance',
      ),
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const failOn = (raw['failOn'] as Severity | 'none' | undefined) ?? 'high';
      const usage = raw['usage'] === true ? readUsageOptions(raw, ctx) : null;
      const history = readHistoryOption(raw, ctx);
      const format = outputFormat(out, ctx);
      const r = await runDiscover({ fleet, usage, history }, runIo(ctx), ctx.env);
      const text =
        r.usage === null
          ? renderDiscover(r.document, format)
          : renderDiscoverWithUsage(r.document, r.usage.rows, r.usage.section, format, renderDiscover, [
              ...instanceColumns(findingsByInstance(r.document.findings)),
            ]);
      await writeDocument(ctx, out, text);
      printStats(ctx, raw['verbose'] === true, r.stats);
      if (r.failed) ctx.exitCode = 1;
      if (failOn !== 'none' && r.findings.some((f) => SEVERITY_ORDER[f.severity] <= SEVERITY_ORDER[failOn])) {
        ctx.exitCode = 1;
      }
    });
  },
};
