/**
 * `imdsguard fleet usage`: CloudWatch evidence of IMDSv1 calls per instance, and readiness to enforce
 * IMDSv2. Also the shared pieces other subcommands use:
 *
 *   addUsageOptions(cmd)                              --days, --metrics, --max-datapoints, --host-evidence
 *   parseUsageOptions(raw)                            -> UsageCliOptions
 *   measureReadiness(session, instances, opts, ctx)   -> { window, evidence, rows }   (discover --usage,
 *                                                        harden --only-ready)
 *   readinessFilter(rows) (fleet/posture/readiness.ts) -> a SelectionFilter for fleet/plan/selection.ts
 */
import type { Command } from 'commander';
import type { InstanceRecord, Inventory, ScanFailure } from '../../fleet/inventory/model.js';
import { assessFleet, countReadiness } from '../../fleet/posture/readiness.js';
import { collectUsage, type UsageEvidence } from '../../fleet/usage/collect.js';
import { indexHostEvidence, loadHostEvidence } from '../../fleet/usage/host-evidence.js';
import type { UsageMode } from '../../fleet/usage/queries.js';
import { USAGE_DEFAULTS, type UsageWindow, usageWindow } from '../../fleet/usage/window.js';
import type { Column } from '../../report/columns.js';
import type { RunStats } from '../../report/fleet.js';
import type { OutputFormat } from '../../report/output.js';
import { writeOutput } from '../../report/output.js';
import { createProgress } from '../../report/progress.js';
import {
  type DiscoverUsageSection,
  renderDiscoverWithUsage,
  renderUsage,
  sortUsageRows,
  type UsageDocument,
  type UsageRow,
} from '../../report/usage.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import type { CliContext } from '../context.js';
import {
  addFleetOptions,
  collectWithProgress,
  type FleetSession,
  finishFleetRun,
  openFleetSession,
  outputFormat,
  parseFleetOptions,
} from '../fleet-options.js';
import { parseChoice, parseIntInRange } from '../options.js';

export interface UsageCliOptions {
  days: number;
  /** auto | both (rejected is set by --rejected). */
  metrics: Exclude<UsageMode, 'rejected'>;
  maxDatapoints: number | undefined;
  hostEvidence: string[];
}

/** Adds --days, --metrics, --max-datapoints and --host-evidence. */
export function addUsageOptions(cmd: Command, withHostEvidence = true): Command {
  cmd
    .option(
      '--days <n>',
      `usage window, days (default ${USAGE_DEFAULTS.days}, at most ${USAGE_DEFAULTS.maxDays})`,
      (v) => parseIntInRange(v, 1, USAGE_DEFAULTS.maxDays, '--days'),
    )
    .option(
      '--metrics <mode>',
      'auto: one series per instance, the one its state can move (default); both: MetadataNoToken and MetadataNoTokenRejected for every instance',
      (v) => parseChoice(v, ['auto', 'both'] as const, '--metrics'),
    )
    .option(
      '--max-datapoints <n>',
      'GetMetricData MaxDatapoints per response (default 100800; less means more pages)',
      (v) => parseIntInRange(v, 1, 100_800, '--max-datapoints'),
    );
  if (withHostEvidence) {
    cmd.option(
      '--host-evidence <paths...>',
      '`imdsguard callers --json` files collected from hosts (files or directories of *.json); see docs/usage.md',
    );
  }
  return cmd;
}

export function parseUsageOptions(raw: Record<string, unknown>): UsageCliOptions {
  const he = raw['hostEvidence'];
  return {
    days: (raw['days'] as number | undefined) ?? USAGE_DEFAULTS.days,
    metrics: (raw['metrics'] as 'auto' | 'both' | undefined) ?? 'auto',
    maxDatapoints: raw['maxDatapoints'] as number | undefined,
    hostEvidence: Array.isArray(he) ? (he as string[]) : typeof he === 'string' ? [he] : [],
  };
}

export interface MeasureOptions {
  days: number;
  mode?: UsageMode | undefined;
  maxDatapoints?: number | undefined;
  concurrency?: number | undefined;
  hostEvidence?: string[] | undefined;
  /** Clock (tests): epoch ms. */
  now?: (() => number) | undefined;
}

export interface Measured {
  window: UsageWindow;
  evidence: UsageEvidence;
  rows: UsageRow[];
}

/**
 * Reads CloudWatch evidence for `instances` with the session's clients and decides readiness; joins
 * host evidence when given. Per-region CloudWatch failures are in evidence.failures (never thrown).
 */
export async function measureReadiness(
  session: FleetSession,
  instances: readonly InstanceRecord[],
  opts: MeasureOptions,
  ctx: CliContext,
): Promise<Measured> {
  const window = usageWindow((opts.now ?? Date.now)(), opts.days);
  const host =
    opts.hostEvidence && opts.hostEvidence.length > 0
      ? indexHostEvidence(await loadHostEvidence(opts.hostEvidence, ctx.cwd))
      : null;
  const progress = createProgress(ctx.stderr, 'regions');
  const evidence = await collectUsage(session.factory, session.targets.accounts, instances, {
    window,
    mode: opts.mode ?? 'auto',
    concurrency: opts.concurrency,
    maxDatapoints: opts.maxDatapoints,
    onProgress: (p) => progress.update({ ...p, instances: instances.length }),
  });
  progress.done();
  const rows: UsageRow[] = assessFleet(instances, evidence.series, window).map((r) => ({
    ...r,
    hostV1Callers: host ? (host(r)?.v1Callers ?? null) : null,
  }));
  // Name the host process in the detail of an instance that is not ready or broken.
  for (const r of rows) {
    const top = r.hostV1Callers?.[0];
    if (top && (r.readiness === 'not-ready' || r.readiness === 'broken')) {
      r.detail += `; on the host: ${top.exe ?? '(unattributed)'}${top.user !== null ? ` as ${top.user}` : ''} (${top.v1Calls} v1 call(s))`;
    }
  }
  return { window, evidence, rows: sortUsageRows(rows) };
}

