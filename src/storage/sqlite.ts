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
    const db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    return db;
  }
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    if (opts.synchronous) db.pragma(`synchronous = ${opts.synchronous}`);
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    db.exec(opts.schema);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
