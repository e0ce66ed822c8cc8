import type { Command } from 'commander';
import { ImdsguardError } from '../../errors.js';
import { AUTH_HINT } from '../../fleet/aws/errors.js';
import type { CollectOptions } from '../../fleet/inventory/collect.js';
import type { Inventory } from '../../fleet/inventory/model.js';
import { findFindings, SEVERITIES, type Severity } from '../../fleet/posture/findings.js';
import { groupByRole } from '../../fleet/posture/roles.js';
import { summarize } from '../../fleet/posture/summary.js';
import {
  discoverDocument,
  findingsByInstance,
  instanceColumns,
  type RunStats,
  renderDiscover,
  renderRoles,
  rolesDocument,
} from '../../report/fleet.js';
import { writeOutput } from '../../report/output.js';
import { type CliContext, type CommandSpec, withExamples } from '../context.js';
import { addHistoryOptions, recordSnapshot } from '../fleet/history.js';
import { FLEET_CHANGE_SUBCOMMANDS } from '../fleet/index.js';
import { reportSubcommand } from '../fleet/report.js';
import { addUsageOptions, discoverUsageText, reportUsageFailures, usageSubcommand } from '../fleet/usage.js';
import {
  addFleetOptions,
  collectWithProgress,
  type FleetSession,
  finishFleetRun,
  openFleetSession,
  outputFormat,
  parseFleetOptions,
} from '../fleet-options.js';
import { parseChoice } from '../options.js';

/**
 * One `fleet` subcommand. Each is a row of FLEET_SUBCOMMANDS; a subcommand that is not built yet is a
 * notImplemented() row (later work replaces the row with its own module's spec).
 */
export interface FleetSubcommand {
  readonly name: string;
  readonly summary: string;
  readonly examples: ReadonlyArray<readonly [string, string]>;
  configure(cmd: Command, ctx: CliContext): void;
}

function stats(session: FleetSession): RunStats {
  const snap = session.factory.counter.snapshot();
  return {
    durationMs: Date.now() - session.startedAt,
    apiCalls: snap.total,
    apiCallsByOperation: snap.byOperation,
  };
}

/** When every scan failed on credentials, one clear error beats a report of N identical failures. */
function throwIfAllAuth(inv: Inventory): void {
  if (inv.scans.length === 0 || inv.scans.some((s) => s.status !== 'failed')) return;
  const first = inv.failures[0];
  if (first && inv.failures.every((f) => f.code === 'IMDSGUARD_E_AWS_AUTH')) {
    throw new ImdsguardError('IMDSGUARD_E_AWS_AUTH', first.message, { hint: AUTH_HINT });
  }
}

function reportFailures(inv: Inventory, ctx: CliContext): void {
  if (inv.failures.length === 0) return;
  ctx.stderr.write(
    `imdsguard: ${inv.failures.length} partial failure(s); every other account and region was scanned:\n`,
  );
  for (const f of inv.failures.slice(0, 20)) {
    ctx.stderr.write(`  ${f.accountId ?? '-'} ${f.region ?? '-'} ${f.stage}: ${f.message} [${f.code}]\n`);
  }
  if (inv.failures.length > 20) ctx.stderr.write(`  ... ${inv.failures.length - 20} more in the output\n`);
  ctx.exitCode = 1;
}

/**
 * Rejects when the user stops the command (Ctrl-C) during the scan, which can take minutes. A
 * shutdown promise that had already resolved when the command started (in-process test contexts
 * resolve it up front to stop long-running commands) does not interrupt a one-shot scan: only a
 * signal that arrives after the scan started does.
 */
function interruption(ctx: CliContext): Promise<never> {
  let armed = false;
  setImmediate(() => {
    armed = true;
  });
  return ctx.shutdown.then((signal) => {
    if (!armed) return new Promise<never>(() => {});
    throw new ImdsguardError(
      'IMDSGUARD_E_INTERRUPTED',
      `stopped by ${signal} before the scan finished; nothing was written`,
    );
  });
}

/**
 * collectInventory with a progress line on stderr; rejects when `stopped` does (Ctrl-C) or when every
 * scan failed on credentials.
 */
async function scanInventory(
  session: FleetSession,
  concurrency: number,
  ctx: CliContext,
  stopped: Promise<never>,
  include?: CollectOptions['include'],
): Promise<Inventory> {
  const inv = await collectWithProgress(session, ctx, { concurrency, include, stopped });
  throwIfAllAuth(inv);
  return inv;
}

const SEVERITY_ORDER: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