function stats(session: FleetSession): RunStats {
  const snap = session.factory.counter.snapshot();
  return {
    durationMs: Date.now() - session.startedAt,
    apiCalls: snap.total,
    apiCallsByOperation: snap.byOperation,
  };
}

export function usageFailures(
  inv: Pick<Inventory, 'failures'>,
  evidence: UsageEvidence,
): UsageDocument['failures'] {
  return [
    ...inv.failures.map((f: ScanFailure) => ({ ...f, source: 'inventory' as const })),
    ...evidence.failures.map((f) => ({ ...f, source: 'cloudwatch' as const, stage: 'metrics' as const })),
  ];
}

export function reportUsageFailures(failures: UsageDocument['failures'], ctx: CliContext): void {
  if (failures.length === 0) return;
  ctx.stderr.write(
    `imdsguard: ${failures.length} partial failure(s); every other account and region was read:\n`,
  );
  for (const f of failures.slice(0, 20)) {
    ctx.stderr.write(`  ${f.accountId ?? '-'} ${f.region ?? '-'} ${f.stage}: ${f.message} [${f.code}]\n`);
  }
  if (failures.length > 20) ctx.stderr.write(`  ... ${failures.length - 20} more in the output\n`);
  ctx.exitCode = 1;
}

export const usageSubcommand: FleetSubcommand = {
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
      'imdsguard fleet usage --host-evidence ./callers/',
      'name the process still using IMDSv1 (files from `imdsguard callers --json` on each host)',
    ],
  ],
  configure(cmd, ctx) {
    addUsageOptions(addFleetOptions(cmd)).option(
      '--rejected',
      'only enforced instances with rejected IMDSv1 calls (broken after enforcement), with a rollback suggestion',
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const opts = parseFleetOptions(raw);
      const u = parseUsageOptions(raw);
      const rejectedOnly = raw['rejected'] === true;
      const format = outputFormat(opts, ctx);
      const session = await openFleetSession(opts, ctx);
      try {
        const inv = await collectWithProgress(session, ctx, {
          concurrency: opts.concurrency,
          include: { defaults: false, templates: false, autoScaling: false, images: false },
        });
        const m = await measureReadiness(
          session,
          inv.instances,
          {
            days: u.days,
            mode: rejectedOnly ? 'rejected' : u.metrics,
            maxDatapoints: u.maxDatapoints,
            concurrency: opts.concurrency,
            hostEvidence: u.hostEvidence,
          },
          ctx,
        );
        const rows = rejectedOnly ? m.rows.filter((r) => r.readiness === 'broken') : m.rows;
        const failures = usageFailures(inv, m.evidence);
        const doc: UsageDocument = {
          schemaVersion: 1,
          kind: 'imdsguard.fleet.usage',
          generatedAt: inv.generatedAt,
          window: reportedWindow(m.window),
          mode: m.evidence.mode,
          regions: inv.regions,
          accounts: inv.accounts.map((a) => a.accountId),
          // --rejected reads enforced instances only: count only those.
          counts: countReadiness(
            rejectedOnly
              ? m.rows.filter((r) => r.readiness === 'enforced' || r.readiness === 'broken')
              : m.rows,
          ),
          instances: rows,
          regionStats: m.evidence.regions,
          failures,
          stats: stats(session),
        };
        await writeOutput(ctx.stdout, renderUsage(doc, format), opts.output, ctx.cwd);
        finishFleetRun(session, opts, ctx);
        reportUsageFailures(failures, ctx);
        if (rejectedOnly && rows.length > 0) ctx.exitCode = 1;
      } finally {
        session.close();
      }
    });
  },
};

/** The window fields the usage documents carry (not the millisecond bounds). */
function reportedWindow(w: UsageWindow): UsageDocument['window'] {
  return { days: w.days, start: w.start, end: w.end, periodSeconds: w.periodSeconds, periods: w.periods };
}

/**
 * `fleet discover --usage`: measures readiness for the inventory's instances and renders the
 * discover document with it. Returns the text and the CloudWatch failures (the caller reports them).
 */
export async function discoverUsageText<
  D extends { instances: Array<{ accountId: string; region: string; instanceId: string }> },
>(
  session: FleetSession,
  inv: Inventory,
  doc: D,
  format: OutputFormat,
  raw: Record<string, unknown>,
  concurrency: number,
  ctx: CliContext,
  renderBase: (doc: D, format: OutputFormat) => string,
  baseCsvColumns: Column<D['instances'][number]>[],
): Promise<{ text: string; failures: UsageDocument['failures'] }> {
  const u = parseUsageOptions(raw);
  const m = await measureReadiness(
    session,
    inv.instances,
    {
      days: u.days,
      mode: u.metrics,
      maxDatapoints: u.maxDatapoints,
      concurrency,
      hostEvidence: u.hostEvidence,
    },
    ctx,
  );
  const section: DiscoverUsageSection = {
    window: reportedWindow(m.window),
    mode: m.evidence.mode,
    counts: countReadiness(m.rows),
    regionStats: m.evidence.regions,
    failures: m.evidence.failures,
  };
  return {
    text: renderDiscoverWithUsage(doc, m.rows, section, format, renderBase, baseCsvColumns),
    failures: usageFailures({ failures: [] }, m.evidence),
  };
}
