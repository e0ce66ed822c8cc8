/**
 * Opening an imdsguard SQLite database (better-sqlite3) the one way every store does it.
 * Errors are thrown as they come (the caller wraps them in its own ImdsguardError).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/** How long a statement waits for another connection's lock before failing, milliseconds. */
export const SQLITE_BUSY_TIMEOUT_MS = 2000;

export interface OpenDatabaseOptions {
  /** Open an existing file for reading only (no directory, pragmas or schema are written). */
  readonly?: boolean;
  /** SQL run on a writable open (CREATE ... IF NOT EXISTS). */
  schema: string;
  /** The synchronous pragma of a writable open; SQLite's default when not set. */
  synchronous?: 'NORMAL' | 'FULL';
}

/**
 * Read-only: the file must exist; busy_timeout is set. Writable: the parent directory is created
 * (unless the path is ':memory:'), then WAL, the synchronous level, busy_timeout and the schema.
 * The handle is closed if a step after the open fails.
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions): Database.Database {
  if (opts.readonly) {
    if (!existsSync(path)) throw new Error('no such file');
    const db = retainStatements(new Database(path, { readonly: true, fileMustExist: true }));
    db.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    return db;
  }
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = retainStatements(new Database(path));
  try {
    db.exec('PRAGMA journal_mode = WAL');
    if (opts.synchronous) db.exec(`PRAGMA synchronous = ${opts.synchronous}`);
    db.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    db.exec(opts.schema);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Most distinct SQL texts whose statements one database keeps alive. */
export const RETAINED_STATEMENTS_MAX = 256;

/**
 * Keeps each prepared statement alive as long as its database, one per SQL text (bounded by
 * RETAINED_STATEMENTS_MAX; past it, statements are prepared as usual). better-sqlite3 12 on Node 24
 * can abort the process when the garbage collector frees a statement (`Statement::~Statement` ->
 * `RemoveEnvironmentCleanupHook`, "Assertion failed: (env) != nullptr"); statements that are never
 * garbage collected while the database is open avoid it, and preparing each SQL text once is cheaper.
 * For the same reason imdsguard never calls db.pragma() (its statement is prepared natively and
 * left to the collector): write pragmas go through db.exec('PRAGMA ...'), reads through prepare().
 */
export function retainStatements(db: Database.Database): Database.Database {
  const cache = new Map<string, Database.Statement>();
  const prepare = db.prepare.bind(db) as (...args: unknown[]) => Database.Statement;
  const retained = (...args: unknown[]): Database.Statement => {
    const sql = args[0];
    if (args.length !== 1 || typeof sql !== 'string') return prepare(...args);
    const hit = cache.get(sql);
    if (hit) return hit;
    const stmt = prepare(sql);
    if (cache.size < RETAINED_STATEMENTS_MAX) cache.set(sql, stmt);
    return stmt;
  };
  db.prepare = retained as typeof db.prepare;
  return db;
}
