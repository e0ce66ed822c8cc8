/**
 * `fleet templates` and `fleet defaults`: what launches new instances (launch templates, Auto Scaling
 * groups, launch configurations, AMIs; the account-level defaults per region), and their fixes.
 *
 *   runTemplates(options, io, env, present)   -> the templates report, and the fix's outcome (--fix)
 *   runDefaults(options, io, env, present)    -> the defaults per region, and the change's outcome (--set)
 */
import type { RegionScan } from '../inventory/model.js';
import { planDefaults } from '../plan/defaults.js';
import { planTemplates, type TemplatesReport } from '../plan/templates.js';
import { skipUnread } from '../plan/unread.js';
import {
  type ChangeOptions,
  type ChangeOutcome,
  type ChangePresenter,
  executePlan,
  withChangeSession,
} from './change.js';
import type { RunIo } from './io.js';
import { scanForChange } from './scan.js';
import type { Env, FleetRunOptions } from './session.js';

export interface TemplatesOptions {
  fleet: FleetRunOptions;
  change: ChangeOptions;
  /** Plan (and with --yes apply) a tokens-required default version per template. */
  fix: boolean;
}

export interface TemplatesResult {
  report: TemplatesReport;
  /** With fix: what the change did. */
  outcome: ChangeOutcome | null;
  failed: boolean;
}

export function runTemplates(
  opts: TemplatesOptions,
  io: RunIo,
  env: Env,
  present: ChangePresenter,
): Promise<TemplatesResult> {
  return withChangeSession(opts.fleet, env, async ({ session, limiter }) => {
    const scan = await scanForChange(session, io, {
      concurrency: opts.fleet.concurrency,
      needs: ['launch-templates', 'launch-template-versions'],
    });
    const planned = planTemplates(scan.inventory);
    const report = { ...planned, plan: skipUnread(planned.plan, scan.unread) };
    if (!opts.fix) return { report, outcome: null, failed: scan.failed };
    const outcome = await executePlan(
      {
        plan: report.plan,
        session,
        limiter,
        change: opts.change,
        accounts: session.targets.accounts,
        args: { command: 'templates', fix: true, regions: session.targets.regions },
        concurrency: opts.fleet.concurrency,
      },
      io,
      present,
    );
    if (report.imageFindings.length > 0) {
      io.output.write(
        `${report.imageFindings.length} AMI(s) in use without ImdsSupport v2.0 are reported, never changed (see fleet templates without --fix).\n`,
      );
    }
    return { report, outcome, failed: outcome.failed || scan.failed };
  });
}

export interface DefaultsOptions {
  fleet: FleetRunOptions;
  change: ChangeOptions;
  /** Set the HttpTokens default (--set required); null: only show the defaults. */
  set: { httpTokens: 'required' } | null;
}

export interface DefaultsResult {
  /** Every scanned account and region; `defaults` null where they could not be read. */
  scans: RegionScan[];
  outcome: ChangeOutcome | null;
  failed: boolean;
}

export function runDefaults(
  opts: DefaultsOptions,
  io: RunIo,
  env: Env,
  present: ChangePresenter,
): Promise<DefaultsResult> {
  return withChangeSession(opts.fleet, env, async ({ session, limiter }) => {
    const scan = await scanForChange(session, io, {
      concurrency: opts.fleet.concurrency,
      include: { defaults: true, templates: false, autoScaling: false, images: false, roles: false },
      needs: ['account-defaults'],
    });
    const scans = scan.inventory.scans;
    if (opts.set === null) return { scans, outcome: null, failed: scan.failed };
    const outcome = await executePlan(
      {
        plan: skipUnread(planDefaults(scan.inventory.scans, opts.set), scan.unread),
        session,
        limiter,
        change: opts.change,
        accounts: session.targets.accounts,
        args: { command: 'defaults', set: opts.set.httpTokens, regions: session.targets.regions },
        concurrency: opts.fleet.concurrency,
      },
      io,
      present,
    );
    return { scans, outcome, failed: outcome.failed || scan.failed };
  });
}
