/**
 * The change journal: one SQLite database (node:sqlite, WAL) holding change sets and their items.
 * The write-ahead rows are committed with synchronous=FULL (fsynced); results and verifications with
 * NORMAL (they survive a crash of imdsguard, and on a power loss an item simply reads `sent`, which a
 * rollback already treats as possibly applied). Write-ahead: an item is marked `sent` (and committed,
 * fsynced) BEFORE its API call goes out, and gets its result after. After a crash the journal shows
 * exactly which calls may have been made: every `sent` item without a result.
 *
 * Item statuses (docs/fleet-changes.md lists them with what each means for the exit code):
 *   planned      in the plan, not sent (yet)
 *   skipped      in the plan as a skip (the reason is in the item)
 *   blocked      in the plan, but AWS would refuse it (account-level enforcement, a declarative
 *                policy): never sent; the reason is in the item
 *   sent         the call was (or is about to be) sent; no answer recorded: a crash or a kill
 *   applied      AWS accepted the change (or: the call failed ambiguously and reading the resource back
 *                showed the change in place; result.ambiguous keeps the error)
 *   not-applied  the call failed ambiguously (cut, timeout, 5xx) and reading the resource back showed
 *                it unchanged: nothing to roll back
 *   failed       AWS refused it (error code and message recorded), or it failed ambiguously and the
 *                read-back could not tell
 *   dry-run-ok   DryRun: AWS says the call would succeed (DryRunOperation)
 *   dry-run-failed  DryRun: AWS says it would fail (e.g. UnauthorizedOperation)
 *   verified     read back after the change: equal to the plan
 *   mismatch     read back after the change: different from the plan
 *   unverified   applied, but the read-back failed after every retry, or still reads `pending` on a
 *                running instance: not known to be in effect
 */
import { randomBytes } from 'node:crypto';
import { ImdsguardError } from '../../errors.js';
import { type Db, openDatabase } from '../../storage/sqlite.js';
import type { AccountTarget } from '../aws/clients.js';
import type { ChangeKind, ChangePlan, PlanItem } from '../plan/types.js';

export const JOURNAL_SCHEMA_VERSION = 1;
export const DEFAULT_JOURNAL_FILE = 'imdsguard-journal.db';

export const ITEM_STATUSES = [
  'planned',
  'skipped',
  'blocked',
  'sent',
  'applied',
  'not-applied',
  'failed',
  'dry-run-ok',
  'dry-run-failed',
  'verified',
  'mismatch',
  'unverified',
] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/**
 * Statuses after which the change may be in place (a rollback must consider the item). Not
 * `not-applied`: it was read back unchanged.
 */
export const SENT_STATUSES: ReadonlySet<ItemStatus> = new Set([
  'sent',
  'applied',
  'failed',
  'verified',
  'mismatch',
  'unverified',
]);

export type ChangeSetStatus = 'applying' | 'done' | 'interrupted' | 'planned';

export interface ChangeSetRecord {
  id: string;
  kind: ChangeKind;
  dryRun: boolean;
  rollbackOf: string | null;
  status: ChangeSetStatus;
  /** ISO 8601 */
  createdAt: string;
  finishedAt: string | null;
  /** The command line options that made it (no secrets). */
  args: Record<string, unknown>;
  /** The accounts it acts in (with the role used), so a rollback can reach them again. */
  accounts: AccountTarget[];
  notes: string[];
  missing: string[];
}

export interface ItemResult {
  /** For templates: the version the fix created. */
  createdVersion?: number;
  /** What the verification (or the read-back after an ambiguous failure) read back. */
  observed?: unknown;
  /** The ambiguous failure that was settled by reading the resource back (applied / not-applied). */
  ambiguous?: { code: string; message: string };
}

export interface JournalItem {
  changeSetId: string;
  seq: number;
  item: PlanItem;
  status: ItemStatus;
  attempts: number;
  errorCode: string | null;
  errorMessage: string | null;
  result: ItemResult | null;
  sentAt: string | null;
  resultAt: string | null;
}

