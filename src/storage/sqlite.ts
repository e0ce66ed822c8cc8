/**
 * Opening an imdsguard SQLite database the one way every store does it, on Node's built-in
 * `node:sqlite` (no native addon to compile, nothing to download; it is inside the single-file
 * release too). Errors are thrown as they come (the caller wraps them in its own ImdsguardError).
 *
 * `Db` is the small surface the stores use (prepare, exec, transaction, close): the stores never see
 * node:sqlite itself, so the engine stays replaceable.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as NodeSqlite from 'node:sqlite';

/** How long a statement waits for another connection's lock before failing, milliseconds. */
export const SQLITE_BUSY_TIMEOUT_MS = 2000;

/** Most distinct SQL texts whose prepared statements one database keeps. */
export const RETAINED_STATEMENTS_MAX = 256;

/** A value bound to a statement parameter. */
export type SqlValue = string | number | bigint | null | Uint8Array;
/** Positional values, or one object of named values (`@name` in the SQL, `name` as the key). */
export type SqlParams = SqlValue[] | [Record<string, SqlValue>];

export interface Statement {
  /** Integers come back as numbers (node:sqlite's readBigInts stays off). */
  run(...params: SqlParams): { changes: number; lastInsertRowid: number };
  get(...params: SqlParams): unknown;
  all(...params: SqlParams): unknown[];
}

export interface Db {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  /** Wraps fn in BEGIN/COMMIT (ROLLBACK when it throws); a nested call joins the outer transaction. */
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  readonly open: boolean;
  close(): void;
}

export interface OpenDatabaseOptions {
  /** Open an existing file for reading only (no directory, pragmas or schema are written). */
  readonly?: boolean;
  /** The file must already exist (a writable open that must not create one). */
  mustExist?: boolean;
  /** SQL run on a writable open (CREATE ... IF NOT EXISTS). */
  schema: string;
  /** The synchronous pragma of a writable open; SQLite's default when not set. */
  synchronous?: 'NORMAL' | 'FULL';
  /** busy_timeout, milliseconds (default SQLITE_BUSY_TIMEOUT_MS). */
  busyTimeoutMs?: number;
}

let sqliteModule: typeof NodeSqlite | undefined;

/**
 * Loads node:sqlite on first use. Node 24 marks it experimental and prints a warning on load; that
 * one warning is dropped here (users of a daemon cannot act on it), every other warning still shows.
 */
function sqlite(): typeof NodeSqlite {
  if (sqliteModule) return sqliteModule;
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (type === 'ExperimentalWarning' && /SQLite/.test(text)) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    sqliteModule = createRequire(import.meta.url)('node:sqlite') as typeof NodeSqlite;
  } finally {
    process.emitWarning = emit;
  }
  return sqliteModule;
}

/**
 * Read-only: the file must exist; busy_timeout is set. Writable: the parent directory is created
 * (unless the path is ':memory:'), then WAL, the synchronous level, busy_timeout and the schema.
 * The handle is closed if a step after the open fails.
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions): Db {
  const busy = opts.busyTimeoutMs ?? SQLITE_BUSY_TIMEOUT_MS;
  const { DatabaseSync } = sqlite();
  if (opts.readonly) {
    if (!existsSync(path)) throw new Error('no such file');
    const db = new DatabaseSync(path, { readOnly: true });
    db.exec(`PRAGMA busy_timeout = ${busy}`);
    return wrap(db);
  }
  if (opts.mustExist && !existsSync(path)) throw new Error('no such file');
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  try {
    db.exec('PRAGMA journal_mode = WAL');
    if (opts.synchronous) db.exec(`PRAGMA synchronous = ${opts.synchronous}`);
    db.exec(`PRAGMA busy_timeout = ${busy}`);
    db.exec(opts.schema);
  } catch (err) {
    db.close();
    throw err;
  }
  return wrap(db);
}

/** One prepared statement per SQL text (bounded), plus transactions and an `open` flag. */
function wrap(db: NodeSqlite.DatabaseSync): Db {
  const cache = new Map<string, Statement>();
  let open = true;
  let depth = 0;
  return {
    prepare(sql) {
      const hit = cache.get(sql);
      if (hit) return hit;
      const stmt = db.prepare(sql) as unknown as Statement;
      if (cache.size < RETAINED_STATEMENTS_MAX) cache.set(sql, stmt);
      return stmt;
    },
    exec(sql) {
      db.exec(sql);
    },
    transaction(fn) {
      return (...args) => {
        if (depth > 0) {
          fn(...args);
          return;
        }
        db.exec('BEGIN');
        depth += 1;
        try {
          fn(...args);
          db.exec('COMMIT');
        } catch (err) {
          try {
            db.exec('ROLLBACK');
          } catch {
            // The transaction may already be gone (SQLite rolls back on some errors itself).
          }
          throw err;
        } finally {
          depth -= 1;
        }
      };
    },
    get open() {
      return open;
    },
    close() {
      if (!open) return;
      open = false;
      cache.clear();
      db.close();
    },
  };
}
