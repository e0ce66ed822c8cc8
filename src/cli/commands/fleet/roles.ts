/** `fleet roles`: instances grouped by instance profile (and role). */
import { runRoles } from '../../../fleet/run/discover.js';
import { renderRoles } from '../../../report/fleet.js';
import { readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import { addScanOptions, FLEET_OUTPUT, readFleetOptions } from '../../fleet-options.js';
import { outputFormat, printStats, runIo, writeDocument } from '../../fleet-run.js';

export const rolesCommand: CommandSpec = {
  name: 'roles',
  summary: 'Instances grouped by instance profile (and role): complete over every page and reservation.',
  examples: [
    [
      'imdsguard fleet roles --regions us-east-1',
      'which instance profiles are in use, and how many of their instances allow IMDSv1',
    ],
    [
      'imdsguard fleet roles --accounts 111111111111,222222222222 --role Audit --format csv',
      'one row per instance and profile',
    ],
  ],
  configure(cmd, ctx) {
    addScanOptions(cmd);
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const format = outputFormat(out, ctx);
      const r = await runRoles(fleet, runIo(ctx), ctx.env);
      await writeDocument(ctx, out, renderRoles(r.document, format, r.instances));
      printStats(ctx, raw['verbose'] === true, r.stats);
      if (r.failed) ctx.exitCode = 1;
    });
  },
};
