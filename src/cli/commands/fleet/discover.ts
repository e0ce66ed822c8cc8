/** `fleet discover`: the IMDS settings of every instance, template, group, AMI and account default. */
import { SEVERITIES, type Severity } from '../../../fleet/posture/findings.js';
import { runDiscover } from '../../../fleet/run/discover.js';
import { runDiscoverStream } from '../../../fleet/run/discover-stream.js';
import { discoverStream } from '../../../report/discover-stream.js';
import { renderDiscover } from '../../../report/fleet.js';
import { findingsByInstance, instanceColumns } from '../../../report/fleet-records.js';
import { openStreamedOutput } from '../../../report/output.js';
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
    [
      'imdsguard fleet discover --all-regions --format ndjson --output fleet.ndjson',
      'a large fleet: records are written as each region completes, memory stays bounded',
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
      const failsOn = (counts: Record<Severity, number>) =>
        failOn !== 'none' &&
        SEVERITIES.some((s) => counts[s] > 0 && SEVERITY_ORDER[s] <= SEVERITY_ORDER[failOn]);
      if ((format === 'ndjson' || format === 'csv') && usage === null) {
        // Streamed: written as each account and region scan completes, never held whole.
        const output = openStreamedOutput(ctx.stdout, out.output, ctx.cwd);
        const r = await runDiscoverStream(
          { fleet, history },
          discoverStream(format, output.write),
          runIo(ctx),
          ctx.env,
        );
        await output.close();
        printStats(ctx, raw['verbose'] === true, r.stats);
        if (r.failed || failsOn(r.findingCounts)) ctx.exitCode = 1;
        return;
      }
      const r = await runDiscover({ fleet, usage, history }, runIo(ctx), ctx.env);
      const text =
        r.usage === null
          ? renderDiscover(r.document, format)
          : renderDiscoverWithUsage(r.document, r.usage.rows, r.usage.section, format, renderDiscover, [
              ...instanceColumns(findingsByInstance(r.document.findings)),
            ]);
      await writeDocument(ctx, out, text);
      printStats(ctx, raw['verbose'] === true, r.stats);
      if (r.failed || failsOn(r.document.findingCounts)) ctx.exitCode = 1;
    });
  },
};
