import { ImdsguardError } from '../../errors.js';
import type { ImdsVersion } from '../../imds/version.js';
import { type Db, openDatabase } from '../../storage/sqlite.js';
import type { DecisionKind, EventRecorder, GuardEvent } from './types.js';

/**
 * The event store: every GuardEvent, queryable by time, decision, exe, user, path and version.
 * One interface, two implementations (SQLite for real use, memory for tests), one contract suite
 * (test/integration/store-contract.test.ts).
 */

export interface EventFilter {
  /** Events at or after this time (milliseconds since the epoch). */
  sinceMs?: number;
  /** Events before this time (milliseconds since the epoch). */
  untilMs?: number;
  decision?: DecisionKind;
  /** The caller's executable, exactly. */
  exe?: string;
  /** The caller's user name, exactly. */
  user?: string;
  /** Request paths starting with this. */
  pathPrefix?: string;
  version?: ImdsVersion;
  /** Most events returned (default 100). */
  limit?: number;
  /** newest first (default) or oldest first. */
  order?: 'desc' | 'asc';
  /** Keyset paging: only events after this one in the query's order. */
  after?: { timeMs: number; id: string };
}

/** Most events one query returns. */
export const MAX_QUERY_LIMIT = 100_000;
export const DEFAULT_QUERY_LIMIT = 100;

export interface EventStore {
  insert(events: readonly GuardEvent[]): Promise<void>;
  /** Matching events, newest first unless order is 'asc'; ties broken by id. */
  query(filter: EventFilter): Promise<GuardEvent[]>;
  /** Applies retention now; returns how many events were deleted. */
  prune(nowMs: number): Promise<number>;
  close(): Promise<void>;
}

export interface RetentionOptions {
  /** Oldest event kept, milliseconds. */
  maxAgeMs: number;
  /** Most bytes of database pages in use. */
  maxBytes: number;
}

export const DEFAULT_RETENTION: RetentionOptions = { maxAgeMs: 30 * 86_400_000, maxBytes: 256 * 1024 * 1024 };

function limitOf(f: EventFilter): number {
  const n = f.limit ?? DEFAULT_QUERY_LIMIT;
  return Math.max(0, Math.min(MAX_QUERY_LIMIT, Math.floor(n)));
}

/** The same predicate in memory, for the memory store (and to keep both semantics side by side). */
export function matches(e: GuardEvent, f: EventFilter): boolean {
  const t = Date.parse(e.time);
  if (f.sinceMs !== undefined && !(t >= f.sinceMs)) return false;
  if (f.untilMs !== undefined && !(t < f.untilMs)) return false;
  if (f.decision !== undefined && e.decision !== f.decision) return false;
  if (f.exe !== undefined && e.caller?.exe !== f.exe) return false;
  if (f.user !== undefined && e.caller?.user !== f.user) return false;
  if (f.pathPrefix !== undefined && !e.request.path.startsWith(f.pathPrefix)) return false;
  if (f.version !== undefined && e.request.version !== f.version) return false;
  if (f.after !== undefined) {
    const a = f.after;
    const later = t > a.timeMs || (t === a.timeMs && e.id > a.id);
    const earlier = t < a.timeMs || (t === a.timeMs && e.id < a.id);
    if ((f.order ?? 'desc') === 'asc' ? !later : !earlier) return false;
  }
  return true;
}

