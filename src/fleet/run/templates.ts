/**
 * `fleet templates` and `fleet defaults`: what launches new instances (launch templates, Auto Scaling
 * groups, launch configurations, AMIs; the account-level defaults per region), and their fixes.
 *
 *   runTemplates(options, io, env, present)   -> the templates report, and the fix's outcome (--fix)
 *   runDefaults(options, io, env, present)    -> the defaults per region (with readiness to enforce), and
 *                                                the change's outcome (--set, --enforce, --no-enforce)
 */
import { allowsImdsV1, type Inventory, instanceKey, type RegionScan } from '../inventory/model.js';
import { type DefaultsChange, planDefaults } from '../plan/defaults.js';
import { planTemplates, type TemplatesReport } from '../plan/templates.js';
import type { ChangePlan } from '../plan/types.js';
import { skipUnread } from '../plan/unread.js';
import { type EnforcementReadiness, enforcementReadiness, type V1Evidence } from '../posture/enforcement.js';
import { isLive } from '../posture/summary.js';
import {
  type ChangeOptions,
  type ChangeOutcome,
  type ChangePresenter,
  executePlan,
  withChangeSession,
} from './change.js';
import type { RunIo } from './io.js';
import { scanForChange } from './scan.js';
import type { Env, FleetRunOptions, FleetSession } from './session.js';
import {
  DEFAULT_USAGE_OPTIONS,
  measureReadiness,
  reportUsageFailures,
  type UsageOptions,
  usageFailures,
} from './usage.js';

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
        scans: scan.inventory.scans,
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
  /**
   * What to set: the HttpTokens default (--set required), enforcement (--enforce, --no-enforce); null:
   * only show the defaults.
   */
  set: DefaultsChange | null;
  /**
   * Readiness to enforce IMDSv2 per region (--readiness; always with --enforce): templates, groups and
   * launch configurations are scanned too, and the IMDSv1 use of instances still on optional is read
   * from CloudWatch with these usage options.
   */
  readiness: UsageOptions | null;
}

export interface DefaultsResult {
  /** Every scanned account and region; `defaults` null where they could not be read. */
  scans: RegionScan[];
  /** Readiness to enforce, when asked for (or with --enforce). */
  readiness: EnforcementReadiness[] | null;
  outcome: ChangeOutcome | null;
  failed: boolean;
}

/** The IMDSv1 evidence of the instances still on optional, keyed by instanceKey. */
async function v1Evidence(
  session: FleetSession,
  inv: Inventory,
  usage: UsageOptions,
  io: RunIo,
): Promise<{ evidence: Map<string, V1Evidence>; failed: boolean }> {
  const optional = inv.instances.filter((i) => isLive(i) && allowsImdsV1(i.metadataOptions));
  const evidence = new Map<string, V1Evidence>();
  if (optional.length === 0) return { evidence, failed: false };
  const m = await measureReadiness(session, optional, { ...usage, mode: 'auto' }, io);
  for (const r of m.rows) {
    evidence.set(instanceKey(r), {
      v1Calls: r.noToken?.sum ?? null,
      lastV1: r.noToken?.lastNonZero ?? null,
      readiness: r.readiness,
    });
  }
  return { evidence, failed: reportUsageFailures(usageFailures({ failures: [] }, m.evidence), io) };
}

/** Plan notes: what enforcing would break in each region the plan turns it on in. */
function enforcementNotes(readiness: readonly EnforcementReadiness[], plan: ChangePlan): string[] {
  const turning = new Set(
    plan.items
      .filter((i) => i.type === 'account-defaults' && i.after.httpTokensEnforced === 'enabled')
      .map((i) => `${i.accountId}/${i.region}`),
  );
  const notes: string[] = [];
  for (const r of readiness) {
    if (!turning.has(`${r.accountId}/${r.region}`) || r.verdict === 'enforced') continue;
    notes.push(`${r.accountId} ${r.region}: readiness to enforce: ${r.verdict}: ${r.summary}`);
    const shown = [...r.launches, ...r.instances.filter((b) => b.evidence?.readiness !== 'ready')];
    for (const b of shown.slice(0, 10))
      notes.push(
        `  ${b.kind} ${b.resourceId}${b.name && b.name !== b.resourceId ? ` (${b.name})` : ''}: ${b.detail}`,
      );
    if (shown.length > 10)
      notes.push(`  ... ${shown.length - 10} more (fleet defaults --readiness --format json)`);
  }
  return notes;
}

export function runDefaults(
  opts: DefaultsOptions,
  io: RunIo,
  env: Env,
  present: ChangePresenter,
): Promise<DefaultsResult> {
  return withChangeSession(opts.fleet, env, async ({ session, limiter }) => {
    const usage =
      opts.readiness ?? (opts.set?.httpTokensEnforced === 'enabled' ? DEFAULT_USAGE_OPTIONS : null);
    const scan = await scanForChange(session, io, {
      concurrency: opts.fleet.concurrency,
      include:
        usage === null
          ? { defaults: true, templates: false, autoScaling: false, images: false, roles: false }
          : { defaults: true, templates: true, autoScaling: true, images: true, roles: false },
      needs: ['account-defaults'],
    });
    const scans = scan.inventory.scans;
    let readiness: EnforcementReadiness[] | null = null;
    let usageFailed = false;
    if (usage !== null) {
      const v1 = await v1Evidence(session, scan.inventory, usage, io);
      readiness = enforcementReadiness(scan.inventory, v1.evidence);
      usageFailed = v1.failed;
    }
    if (opts.set === null) return { scans, readiness, outcome: null, failed: scan.failed || usageFailed };
    const plan = skipUnread(planDefaults(scans, opts.set), scan.unread);
    if (readiness) plan.notes.push(...enforcementNotes(readiness, plan));
    const outcome = await executePlan(
      {
        plan,
        scans,
        session,
        limiter,
        change: opts.change,
        accounts: session.targets.accounts,
        args: {
          command: 'defaults',
          ...(opts.set.httpTokens ? { set: opts.set.httpTokens } : {}),
          ...(opts.set.httpTokensEnforced ? { enforce: opts.set.httpTokensEnforced } : {}),
          regions: session.targets.regions,
        },
        concurrency: opts.fleet.concurrency,
      },
      io,
      present,
    );
    return { scans, readiness, outcome, failed: outcome.failed || scan.failed || usageFailed };
  });
}