export interface ChangeSetSummary extends ChangeSetRecord {
  counts: Partial<Record<ItemStatus, number>>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS change_sets (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  dry_run INTEGER NOT NULL,
  rollback_of TEXT,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  finished_at TEXT,
  args TEXT NOT NULL,
  accounts TEXT NOT NULL,
  notes TEXT NOT NULL,
  missing TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
  change_set_id TEXT NOT NULL REFERENCES change_sets(id),
  seq INTEGER NOT NULL,
  resource_type TEXT NOT NULL,
  account_id TEXT NOT NULL,
  region TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  action TEXT NOT NULL,
  item TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error_code TEXT,
  error_message TEXT,
  result TEXT,
  sent_at TEXT,
  result_at TEXT,
  PRIMARY KEY (change_set_id, seq)
);
CREATE INDEX IF NOT EXISTS items_resource ON items (account_id, region, resource_id);
`;

interface ChangeSetRow {
  id: string;
  kind: string;
  dry_run: number;
  rollback_of: string | null;
  status: string;
  created_at: string;
  finished_at: string | null;
  args: string;
  accounts: string;
  notes: string;
  missing: string;
}

interface ItemRow {
  change_set_id: string;
  seq: number;
  item: string;
  status: string;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  result: string | null;
  sent_at: string | null;
  result_at: string | null;
}

function journalError(path: string, err: unknown, what: string): ImdsguardError {
  return new ImdsguardError(
    'IMDSGUARD_E_JOURNAL',
    `journal ${path}: ${what}: ${(err as Error)?.message ?? String(err)}`,
    {
      cause: err,
      details: { path },
    },
  );
}

/** A change set id: time-ordered and unique, e.g. cs-20260122T184501Z-3f9a1c. */
export function newChangeSetId(
  now: Date,
  random: () => string = () => randomBytes(3).toString('hex'),
): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `cs-${t}-${random()}`;
}

export interface JournalOptions {
  /** Clock for timestamps (tests). */
  now?: () => Date;
  /** Open an existing journal only (rollback). */
  mustExist?: boolean;
}

export class Journal {
  readonly path: string;
  private readonly db: Db;
  private readonly now: () => Date;

  private constructor(path: string, db: Db, now: () => Date) {
    this.path = path;
    this.db = db;
    this.now = now;
  }

  static open(path: string, opts: JournalOptions = {}): Journal {
    let db: Db;
    try {
      db = openDatabase(path, {
        mustExist: opts.mustExist === true,
        schema: SCHEMA,
        synchronous: 'FULL',
        busyTimeoutMs: 5000,
      });
    } catch (err) {
      throw journalError(path, err, opts.mustExist ? 'cannot open (does it exist?)' : 'cannot open');
    }
    try {
      const v = db.prepare('SELECT value FROM meta WHERE key = ?').get('schema_version') as
        | { value: string }
        | undefined;
      if (!v)
        db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(
          'schema_version',
          String(JOURNAL_SCHEMA_VERSION),
        );
      else if (Number(v.value) > JOURNAL_SCHEMA_VERSION) {
        throw new Error(
          `schema version ${v.value} is newer than this imdsguard understands (${JOURNAL_SCHEMA_VERSION})`,
        );
      }
    } catch (err) {
      db.close();
      throw journalError(path, err, 'not an imdsguard journal');
    }
    return new Journal(path, db, opts.now ?? (() => new Date()));
  }

  private sync: 'FULL' | 'NORMAL' = 'FULL';

  /** FULL: the next commit is fsynced before it returns (the write-ahead rows). */
  private durability(level: 'FULL' | 'NORMAL'): void {
    if (this.sync === level) return;
    this.db.exec(`PRAGMA synchronous = ${level}`);
    this.sync = level;
  }

  private ts(): string {
    return this.now().toISOString();
  }

  private write<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw journalError(this.path, err, what);
    }
  }

  /** Records a plan as a new change set (items planned or skipped), in one transaction. */
  createChangeSet(input: {
    plan: ChangePlan;
    dryRun: boolean;
    args?: Record<string, unknown>;
    accounts?: AccountTarget[];
    id?: string;
  }): string {
    const id = input.id ?? newChangeSetId(this.now());
    const insertSet = this.db.prepare(
      `INSERT INTO change_sets (id, kind, dry_run, rollback_of, status, created_at, args, accounts, notes, missing)
       VALUES (?, ?, ?, ?, 'applying', ?, ?, ?, ?, ?)`,
    );
    const insertItem = this.db.prepare(
      `INSERT INTO items (change_set_id, seq, resource_type, account_id, region, resource_id, action, item, status)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.durability('FULL');
    this.write('cannot record the change set', () =>
      this.db.transaction(() => {
        insertSet.run(
          id,
          input.plan.kind,
          input.dryRun ? 1 : 0,
          input.plan.rollbackOf,
          this.ts(),
          JSON.stringify(input.args ?? {}),
          JSON.stringify(input.accounts ?? []),
          JSON.stringify(input.plan.notes),
          JSON.stringify(input.plan.missing),
        );
        for (const it of input.plan.items) {
          insertItem.run(
            id,
            it.seq,
            it.type,
            it.accountId,
            it.region,
            it.resourceId,
            it.action,
            JSON.stringify(it),
            it.action === 'change' ? 'planned' : it.action === 'blocked' ? 'blocked' : 'skipped',
          );
        }
      })(),
    );
    return id;
  }

  /** Write-ahead: marks an item sent (attempt + 1) and commits (fsync) before the call is made. */
  markSent(changeSetId: string, seq: number, result?: ItemResult): void {
    this.durability('FULL');
    this.write('cannot record a call before sending it', () =>
      this.db
        .prepare(
          `UPDATE items SET status = 'sent', attempts = attempts + 1, sent_at = ?, result = COALESCE(?, result)
           WHERE change_set_id = ? AND seq = ?`,
        )
        .run(this.ts(), result ? JSON.stringify(result) : null, changeSetId, seq),
    );
  }

  /** Records the answer to a call. */
  markResult(
    changeSetId: string,
    seq: number,
    status: ItemStatus,
    extra: { errorCode?: string | null; errorMessage?: string | null; result?: ItemResult | null } = {},
  ): void {
    this.durability('NORMAL');
    this.write('cannot record a result', () =>
      this.db
        .prepare(
          `UPDATE items SET status = ?, error_code = ?, error_message = ?, result = COALESCE(?, result), result_at = ?
           WHERE change_set_id = ? AND seq = ?`,
        )
        .run(
          status,
          extra.errorCode ?? null,
          extra.errorMessage ?? null,
          extra.result ? JSON.stringify(extra.result) : null,
          this.ts(),
          changeSetId,
          seq,
        ),
    );
  }

  finishChangeSet(changeSetId: string, status: ChangeSetStatus): void {
    this.write('cannot finish the change set', () =>
      this.db
        .prepare('UPDATE change_sets SET status = ?, finished_at = ? WHERE id = ?')
        .run(status, this.ts(), changeSetId),
    );
  }

  private toSet(r: ChangeSetRow): ChangeSetRecord {
    return {
      id: r.id,
      kind: r.kind as ChangeKind,
      dryRun: r.dry_run === 1,
      rollbackOf: r.rollback_of,
      status: r.status as ChangeSetStatus,
      createdAt: r.created_at,
      finishedAt: r.finished_at,
      args: JSON.parse(r.args) as Record<string, unknown>,
      accounts: JSON.parse(r.accounts) as AccountTarget[],
      notes: JSON.parse(r.notes) as string[],
      missing: JSON.parse(r.missing) as string[],
    };
  }

  getChangeSet(id: string): ChangeSetRecord | null {
    const r = this.db.prepare('SELECT * FROM change_sets WHERE id = ?').get(id) as ChangeSetRow | undefined;
    return r ? this.toSet(r) : null;
  }

  /** Every change set, newest first, with item counts per status. */
  listChangeSets(): ChangeSetSummary[] {
    const rows = this.db
      .prepare('SELECT * FROM change_sets ORDER BY created_at DESC, rowid DESC')
      .all() as ChangeSetRow[];
    const counts = this.db
      .prepare('SELECT change_set_id AS id, status, COUNT(*) AS n FROM items GROUP BY change_set_id, status')
      .all() as { id: string; status: ItemStatus; n: number }[];
    return rows.map((r) => {
      const c: Partial<Record<ItemStatus, number>> = {};
      for (const x of counts) if (x.id === r.id) c[x.status] = x.n;
      return { ...this.toSet(r), counts: c };
    });
  }

  items(changeSetId: string): JournalItem[] {
    const rows = this.db
      .prepare('SELECT * FROM items WHERE change_set_id = ? ORDER BY seq')
      .all(changeSetId) as ItemRow[];
    return rows.map((r) => ({
      changeSetId: r.change_set_id,
      seq: r.seq,
      item: JSON.parse(r.item) as PlanItem,
      status: r.status as ItemStatus,
      attempts: r.attempts,
      errorCode: r.error_code,
      errorMessage: r.error_message,
      result: r.result ? (JSON.parse(r.result) as ItemResult) : null,
      sentAt: r.sent_at,
      resultAt: r.result_at,
    }));
  }

  /** The completed (not dry-run) rollback of a change set, if any. */
  rollbackOf(changeSetId: string): ChangeSetRecord | null {
    const r = this.db
      .prepare(
        `SELECT * FROM change_sets WHERE rollback_of = ? AND dry_run = 0 AND status = 'done'
         ORDER BY created_at DESC, rowid DESC LIMIT 1`,
      )
      .get(changeSetId) as ChangeSetRow | undefined;
    return r ? this.toSet(r) : null;
  }

  /**
   * The change set `fleet rollback --journal FILE` restores: the most recent one that is not a dry run
   * and not itself a rollback. Throws IMDSGUARD_E_CHANGE_SET when there is none, or when it was
   * already rolled back (rolling back older change sets in a cascade is never implicit).
   */
  latestToRollBack(): ChangeSetRecord {
    const r = this.db
      .prepare(
        `SELECT * FROM change_sets WHERE dry_run = 0 AND kind != 'rollback' ORDER BY created_at DESC, rowid DESC LIMIT 1`,
      )
      .get() as ChangeSetRow | undefined;
    if (!r) {
      throw new ImdsguardError('IMDSGUARD_E_CHANGE_SET', `journal ${this.path} holds no applied change set`);
    }
    const set = this.toSet(r);
    const done = this.rollbackOf(set.id);
    if (done) {
      throw new ImdsguardError(
        'IMDSGUARD_E_CHANGE_SET',
        `the most recent change set ${set.id} was already rolled back by ${done.id}`,
        { hint: 'pass --change-set ID to choose another change set (list them with --list)' },
      );
    }
    return set;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
