/**
 * What every fleet change command shares: the selection and change options, the plan -> confirm ->
 * journal -> apply -> verify flow, and the output. Each command module (harden.ts, disable.ts, ...)
 * only builds its plan.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ImdsguardError } from '../../errors.js';
import { type FleetChangeApi, sdkChangeApi } from '../../fleet/apply/api.js';
import { type ApplyResult, applyPlan } from '../../fleet/apply/apply.js';
import {
  type ChangeLog,
  type ChangeLogFormat,
  fileChangeLog,
  streamChangeLog,
} from '../../fleet/apply/changelog.js';
import { attachRateLimiter, RateLimiter } from '../../fleet/apply/rate-limit.js';
import type { AccountTarget } from '../../fleet/aws/clients.js';
import type { CollectOptions } from '../../fleet/inventory/collect.js';
import type { Inventory } from '../../fleet/inventory/model.js';
import { DEFAULT_JOURNAL_FILE, Journal } from '../../fleet/journal/store.js';
import { type InstanceRef, parseInstanceCsv } from '../../fleet/plan/csv.js';
import {
  parseInstanceIds,
  parseStates,
  parseTagPairs,
  type SelectionCriteria,
} from '../../fleet/plan/selection.js';
import { type ChangePlan, countPlan } from '../../fleet/plan/types.js';
import { writeOutput } from '../../report/output.js';
import type { CliContext } from '../context.js';
import {
  addFleetOptions,
  collectWithProgress,
  type FleetOptions,
  type FleetSession,
  finishFleetRun,
  openFleetSession,
  outputFormat,
} from '../fleet-options.js';
import { collect, parseChoice } from '../options.js';
import { changeDocument, renderChange } from './render.js';

export interface ChangeOptions {
  dryRun: boolean;
  yes: boolean;
  /** Absolute path of the journal. */
  journal: string;
  changeLog: ChangeLog;
}

/** --instances, --input-file, --tags, --exclude-tags, --exclude-instances, --states. */
export function addSelectionOptions(cmd: Command): Command {
  return cmd
    .option('--instances <ids>', 'instance ids, comma-separated (repeatable)', collect)
    .option(
      '--input-file <csv>',
      'CSV with a header row and an instance_id column (optional account_id, region columns); any number of rows',
    )
    .option(
      '--tags <k=v,...>',
      'only instances with every one of these tags (key AND value) (repeatable)',
      collect,
    )
    .option('--exclude-tags <k=v,...>', 'skip instances with any of these tags (repeatable)', collect)
    .option('--exclude-instances <ids>', 'skip these instance ids (repeatable)', collect)
    .option(
      '--states <list>',
      'only instances in these states: pending,running,stopping,stopped (default: all of them)',
    );
}

/** --dry-run, --yes, --journal, --change-log, --change-log-format. */
export function addChangeOptions(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'send every call with DryRun=true: checks permissions, changes nothing')
    .option(
      '-y, --yes',
      'apply the plan without asking (otherwise: confirm on a terminal, or only print the plan)',
    )
    .option('--journal <file>', `the change journal, SQLite (default ./${DEFAULT_JOURNAL_FILE})`)
    .option('--change-log <file>', 'append one line per action to FILE (default: text lines on stderr)')
    .option(
      '--change-log-format <format>',
      'json (JSON Lines) or text (default: json for a file, text on stderr)',
      (v) => parseChoice(v, ['json', 'text'] as const, '--change-log-format'),
    );
}

/** Adds the fleet, selection and change options of harden, disable and hop-limit. */
export function addInstanceChangeOptions(cmd: Command): Command {
  return addChangeOptions(addSelectionOptions(addFleetOptions(cmd)));
}

