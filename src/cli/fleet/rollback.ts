/**
 * fleet rollback: restores the exact previous settings recorded in the journal. The change set's own
 * accounts (with the role used) and regions are reached again; the rollback is a plan like any other,
 * with its own dry run and its own change set (kind rollback, rollbackOf = the original).
 */
import { resolve } from 'node:path';
import { ImdsguardError } from '../../errors.js';
import { RateLimiter } from '../../fleet/apply/rate-limit.js';
import type { AccountTarget } from '../../fleet/aws/clients.js';
import { DEFAULT_JOURNAL_FILE, Journal, SENT_STATUSES } from '../../fleet/journal/store.js';
import { planRollback, type RecordedItem } from '../../fleet/plan/rollback.js';
import { renderJson } from '../../report/json.js';
import { writeOutput } from '../../report/output.js';
import { renderTable } from '../../report/table.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import { addFleetOptions, openFleetSession, outputFormat, parseFleetOptions } from '../fleet-options.js';
import {
  addChangeOptions,
  attachLimiter,
  collectForChange,
  executePlan,
  parseChangeOptions,
} from './change-run.js';

export const rollbackCommand: FleetSubcommand = {
  name: 'rollback',
  summary:
    'Restore the exact previous metadata options (templates, defaults) of a change set from the journal.',
  examples: [
    ['imdsguard fleet rollback --journal changes.db', 'plan the rollback of the most recent change set'],
    ['imdsguard fleet rollback --journal changes.db --list', 'list the change sets of the journal'],
    [
      'imdsguard fleet rollback --change-set cs-20260122T184501Z-3f9a1c --journal changes.db --yes',
      'restore every instance of that change set exactly as it was',
    ],
  ],
  configure(cmd, ctx) {
    addChangeOptions(addFleetOptions(cmd))
      .option(
        '--change-set <id>',
        'the change set to roll back (default: the most recent one of the journal)',
      )
      .option('--force', 'also restore resources someone changed since the change set')
      .option('--list', 'list the change sets of the journal and exit');
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = parseFleetOptions(raw);
      const change = parseChangeOptions(raw, ctx);
      const path = resolve(
        ctx.cwd,
        typeof raw['journal'] === 'string' ? raw['journal'] : DEFAULT_JOURNAL_FILE,
      );
      const journal = Journal.open(path, { mustExist: true });
      let setId: string;
      let recorded: RecordedItem[];
      let accounts: AccountTarget[];
      try {
        if (raw['list'] === true) {
          const sets = journal.listChangeSets();
          const format = outputFormat(fleet, ctx);
          const text =
            format === 'table'
              ? renderTable(
                  sets,
                  [
                    { header: 'change set', value: (s) => s.id },
                    { header: 'kind', value: (s) => s.kind },
                    { header: 'dry run', value: (s) => s.dryRun },
                    { header: 'rollback of', value: (s) => s.rollbackOf ?? '' },
                    { header: 'status', value: (s) => s.status },
                    { header: 'created', value: (s) => s.createdAt },
                    {
                      header: 'items',
                      value: (s) =>
                        Object.entries(s.counts)
                          .map(([k, n]) => `${n} ${k}`)
                          .join(', '),
                    },
                  ],
                  { empty: 'The journal holds no change set.' },
                )
              : renderJson({ journal: path, changeSets: sets });
          await writeOutput(ctx.stdout, text, fleet.output, ctx.cwd);
          return;
        }
        const id = typeof raw['changeSet'] === 'string' ? raw['changeSet'] : undefined;
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
        if (done && raw['force'] !== true) {
          throw new ImdsguardError(
            'IMDSGUARD_E_CHANGE_SET',
            `change set ${set.id} was already rolled back by ${done.id}`,
            {
              hint: 'pass --force to plan it again',
            },
          );
        }
        setId = set.id;
        accounts = set.accounts;
        recorded = journal.items(set.id).map((j) => ({
          item: j.item,
          sent: SENT_STATUSES.has(j.status),
          createdVersion: j.result?.createdVersion ?? null,
        }));
      } finally {
        journal.close();
      }
      const relevant = recorded.filter((r) => r.sent && r.item.action === 'change');
      const regions = [...new Set(relevant.map((r) => r.item.region))].sort();
      const accountIds = new Set(relevant.map((r) => r.item.accountId));
      if (relevant.length === 0) {
        ctx.stderr.write(`Change set ${setId} sent no change: nothing to roll back.\n`);
        return;
      }
      const session = await openFleetSession(
        { ...fleet, regions, allRegions: false, org: false, accounts: undefined, role: undefined },
        ctx,
        { retryMode: 'standard' },
      );
      try {
        const targetsAccounts = accounts.filter((a) => accountIds.has(a.accountId));
        session.targets = { ...session.targets, accounts: targetsAccounts, regions };
        const limiter = new RateLimiter();
        attachLimiter(session, targetsAccounts, limiter);
        const types = new Set(relevant.map((r) => r.item.type));
        const inventory = await collectForChange(session, fleet, ctx, {
          defaults: types.has('account-defaults'),
          templates: types.has('launch-template'),
          autoScaling: false,
          images: false,
        });
        const plan = planRollback(setId, recorded, inventory, { force: raw['force'] === true });
        await executePlan(ctx, {
          plan,
          session,
          fleet,
          change,
          accounts: targetsAccounts,
          args: { command: 'rollback', rollbackOf: setId, regions },
          limiter,
          concurrency: fleet.concurrency,
        });
      } finally {
        session.close();
      }
    });
  },
};
