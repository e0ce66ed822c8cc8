/** `fleet usage`: CloudWatch evidence of IMDSv1 calls per instance, and readiness to enforce IMDSv2. */
import { runUsage } from '../../../fleet/run/usage.js';
import { renderUsage } from '../../../report/usage.js';
import { readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import {
  addScanOptions,
  addUsageOptions,
  FLEET_OUTPUT,
  readFleetOptions,
  readUsageOptions,
} from '../../fleet-options.js';
import { outputFormat, printStats, runIo, writeDocument } from '../../fleet-run.js';

export const usageCommand: CommandSpec = {
  name: 'usage',
  summary: 'CloudWatch evidence of IMDSv1 calls per instance, and readiness to enforce IMDSv2.',
  examples: [
    ['imdsguard fleet usage --regions us-east-1', 'v1 calls per instance over 14 days, and who is ready'],
    [
      'imdsguard fleet usage --all-regions --days 30 --format csv --output usage.csv',
      '30 days, every enabled region, one CSV row per instance',
    ],
    [
      'imdsguard fleet usage --rejected --regions us-east-1',
      'enforced instances whose IMDSv1 calls are now refused, with the rollback command',
    ],
    [
      'imdsguard fleet usage --org --role Audit --host-evidence cloudwatch-logs:/imdsguard/callers',
      "name the process behind every not-ready instance, from the guards' caller summary in each account and region",
    ],
    [
      'imdsguard fleet usage --host-evidence ./callers/',
      'name the process still using IMDSv1 (files from `imdsguard callers --json` on each host)',
    ],
  ],
  configure(cmd, ctx) {
    addUsageOptions(addScanOptions(cmd)).option(
      '--rejected',
      'only enforced instances with rejected IMDSv1 calls (broken after enforcement), with a rollback suggestion',
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const usage = readUsageOptions(raw, ctx);
      const rejectedOnly = raw['rejected'] === true;
      const format = outputFormat(out, ctx);
      const io = runIo(ctx);
      const r = await runUsage(fleet, rejectedOnly ? { ...usage, mode: 'rejected' } : usage, io, ctx.env);
      await writeDocument(ctx, out, renderUsage(r.document, format));
      printStats(ctx, raw['verbose'] === true, r.stats);
      if (r.failed) ctx.exitCode = 1;
      if (rejectedOnly && r.document.instances.length > 0) ctx.exitCode = 1;
    });
  },
};
