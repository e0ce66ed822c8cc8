/**
 * The flow every fleet change shares: show the plan, confirm, journal, apply under the rate limiter,
 * verify, show the results. A change that is not in the plan is never made; a dry run modifies
 * nothing; every change is journalled before it is sent.
 *
 *   openChangeSession(fleet, io, env)           -> session with the rate limiter on every EC2 client
 *   executePlan(run, io, present)               -> ChangeOutcome
 */
import { type ChangeDocument, changeDocument } from '../../report/changes.js';
import type { RunStats } from '../../report/fleet.js';
import { type FleetChangeApi, sdkChangeApi } from '../apply/api.js';
import { type ApplyResult, applyPlan } from '../apply/apply.js';
import { type ChangeLog, type ChangeLogFormat, fileChangeLog, streamChangeLog } from '../apply/changelog.js';
import { attachRateLimiter, RateLimiter } from '../apply/rate-limit.js';
import type { AccountTarget } from '../aws/clients.js';
import type { RegionScan } from '../inventory/model.js';
import { Journal } from '../journal/store.js';
import { markBlocked } from '../plan/blocked.js';
import { type ChangePlan, countPlan, type PlanCounts } from '../plan/types.js';
import type { RunIo } from './io.js';
import { type Env, type FleetRunOptions, type FleetSession, openSession } from './session.js';

/** --dry-run, --yes, --journal, --change-log, --change-log-format. */
export interface ChangeOptions {
  dryRun: boolean;
  yes: boolean;
  /** Absolute path of the journal (SQLite). */
  journal: string;
  /** One line per action: to a file (absolute path; default format json), else to io.output (text). */
  changeLog: { file: string | undefined; format: ChangeLogFormat | undefined };
}

/** How the caller shows a change document (the use case decides when). */
export interface ChangePresenter {
  /**
   * Shows the plan before the question and before any call (a terminal). Without it, only the final
   * document is shown.
   */
  planFirst?: ((doc: ChangeDocument) => Promise<void>) | undefined;
  /** Shows the final document: the plan that was not applied, or the plan with its results. */
  show(doc: ChangeDocument): Promise<void>;
}

export interface ChangeSession {
  session: FleetSession;
  limiter: RateLimiter;
}

/** Opens the session with the change-run rate limiter on every account x region EC2 client. */
export async function openChangeSession(
  fleet: FleetRunOptions,
  env: Env,
  targets?: { accounts: AccountTarget[]; regions: string[] },
): Promise<ChangeSession> {
  // Standard retries: the rate limiter below already paces every attempt to the API's bucket; the
  // SDK's adaptive mode would add its own, much slower, client-side limiter after a throttle.
  const session = await openSession(fleet, env, { retryMode: 'standard' });
  if (targets) session.targets = { ...session.targets, ...targets };
  const limiter = new RateLimiter();
  for (const a of session.targets.accounts)
    for (const region of session.targets.regions)
      attachRateLimiter(session.factory.ec2(a, region), limiter, { accountId: a.accountId, region });
  return { session, limiter };
}

/** Opens a change session, runs `work`, closes it. */
export async function withChangeSession<T>(
  fleet: FleetRunOptions,
  env: Env,
  work: (cs: ChangeSession) => Promise<T>,
  targets?: { accounts: AccountTarget[]; regions: string[] },
): Promise<T> {
  const cs = await openChangeSession(fleet, env, targets);
  try {
    return await work(cs);
  } finally {
    cs.session.close();
  }
}

export interface PlanRun extends ChangeSession {
  plan: ChangePlan;
  /**
   * The scanned regions (their account defaults: enforcement, who manages them). Every change AWS
   * would refuse there is marked blocked (plan/blocked.ts) before the plan is shown: never sent.
   */
  scans: ReadonlyArray<Pick<RegionScan, 'accountId' | 'region' | 'defaults' | 'defaultsManagement'>>;
  change: ChangeOptions;
  /** Accounts the change set acts in (recorded so a rollback can reach them). */
  accounts: AccountTarget[];
  /** What the journal records of the command line (command, regions, selection, ...). */
  args: Record<string, unknown>;
  /** Calls in flight per account + region. */
  concurrency: number;
  /** For tests: another API than the SDK's. */
  api?: FleetChangeApi | undefined;
}

export interface ChangeOutcome {
  /** nothing: the plan changes nothing; declined: not confirmed; applied: sent (or dry-run checked). */
  status: 'nothing' | 'declined' | 'applied';
  result: ApplyResult | null;
  /** A change failed, did not verify, or the run was stopped (printed; the run exits 1). */
  failed: boolean;
  /** Duration and AWS API calls of the run, once applied. */
  stats: RunStats | null;
}

/** Says how many changes are blocked and why; true when any is (the run exits 1). */
function reportBlocked(counts: PlanCounts, io: RunIo): boolean {
  if (counts.blocked === 0) return false;
  const why = Object.entries(counts.byBlockReason)
    .map(([r, n]) => `${n} ${r}`)
    .join(', ');
  io.output.write(
    `imdsguard: ${counts.blocked} change(s) blocked (${why}): AWS would refuse them, so nothing was sent for them; the plan gives each reason [IMDSGUARD_E_CHANGE_BLOCKED].\n`,
  );
  return true;
}