function strings(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v
    .flatMap((x) => String(x).split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Reads the selection options (and the --input-file CSV). */
export async function parseSelection(
  raw: Record<string, unknown>,
  ctx: CliContext,
): Promise<SelectionCriteria> {
  let instances: InstanceRef[] | null = null;
  const ids = parseInstanceIds(strings(raw['instances']), '--instances');
  if (ids.length > 0) instances = ids.map((instanceId) => ({ instanceId, accountId: null, region: null }));
  const file = raw['inputFile'];
  if (typeof file === 'string') {
    const path = resolve(ctx.cwd, file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new ImdsguardError(
        'IMDSGUARD_E_INPUT_FILE',
        `cannot read --input-file ${path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const rows = parseInstanceCsv(text, file);
    instances = [...(instances ?? []), ...rows];
  }
  const statesRaw = typeof raw['states'] === 'string' ? strings([raw['states']]) : [];
  return {
    instances,
    tags: parseTagPairs(strings(raw['tags']), '--tags'),
    excludeTags: parseTagPairs(strings(raw['excludeTags']), '--exclude-tags'),
    excludeInstanceIds: parseInstanceIds(strings(raw['excludeInstances']), '--exclude-instances'),
    states: statesRaw.length > 0 ? parseStates(statesRaw) : null,
  };
}

export function parseChangeOptions(raw: Record<string, unknown>, ctx: CliContext): ChangeOptions {
  const journal = resolve(
    ctx.cwd,
    typeof raw['journal'] === 'string' ? raw['journal'] : DEFAULT_JOURNAL_FILE,
  );
  const logFile = typeof raw['changeLog'] === 'string' ? raw['changeLog'] : undefined;
  const fmt = raw['changeLogFormat'] as ChangeLogFormat | undefined;
  const changeLog =
    logFile !== undefined && logFile !== '-'
      ? fileChangeLog(resolve(ctx.cwd, logFile), fmt ?? 'json')
      : streamChangeLog(ctx.stderr, fmt ?? 'text');
  return { dryRun: raw['dryRun'] === true, yes: raw['yes'] === true, journal, changeLog };
}

/** Opens the session with the change-run rate limiter on every account x region EC2 client. */
export async function openChangeSession(
  opts: FleetOptions,
  ctx: CliContext,
): Promise<{ session: FleetSession; limiter: RateLimiter }> {
  // Standard retries: the rate limiter below already paces every attempt to the API's bucket; the
  // SDK's adaptive mode would add its own, much slower, client-side limiter after a throttle.
  const session = await openFleetSession(opts, ctx, { retryMode: 'standard' });
  const limiter = new RateLimiter();
  attachLimiter(session, session.targets.accounts, limiter);
  return { session, limiter };
}

export function attachLimiter(
  session: FleetSession,
  accounts: readonly AccountTarget[],
  limiter: RateLimiter,
): void {
  for (const a of accounts)
    for (const region of session.targets.regions)
      attachRateLimiter(session.factory.ec2(a, region), limiter, { accountId: a.accountId, region });
}

/** Collects the inventory a change needs, with progress on stderr; scan failures are reported. */
export async function collectForChange(
  session: FleetSession,
  opts: FleetOptions,
  ctx: CliContext,
  include: CollectOptions['include'],
): Promise<Inventory> {
  const inv = await collectWithProgress(session, ctx, { concurrency: opts.concurrency, include });
  if (inv.failures.length > 0) {
    if (inv.scans.length > 0 && inv.scans.every((s) => s.status === 'failed')) {
      const f = inv.failures[0];
      throw new ImdsguardError(
        (f?.code as 'IMDSGUARD_E_AWS') ?? 'IMDSGUARD_E_AWS',
        `no account and region could be read: ${f?.message ?? 'unknown error'}`,
        { hint: f?.hint ?? undefined },
      );
    }
    ctx.stderr.write(`imdsguard: ${inv.failures.length} scan failure(s); nothing is changed there:\n`);
    for (const f of inv.failures.slice(0, 20))
      ctx.stderr.write(`  ${f.accountId ?? '-'} ${f.region ?? '-'} ${f.stage}: ${f.message} [${f.code}]\n`);
    ctx.exitCode = 1;
  }
  return inv;
}

export interface ExecuteInput {
  plan: ChangePlan;
  session: FleetSession;
  fleet: FleetOptions;
  change: ChangeOptions;
  /** Accounts the change set acts in (recorded so a rollback can reach them). */
  accounts: AccountTarget[];
  args: Record<string, unknown>;
  limiter: RateLimiter;
  /** Calls in flight per account + region. */
  concurrency: number;
  /** For tests: another API than the SDK's. */
  api?: FleetChangeApi;
}

/**
 * Prints the plan; applies it with --yes (or after a confirmation on a terminal); journals it;
 * prints the results. Sets ctx.exitCode = 1 when a change failed or did not verify.
 */
export async function executePlan(ctx: CliContext, input: ExecuteInput): Promise<ApplyResult | null> {
  const { plan, fleet, change } = input;
  const format = outputFormat(fleet, ctx);
  const counts = countPlan(plan);
  // On a terminal the plan is printed first, before any question or call; the results follow as a
  // compact table. Scripts (json, csv, ndjson, --output) get one document at the end.
  const planFirst = format === 'table' && fleet.output === undefined;
  const show = async (applied: boolean, result: ApplyResult | null) => {
    const doc = changeDocument(plan, {
      dryRun: change.dryRun,
      applied,
      journal: applied ? change.journal : null,
      result,
    });
    const text = renderChange(doc, format, { resultsOnly: planFirst && result !== null });
    await writeOutput(ctx.stdout, text, fleet.output, ctx.cwd);
  };
  if (plan.missing.length > 0) {
    ctx.stderr.write(
      `imdsguard: ${plan.missing.length} requested instance(s) not found: ${plan.missing.slice(0, 20).join(', ')}\n`,
    );
  }
  if (counts.change === 0) {
    await show(false, null);
    ctx.stderr.write('Nothing to change.\n');
    return null;
  }
  if (planFirst) await show(false, null);
  if (!change.dryRun && !change.yes) {
    const ok = await ctx.confirm(`Apply ${counts.change} change(s) (${plan.kind})?`);
    if (!ok) {
      if (!planFirst) await show(false, null);
      ctx.stderr.write(
        `No changes were made. To apply this plan, run the same command with --yes (or --dry-run first to check permissions).\n`,
      );
      return null;
    }
  }
  const journal = Journal.open(change.journal);
  const stop = new AbortController();
  let stopped = false;
  void ctx.shutdown.then(() => {
    stopped = true;
    stop.abort();
  });
  try {
    const changeSetId = journal.createChangeSet({
      plan,
      dryRun: change.dryRun,
      args: input.args,
      accounts: input.accounts,
    });
    ctx.stderr.write(
      `${change.dryRun ? 'Dry run' : 'Applying'}: change set ${changeSetId} (journal ${change.journal})\n`,
    );
    const api = input.api ?? sdkChangeApi(input.session.factory, input.accounts, input.limiter);
    const result = await applyPlan(plan, api, {
      journal,
      changeSetId,
      dryRun: change.dryRun,
      concurrency: input.concurrency,
      signal: stop.signal,
      changeLog: change.changeLog,
    });
    await show(true, result);
    finishFleetRun(input.session, fleet, ctx);
    if (result.failures > 0) {
      ctx.stderr.write(
        `imdsguard: ${result.failures} change(s) ${change.dryRun ? 'would fail' : 'failed or did not verify'} [IMDSGUARD_E_CHANGE_FAILED]; the others were ${change.dryRun ? 'checked' : 'applied'}.\n`,
      );
      ctx.exitCode = 1;
    }
    if (result.interrupted) {
      ctx.stderr.write(
        `imdsguard: stopped${stopped ? ' on request' : ''}; unsent changes stay planned in ${changeSetId}. Run the same command again to finish (already-applied instances are skipped), or roll back with: imdsguard fleet rollback --change-set ${changeSetId} --journal ${change.journal}\n`,
      );
      ctx.exitCode = 1;
    } else if (!change.dryRun) {
      ctx.stderr.write(
        `Roll back with: imdsguard fleet rollback --change-set ${changeSetId} --journal ${change.journal}\n`,
      );
    }
    return result;
  } finally {
    journal.close();
  }
}
