/**
 * The instance changes (harden, disable, hop-limit): read the selection, scan the instances, apply the
 * selection filters (--only-ready), plan, then executePlan.
 *
 *   readSelection(options)                                  -> SelectionCriteria (reads --input-file)
 *   runInstanceChange(planner, options, io, env, present)   -> ChangeOutcome
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ImdsguardError } from '../../errors.js';
import { type InstanceRef, parseInstanceCsv } from '../plan/csv.js';
import {
  type SelectableState,
  type SelectionCriteria,
  type SelectionFilter,
  type SelectionResult,
  selectInstances,
  type TagPair,
} from '../plan/selection.js';
import type { ChangePlan } from '../plan/types.js';
import { skipUnread } from '../plan/unread.js';
import { readinessFilter } from '../posture/readiness.js';
import {
  type ChangeOptions,
  type ChangeOutcome,
  type ChangePresenter,
  executePlan,
  withChangeSession,
} from './change.js';
import type { RunIo } from './io.js';
import { INSTANCE_CHANGE, scanForChange } from './scan.js';
import type { Env, FleetRunOptions, FleetSession } from './session.js';
import { measureReadiness, reportUsageFailures, type UsageOptions, usageFailures } from './usage.js';

/** The selection options, checked: --instances, --input-file, --tags, --exclude-*, --states. */
export interface SelectionOptions {
  instanceIds: string[];
  /** The CSV of --input-file: its absolute path, and the name the user gave (for messages). */
  inputFile: { path: string; name: string } | undefined;
  tags: TagPair[];
  excludeTags: TagPair[];
  excludeInstanceIds: string[];
  /** null: every selectable state. */
  states: SelectableState[] | null;
}

/** What the journal records of a selection, so a change set says what it was asked to change. */
export interface SelectionRecord {
  instances: string[];
  /** The --input-file CSV: its path as given, absolute path, SHA-256 of its bytes, and its rows. */
  inputFile: { name: string; path: string; sha256: string; rows: number } | null;
  tags: string[];
  excludeTags: string[];
  excludeInstances: string[];
  states: string[] | null;
}

/**
 * The criteria of a selection and what the journal records of it; reads the --input-file CSV.
 * Throws IMDSGUARD_E_INPUT_FILE.
 */
export async function readSelection(
  opts: SelectionOptions,
): Promise<{ criteria: SelectionCriteria; record: SelectionRecord }> {
  let instances: InstanceRef[] | null = null;
  let inputFile: SelectionRecord['inputFile'] = null;
  if (opts.instanceIds.length > 0) {
    instances = opts.instanceIds.map((instanceId) => ({ instanceId, accountId: null, region: null }));
  }
  if (opts.inputFile !== undefined) {
    const { path, name } = opts.inputFile;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new ImdsguardError(
        'IMDSGUARD_E_INPUT_FILE',
        `cannot read --input-file ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const rows = parseInstanceCsv(bytes.toString('utf8'), name);
    inputFile = { name, path, sha256: createHash('sha256').update(bytes).digest('hex'), rows: rows.length };
    instances = [...(instances ?? []), ...rows];
  }
  const pair = (p: TagPair) => `${p.key}=${p.value}`;
  return {
    criteria: {
      instances,
      tags: opts.tags,
      excludeTags: opts.excludeTags,
      excludeInstanceIds: opts.excludeInstanceIds,
      states: opts.states,
    },
    record: {
      instances: opts.instanceIds,
      inputFile,
      tags: opts.tags.map(pair),
      excludeTags: opts.excludeTags.map(pair),
      excludeInstances: opts.excludeInstanceIds,
      states: opts.states,
    },
  };
}

/** One instance change: its planner and what the journal records about it. */
export interface InstancePlanner {
  plan(selection: SelectionResult): ChangePlan;
  /**
   * The plan can leave HttpTokens other than required (relax, disable, hop-limit on an instance still
   * on optional): read each region's account defaults so markBlocked knows where IMDSv2 is enforced.
   * Default true; harden (always required) sets false and reads instances only.
   */
  readsEnforcement?: boolean;
  /** The command and its own arguments (hop limit, ...), recorded in the journal. */
  args: Record<string, unknown>;
}

export interface InstanceChangeOptions {
  fleet: FleetRunOptions;
  selection: SelectionOptions;
  change: ChangeOptions;
  /** --only-ready: only instances whose usage evidence says they are ready (harden). */
  onlyReady: UsageOptions | null;
}

/**
 * The extra selection filters the options ask for, in the order they apply. An instance whose
 * evidence could not be read is left out (unknown); `failed` says so (the run exits 1).
 */
async function selectionFilters(
  session: FleetSession,
  inventory: { instances: Parameters<typeof measureReadiness>[1] },
  opts: InstanceChangeOptions,
  io: RunIo,
): Promise<{ filters: SelectionFilter[]; failed: boolean }> {
  const filters: SelectionFilter[] = [];
  let failed = false;
  if (opts.onlyReady !== null) {
    const m = await measureReadiness(session, inventory.instances, { ...opts.onlyReady, mode: 'auto' }, io);
    failed = reportUsageFailures(usageFailures({ failures: [] }, m.evidence), io);
    filters.push(readinessFilter(m.rows));
  }
  return { filters, failed };
}

export async function runInstanceChange(
  planner: InstancePlanner,
  opts: InstanceChangeOptions,
  io: RunIo,
  env: Env,
  present: ChangePresenter,
): Promise<ChangeOutcome> {
  const { criteria, record } = await readSelection(opts.selection);
  return withChangeSession(opts.fleet, env, async ({ session, limiter }) => {
    const scan = await scanForChange(session, io, {
      concurrency: opts.fleet.concurrency,
      include: planner.readsEnforcement === false ? INSTANCE_CHANGE : { ...INSTANCE_CHANGE, defaults: true },
      needs: ['instances'],
    });
    const { filters, failed } = await selectionFilters(session, scan.inventory, opts, io);
    const plan = skipUnread(
      planner.plan(selectInstances(scan.inventory.instances, criteria, filters)),
      scan.unread,
    );
    if (plan.missing.length > 0 && scan.unread.size > 0) {
      plan.notes.push(
        `${scan.unread.size} account/region scan(s) could not be read: a requested instance "not found" may be there`,
      );
    }
    const outcome = await executePlan(
      {
        plan,
        scans: scan.inventory.scans,
        session,
        limiter,
        change: opts.change,
        accounts: session.targets.accounts,
        args: {
          ...planner.args,
          regions: session.targets.regions,
          dryRun: opts.change.dryRun,
          selection: { ...record, onlyReady: opts.onlyReady === null ? null : { days: opts.onlyReady.days } },
        },
        concurrency: opts.fleet.concurrency,
      },
      io,
      present,
    );
    return { ...outcome, failed: outcome.failed || scan.failed || failed };
  });
}
