/**
 * `fleet rollback`: restores the exact previous settings recorded in the journal. The change set's own
 * accounts (with the role used) and regions are reached again; the rollback is a plan like any other,
 * with its own dry run and its own change set (kind rollback, rollbackOf = the original).
 *
 *   listChangeSets(journalPath)                        -> the journal's change sets
 *   runRollback(options, io, env, present)             -> ChangeOutcome
 */
import { ImdsguardError } from '../../errors.js';
import type { AccountTarget } from '../aws/clients.js';
import { type ChangeSetSummary, Journal, SENT_STATUSES } from '../journal/store.js';
import { planRollback, type RecordedItem } from '../plan/rollback.js';
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

export function listChangeSets(journalPath: string): ChangeSetSummary[] {
  const journal = Journal.open(journalPath, { mustExist: true });
  try {
    return journal.listChangeSets();
  } finally {
    journal.close();
  }
}

export interface RollbackOptions {
  fleet: FleetRunOptions;
  change: ChangeOptions;
  /** The change set to roll back; undefined: the most recent one of the journal. */
  changeSet: string | undefined;
  /** Also restore resources someone changed since the change set. */
  force: boolean;
}

interface Recorded {
  setId: string;
  accounts: AccountTarget[];
  items: RecordedItem[];
}

/** What the journal recorded of the change set to roll back. Throws IMDSGUARD_E_CHANGE_SET. */
function readRecorded(opts: RollbackOptions): Recorded {
  const path = opts.change.journal;
  const journal = Journal.open(path, { mustExist: true });
  try {
    const id = opts.changeSet;
    const set = id !== undefined ? journal.getChangeSet(id) : journal.latestToRollBack();
    if (!set) {
      throw new ImdsguardError('IMDSGUARD_E_CHANGE_SET', `no change set ${id} in ${path}`, {
        hint: 'list the change sets with --list',
      });
    }
    if (set.dryRun) {
      throw new ImdsguardError(
        'IMDSGUARD_E_CHANGE_SET',
        `change set ${set.id} was a dry run: it changed nothing`,
      );
    }
    const done = journal.rollbackOf(set.id);
    if (done && !opts.force) {
      throw new ImdsguardError(
        'IMDSGUARD_E_CHANGE_SET',
        `change set ${set.id} was already rolled back by ${done.id}`,
        { hint: 'pass --force to plan it again' },
      );
    }
    return {
      setId: set.id,
      accounts: set.accounts,
      items: journal.items(set.id).map((j) => ({
        item: j.item,
        sent: SENT_STATUSES.has(j.status),
        createdVersion: j.result?.createdVersion ?? null,
      })),
    };
  } finally {
    journal.close();
  }
}

export async function runRollback(
  opts: RollbackOptions,
  io: RunIo,
  env: Env,
  present: ChangePresenter,
): Promise<ChangeOutcome> {
  const { setId, accounts, items } = readRecorded(opts);
  const relevant = items.filter((r) => r.sent && r.item.action === 'change');
  if (relevant.length === 0) {
    io.output.write(`Change set ${setId} sent no change: nothing to roll back.\n`);
    return { status: 'nothing', result: null, failed: false, stats: null };
  }
  const regions = [...new Set(relevant.map((r) => r.item.region))].sort();
  const accountIds = new Set(relevant.map((r) => r.item.accountId));
  const targetAccounts = accounts.filter((a) => accountIds.has(a.accountId));
  // The change set's own accounts and regions, not the command line's.
  const fleet: FleetRunOptions = {
    ...opts.fleet,
    regions,
    allRegions: false,
    org: false,
    accounts: undefined,
    role: undefined,
  };
  return withChangeSession(
    fleet,
    env,
    async ({ session, limiter }) => {
      const types = new Set(relevant.map((r) => r.item.type));
      const scan = await scanForChange(session, io, {
        concurrency: fleet.concurrency,
        include: {
          // Always: where IMDSv2 is enforced, a restore to optional is blocked, not sent.
          defaults: true,
          templates: types.has('launch-template'),
          autoScaling: false,
          images: false,
          roles: false,
        },
        needs: [
          'instances',
          ...(types.has('account-defaults') ? (['account-defaults'] as const) : []),
          ...(types.has('launch-template')
            ? (['launch-templates', 'launch-template-versions'] as const)
            : []),
        ],
      });
      const plan = skipUnread(planRollback(setId, items, scan.inventory, { force: opts.force }), scan.unread);
      const outcome = await executePlan(
        {
          plan,
          scans: scan.inventory.scans,
          session,
          limiter,
          change: opts.change,
          accounts: targetAccounts,
          args: { command: 'rollback', rollbackOf: setId, regions },
          concurrency: fleet.concurrency,
        },
        io,
        present,
      );
      return { ...outcome, failed: outcome.failed || scan.failed };
    },
    { accounts: targetAccounts, regions },
  );
}