/** What went wrong, per status, with the stable codes (docs/fleet-changes.md, Statuses). */
export function failureSentence(result: ApplyResult, dryRun: boolean): string {
  const c = result.counts;
  if (dryRun) {
    return `${c['dry-run-failed'] ?? 0} change(s) would fail [IMDSGUARD_E_CHANGE_FAILED]; the others were checked.`;
  }
  const parts: string[] = [];
  const codes = new Set<string>();
  const add = (n: number | undefined, text: string, code: string) => {
    if (!n) return;
    parts.push(`${n} ${text}`);
    codes.add(code);
  };
  add(c.failed, 'failed', 'IMDSGUARD_E_CHANGE_FAILED');
  add(c['not-applied'], 'not applied (the call failed; read back unchanged)', 'IMDSGUARD_E_CHANGE_FAILED');
  add(c.mismatch, 'read back different from the plan (mismatch)', 'IMDSGUARD_E_CHANGE_FAILED');
  add(c.sent, 'sent without an answer', 'IMDSGUARD_E_CHANGE_FAILED');
  add(
    c.unverified,
    'applied but not confirmed (unverified: the read-back failed after every retry, or still reads pending)',
    'IMDSGUARD_E_CHANGE_UNVERIFIED',
  );
  return `${parts.join(', ')} [${[...codes].join(', ')}]; the others were applied.`;
}

/**
 * What to do next, after an apply: finish a stopped one, or undo it with `fleet rollback`. A rollback
 * is never offered its own rollback: undoing a rollback means running the original command again.
 */
export function nextSteps(
  plan: Pick<ChangePlan, 'kind' | 'rollbackOf'>,
  changeSetId: string,
  change: Pick<ChangeOptions, 'dryRun' | 'journal'>,
  interrupted: boolean,
  onRequest: boolean,
): string {
  const rollback = `imdsguard fleet rollback --change-set ${changeSetId} --journal ${change.journal}`;
  if (interrupted) {
    const finish = `imdsguard: stopped${onRequest ? ' on request' : ''}; unsent changes stay planned in ${changeSetId}. Run the same command again to finish (already-applied ${plan.kind === 'rollback' ? 'restores' : 'instances'} are skipped)`;
    return plan.kind === 'rollback' ? `${finish}.\n` : `${finish}, or roll back with: ${rollback}\n`;
  }
  if (change.dryRun) return '';
  if (plan.kind === 'rollback') {
    return `Change set ${changeSetId} restored the settings ${plan.rollbackOf ?? 'its change set'} had changed. To make that change again, run its command again.\n`;
  }
  return `Roll back with: ${rollback}\n`;
}

function changeLogOf(opts: ChangeOptions, io: RunIo): ChangeLog {
  const { file, format } = opts.changeLog;
  return file !== undefined
    ? fileChangeLog(file, format ?? 'json')
    : streamChangeLog(io.output, format ?? 'text');
}

/**
 * Shows the plan; applies it with `yes` (or after a confirmation); journals it; shows the results.
 * io.signal stops the apply between calls: unsent changes stay planned in the journal.
 */
export async function executePlan(run: PlanRun, io: RunIo, present: ChangePresenter): Promise<ChangeOutcome> {
  const { change } = run;
  const plan = markBlocked(run.plan, run.scans);
  const counts = countPlan(plan);
  const doc = (applied: boolean, result: ApplyResult | null) =>
    changeDocument(plan, {
      dryRun: change.dryRun,
      applied,
      journal: applied ? change.journal : null,
      result,
    });
  if (plan.missing.length > 0) {
    io.output.write(
      `imdsguard: ${plan.missing.length} requested instance(s) not found: ${plan.missing.slice(0, 20).join(', ')}\n`,
    );
  }
  if (counts.change === 0) {
    await present.show(doc(false, null));
    io.output.write('Nothing to change.\n');
    const blocked = reportBlocked(counts, io);
    return { status: 'nothing', result: null, failed: blocked, stats: null };
  }
  if (present.planFirst) await present.planFirst(doc(false, null));
  if (!change.dryRun && !change.yes) {
    const ok = await io.confirm(`Apply ${counts.change} change(s) (${plan.kind})?`);
    if (!ok) {
      if (!present.planFirst) await present.show(doc(false, null));
      io.output.write(
        `No changes were made. To apply this plan, run the same command with --yes (or --dry-run first to check permissions).\n`,
      );
      return { status: 'declined', result: null, failed: false, stats: null };
    }
  }
  const journal = Journal.open(change.journal);
  try {
    const changeSetId = journal.createChangeSet({
      plan,
      dryRun: change.dryRun,
      args: run.args,
      accounts: run.accounts,
    });
    io.output.write(
      `${change.dryRun ? 'Dry run' : 'Applying'}: change set ${changeSetId} (journal ${change.journal})\n`,
    );
    const api = run.api ?? sdkChangeApi(run.session.factory, run.accounts, run.limiter);
    const result = await applyPlan(plan, api, {
      journal,
      changeSetId,
      dryRun: change.dryRun,
      concurrency: run.concurrency,
      signal: io.signal,
      changeLog: changeLogOf(change, io),
    });
    await present.show(doc(true, result));
    let failed = reportBlocked(counts, io);
    if (result.failures > 0) {
      io.output.write(`imdsguard: ${failureSentence(result, change.dryRun)}\n`);
      failed = true;
    }
    if (result.interrupted) failed = true;
    io.output.write(nextSteps(plan, changeSetId, change, result.interrupted, io.signal.aborted));
    return { status: 'applied', result, failed, stats: run.session.stats() };
  } finally {
    journal.close();
  }
}
