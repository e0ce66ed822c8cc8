import { ImdsguardError } from '../../errors.js';
import { type Db, openDatabase } from '../../storage/sqlite.js';
import type { GuardEvent } from '../events/types.js';
import {
  DEFAULT_RETENTION,
  type EventFilter,
  type EventStore,
  limitOf,
  type RetentionOptions,
} from './port.js';

/** The event store in SQLite (node:sqlite): what `imdsguard guard --db` writes and `events` reads. */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  rowid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  time_ms INTEGER NOT NULL,
  decision TEXT NOT NULL,
  action TEXT NOT NULL,
  rule TEXT NOT NULL,
  version TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  status INTEGER NOT NULL,
  exe TEXT,
  user TEXT,
  pid INTEGER,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events (time_ms, id);
CREATE INDEX IF NOT EXISTS events_decision ON events (decision, time_ms);
CREATE INDEX IF NOT EXISTS events_exe ON events (exe, time_ms);
CREATE INDEX IF NOT EXISTS events_user ON events (user, time_ms);
CREATE INDEX IF NOT EXISTS events_path ON events (path);
CREATE INDEX IF NOT EXISTS events_version ON events (version, time_ms);
`;

export interface SqliteStoreOptions {
  path: string;
  retention?: RetentionOptions;
  /** Open an existing database for reading only (the CLI). */
  readonly?: boolean;
}

function storeError(path: string, what: string, err: unknown): ImdsguardError {
  return new ImdsguardError(
    'IMDSGUARD_E_STORE',
    `event store ${path}: ${what}: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err, hint: 'check the --db path, and that it is an imdsguard event database' },
  );
}

/** The SQLite event store (WAL). insert() is one transaction per batch. */
export class SqliteEventStore implements EventStore {
  private readonly db: Db;
  private readonly path: string;
  private readonly retention: RetentionOptions;
  private readonly stmts;

  constructor(opts: SqliteStoreOptions) {
    this.path = opts.path;
    this.retention = opts.retention ?? DEFAULT_RETENTION;
    try {
      this.db = openDatabase(opts.path, {
        readonly: opts.readonly === true,
        schema: SCHEMA,
        synchronous: 'NORMAL',
      });
      this.stmts = {
        insert: opts.readonly
          ? undefined
          : this.db.prepare(
              `INSERT OR IGNORE INTO events (id, time_ms, decision, action, rule, version, method, path, status, exe, user, pid, body)
               VALUES (@id, @time_ms, @decision, @action, @rule, @version, @method, @path, @status, @exe, @user, @pid, @body)`,
            ),
      };
    } catch (err) {
      throw storeError(opts.path, 'cannot open', err);
    }
  }

  async insert(events: readonly GuardEvent[]): Promise<void> {
    const insert = this.stmts.insert;
    if (!insert) throw storeError(this.path, 'insert', new Error('opened read-only'));
    const tx = this.db.transaction((batch: readonly GuardEvent[]) => {
      for (const e of batch) {
        insert.run({
          id: e.id,
          time_ms: Date.parse(e.time),
          decision: e.decision,
          action: e.action,
          rule: e.rule,
          version: e.request.version,
          method: e.request.method,
          path: e.request.path,
          status: e.status,
          exe: e.caller?.exe ?? null,
          user: e.caller?.user ?? null,
          pid: e.caller?.pid ?? null,
          body: JSON.stringify(e),
        });
      }
    });
    tx(events);
  }

  async query(f: EventFilter): Promise<GuardEvent[]> {
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    if (f.sinceMs !== undefined) {
      where.push('time_ms >= @since');
      params['since'] = f.sinceMs;
    }
    if (f.untilMs !== undefined) {
      where.push('time_ms < @until');
      params['until'] = f.untilMs;
    }
    if (f.decision !== undefined) {
      where.push('decision = @decision');
      params['decision'] = f.decision;
    }
    if (f.exe !== undefined) {
      where.push('exe = @exe');
      params['exe'] = f.exe;
    }
    if (f.user !== undefined) {
      where.push('user = @user');
      params['user'] = f.user;
    }
    if (f.version !== undefined) {
      where.push('version = @version');
      params['version'] = f.version;
    }
    if (f.pathPrefix !== undefined && f.pathPrefix !== '') {
      // A range on the path index; substr() confirms the prefix exactly.
      where.push('path >= @plo AND path < @phi AND substr(path, 1, length(@plo)) = @plo');
      params['plo'] = f.pathPrefix;
      params['phi'] = `${f.pathPrefix}\u{10ffff}`;
    }
    if (f.after !== undefined) {
      const op = (f.order ?? 'desc') === 'asc' ? '>' : '<';
      where.push(`(time_ms ${op} @at OR (time_ms = @at AND id ${op} @aid))`);
      params['at'] = f.after.timeMs;
      params['aid'] = f.after.id;
    }
    const dir = (f.order ?? 'desc') === 'asc' ? 'ASC' : 'DESC';
    const sql = `SELECT body FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time_ms ${dir}, id ${dir} LIMIT ${limitOf(f)}`;
    try {
      const rows = this.db.prepare(sql).all(params) as Array<{ body: string }>;
      return rows.map((r) => JSON.parse(r.body) as GuardEvent);
    } catch (err) {
      throw storeError(this.path, 'query', err);
    }
  }

  /** Bytes of pages in use (the file minus its free list). */
  bytesInUse(): number {
    const pageSize = (this.db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size;
    const pages = (this.db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count;
    const free = (this.db.prepare('PRAGMA freelist_count').get() as { freelist_count: number })
      .freelist_count;
    return (pages - free) * pageSize;
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  /** Deletes events older than maxAgeMs, then the oldest tenth at a time while over maxBytes. */
  async prune(nowMs: number): Promise<number> {
    let deleted = this.db
      .prepare('DELETE FROM events WHERE time_ms < ?')
      .run(nowMs - this.retention.maxAgeMs).changes;
    for (let i = 0; i < 50 && this.bytesInUse() > this.retention.maxBytes; i++) {
      const n = this.count();
      if (n === 0) break;
      const chunk = Math.max(1, Math.ceil(n / 10));
      deleted += this.db
        .prepare('DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY time_ms, id LIMIT ?)')
        .run(chunk).changes;
    }
    return deleted;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