const discover: FleetSubcommand = {
  name: 'discover',
  summary:
    'Inventory IMDS settings of every instance, template, group, AMI and account default; report findings.',
  examples: [
    ['imdsguard fleet discover', 'the profile region of the caller account, as a table on a terminal'],
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
    addHistoryOptions(addFleetOptions(cmd)).option(
      '--fail-on <severity>',
      `exit 1 when a finding of this severity or worse exists: ${SEVERITIES.join('|')}|none (default high)`,
      (v) => parseChoice(v, [...SEVERITIES, 'none'] as const, '--fail-on'),
    );
    addUsageOptions(
      cmd.option('--usage', 'add readiness from CloudWatch usage evidence (fleet usage) to every instance'),
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const opts = parseFleetOptions(raw);
      const failOn = (raw['failOn'] as Severity | 'none' | undefined) ?? 'high';
      const format = outputFormat(opts, ctx);
      const stopped = interruption(ctx);
      const session = await Promise.race([openFleetSession(opts, ctx), stopped]);
      try {
        const inv = await scanInventory(session, opts.concurrency, ctx, stopped);
        const summary = summarize(inv);
        const findings = findFindings(inv);
        const doc = discoverDocument(inv, summary, findings, stats(session));
        const withUsage =
          raw['usage'] === true
            ? await discoverUsageText(session, inv, doc, format, raw, opts.concurrency, ctx, renderDiscover, [
                ...instanceColumns(findingsByInstance(doc.findings)),
              ])
            : null;
        await writeOutput(ctx.stdout, withUsage?.text ?? renderDiscover(doc, format), opts.output, ctx.cwd);
        recordSnapshot(raw, ctx, {
          time: inv.generatedAt,
          source: 'fleet discover',
          failures: inv.failures.length,
          summary,
          findings,
        });
        finishFleetRun(session, opts, ctx);
        reportFailures(inv, ctx);
        if (withUsage) reportUsageFailures(withUsage.failures, ctx);
        if (failOn !== 'none' && findings.some((f) => SEVERITY_ORDER[f.severity] <= SEVERITY_ORDER[failOn])) {
          ctx.exitCode = 1;
        }
      } finally {
        session.close();
      }
    });
  },
};

const roles: FleetSubcommand = {
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
    addFleetOptions(cmd);
    cmd.action(async (raw: Record<string, unknown>) => {
      const opts = parseFleetOptions(raw);
      const format = outputFormat(opts, ctx);
      const stopped = interruption(ctx);
      const session = await Promise.race([openFleetSession(opts, ctx), stopped]);
      try {
        const inv = await scanInventory(session, opts.concurrency, ctx, stopped, {
          defaults: false,
          templates: false,
          autoScaling: false,
          images: false,
        });
        const doc = rolesDocument(inv, groupByRole(inv.instances), stats(session));
        await writeOutput(ctx.stdout, renderRoles(doc, format, inv.instances), opts.output, ctx.cwd);
        finishFleetRun(session, opts, ctx);
        reportFailures(inv, ctx);
      } finally {
        session.close();
      }
    });
  },
};

/** A registered subcommand whose implementation is still to come (issues 8 and 9). */
export function notImplemented(name: string, summary: string, usage = ''): FleetSubcommand {
  return {
    name,
    summary,
    examples: [],
    configure(cmd) {
      if (usage) cmd.usage(usage);
      cmd.allowUnknownOption(true).allowExcessArguments(true);
      cmd.action(() => {
        throw new ImdsguardError('IMDSGUARD_E_NOT_IMPLEMENTED', `fleet ${name} is not implemented yet`, {
          hint: 'fleet discover and fleet roles are available',
        });
      });
    },
  };
}

/** The fleet subcommands, in the order --help lists them. */
export const FLEET_SUBCOMMANDS: readonly FleetSubcommand[] = [
  discover,
  roles,
  usageSubcommand,
  ...FLEET_CHANGE_SUBCOMMANDS,
  reportSubcommand,
];

export const fleetCommand: CommandSpec = {
  name: 'fleet',
  summary: 'Inventory, measure, harden and roll back IMDS settings across an AWS fleet.',
  examples: [
    ['imdsguard fleet discover --all-regions', 'IMDS posture of every instance in every enabled region'],
    [
      'imdsguard fleet roles --org --role OrganizationAccountAccessRole',
      'instance profiles across the organization',
    ],
  ],
  configure(cmd, ctx) {
    for (const sub of FLEET_SUBCOMMANDS) {
      const c = cmd.command(sub.name).description(sub.summary);
      // Inherit the program's output routing and exitOverride (set on `cmd` by program.ts).
      c.copyInheritedSettings(cmd);
      sub.configure(c, ctx);
      withExamples(c, sub.examples);
    }
  },
};