function compare(a: GuardEvent, b: GuardEvent): number {
  const d = Date.parse(a.time) - Date.parse(b.time);
  if (d !== 0) return d;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Events in memory, bounded by count (oldest dropped), for tests and for runs without a --db. */
export class MemoryEventStore implements EventStore {
  private events: GuardEvent[] = [];
  private readonly ids = new Set<string>();
  private readonly retention: RetentionOptions;
  private readonly maxEvents: number;

  constructor(opts: { retention?: RetentionOptions; maxEvents?: number } = {}) {
    this.retention = opts.retention ?? DEFAULT_RETENTION;
    this.maxEvents = opts.maxEvents ?? 100_000;
  }

  async insert(events: readonly GuardEvent[]): Promise<void> {
    for (const e of events) {
      if (this.ids.has(e.id)) continue;
      this.ids.add(e.id);
      this.events.push(structuredClone(e));
    }
    this.events.sort(compare);
    if (this.events.length > this.maxEvents) {
      for (const e of this.events.splice(0, this.events.length - this.maxEvents)) this.ids.delete(e.id);
    }
  }

  async query(filter: EventFilter): Promise<GuardEvent[]> {
    const hits = this.events.filter((e) => matches(e, filter));
    if ((filter.order ?? 'desc') === 'desc') hits.reverse();
    return hits.slice(0, limitOf(filter)).map((e) => structuredClone(e));
  }

  async prune(nowMs: number): Promise<number> {
    const before = this.events.length;
    const cutoff = nowMs - this.retention.maxAgeMs;
    this.events = this.events.filter((e) => {
      const keep = Date.parse(e.time) >= cutoff;
      if (!keep) this.ids.delete(e.id);
      return keep;
    });
    return before - this.events.length;
  }

  async close(): Promise<void> {
    this.events = [];
    this.ids.clear();
  }
}

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

export interface StoreRecorderOptions {
  /** Events buffered before insert, count; beyond it they are dropped and counted. */
  maxBuffered: number;
  /** Longest wait before a batch is written, milliseconds. */
  flushMs: number;
  /** A batch is written as soon as this many events wait. */
  batchSize: number;
  /** How often retention runs, milliseconds. */
  pruneEveryMs: number;
  now?: () => number;
  log?: (message: string) => void;
}

export const DEFAULT_STORE_RECORDER: StoreRecorderOptions = {
  maxBuffered: 10_000,
  flushMs: 200,
  batchSize: 500,
  pruneEveryMs: 60_000,
};

/** Feeds a store from the request path: record() buffers; inserts run in batches on a later tick. */
export class StoreRecorder implements EventRecorder {
  private buffer: GuardEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pruneTimer: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  dropped = 0;
  inserted = 0;
  failed = 0;
  readonly store: EventStore;
  private readonly opts: StoreRecorderOptions;

  constructor(store: EventStore, opts: StoreRecorderOptions = DEFAULT_STORE_RECORDER) {
    this.store = store;
    this.opts = opts;
    this.pruneTimer = setInterval(() => {
      this.writing = this.writing.then(() => this.prune());
    }, opts.pruneEveryMs);
    this.pruneTimer.unref();
    this.writing = this.prune();
  }

  private async prune(): Promise<void> {
    try {
      await this.store.prune((this.opts.now ?? Date.now)());
    } catch (err) {
      this.opts.log?.(`event store retention failed: ${(err as Error).message}`);
    }
  }

  record(event: GuardEvent): void {
    if (this.closed) return;
    if (this.buffer.length >= this.opts.maxBuffered) {
      this.dropped += 1;
      return;
    }
    this.buffer.push(event);
    if (this.buffer.length >= this.opts.batchSize) this.schedule(0);
    else this.schedule(this.opts.flushMs);
  }

  /** Events waiting to be written. */
  get depth(): number {
    return this.buffer.length;
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined && ms > 0) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
  }

  /** Writes what is buffered; resolves when written. */
  flush(): Promise<void> {
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length > 0) {
      this.writing = this.writing.then(async () => {
        try {
          await this.store.insert(batch);
          this.inserted += batch.length;
        } catch (err) {
          this.failed += batch.length;
          this.opts.log?.(`event store: ${batch.length} events not written: ${(err as Error).message}`);
        }
      });
    }
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    clearInterval(this.pruneTimer);
    await this.flush();
    await this.store.close();
  }
}

/**
 * Reads events from a store database, oldest first, page by page (bounded memory). For
 * `imdsguard callers --db FILE`. A path is opened read-only and closed at the end.
 */
export async function* readEventsFromStore(
  db: string | EventStore,
  filter: Omit<EventFilter, 'order' | 'after'> = {},
): AsyncIterable<GuardEvent> {
  const store = typeof db === 'string' ? new SqliteEventStore({ path: db, readonly: true }) : db;
  const page = 1000;
  let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
  let after: EventFilter['after'];
  try {
    while (remaining > 0) {
      const rows = await store.query({
        ...filter,
        ...(after ? { after } : {}),
        order: 'asc',
        limit: Math.min(page, remaining),
      });
      for (const e of rows) yield e;
      remaining -= rows.length;
      const last = rows[rows.length - 1];
      if (!last || rows.length < page) break;
      after = { timeMs: Date.parse(last.time), id: last.id };
    }
  } finally {
    if (typeof db === 'string') await store.close();
  }
}
