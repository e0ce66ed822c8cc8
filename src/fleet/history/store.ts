/**
 * The fleet history: one SQLite database (node:sqlite, WAL) of FleetSnapshot rows, one per scan.
 * `fleet discover` (and `fleet report` when it scans) adds a row; `fleet report` reads the newest
 * rows to draw the trend.
 *
 * Bounded: at most HISTORY_LIMITS.maxSnapshots rows are kept (the oldest are deleted on insert), and a
 * read returns at most HISTORY_LIMITS.maxRead rows.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ImdsguardError } from '../../errors.js';
import { type Db, openDatabase } from '../../storage/sqlite.js';
import { type FleetSnapshot, SNAPSHOT_SCHEMA_VERSION } from './snapshot.js';

export const HISTORY_LIMITS = {
  /** Snapshots kept, count (about 27 years of daily scans). */
  maxSnapshots: 10_000,
  /** Snapshots one read returns, count; the trend uses the newest ones. */
  maxRead: 1_000,
} as const;

/** The file name under the data directory. */
export const HISTORY_FILE = 'fleet-history.db';

/**
 * The default history path: IMDSGUARD_FLEET_HISTORY, else $XDG_DATA_HOME/imdsguard/fleet-history.db,
 * else $HOME/.local/share/imdsguard/fleet-history.db. undefined when none of these is set.
 */
export function defaultHistoryPath(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const explicit = env['IMDSGUARD_FLEET_HISTORY'];
  if (explicit) return explicit;
  const xdg = env['XDG_DATA_HOME'];
  if (xdg) return join(xdg, 'imdsguard', HISTORY_FILE);
  const home = env['HOME'];
  if (home) return join(home, '.local', 'share', 'imdsguard', HISTORY_FILE);
  return undefined;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS snapshots (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  source  TEXT NOT NULL,
  body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_time ON snapshots (time_ms, seq);
`;

function historyError(path: string, what: string, err: unknown): ImdsguardError {
  return new ImdsguardError(
    'IMDSGUARD_E_STORE',
    `fleet history ${path}: ${what}: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err, hint: 'check the --history path, or pass --no-history' },
  );
}

function isSnapshot(x: unknown): x is FleetSnapshot {
  if (typeof x !== 'object' || x === null) return false;
  const s = x as Partial<FleetSnapshot>;
  return (
    s.schemaVersion === SNAPSHOT_SCHEMA_VERSION &&
    typeof s.time === 'string' &&
    typeof s.overall === 'object' &&
    s.overall !== null &&
    Array.isArray(s.byAccount) &&
    Array.isArray(s.byRegion)
  );
}

export interface HistoryStoreOptions {
  path: string;
  /** Open an existing database for reading only. */
  readonly?: boolean;
  maxSnapshots?: number;
}

export class HistoryStore {
  private readonly db: Db;
  readonly path: string;
  private readonly maxSnapshots: number;

  constructor(opts: HistoryStoreOptions) {
    this.path = opts.path;
    this.maxSnapshots = opts.maxSnapshots ?? HISTORY_LIMITS.maxSnapshots;
    try {
      this.db = openDatabase(opts.path, { readonly: opts.readonly === true, schema: SCHEMA });
    } catch (err) {
      throw historyError(opts.path, 'cannot open', err);
    }
  }

  /** Adds one snapshot, then deletes the oldest beyond maxSnapshots. */
  add(s: FleetSnapshot): void {
    const timeMs = Date.parse(s.time);
    if (!Number.isFinite(timeMs)) throw historyError(this.path, 'add', new Error(`bad time "${s.time}"`));
    try {
      const tx = this.db.transaction(() => {
        this.db
          .prepare('INSERT INTO snapshots (time_ms, source, body) VALUES (?, ?, ?)')
          .run(timeMs, s.source, JSON.stringify(s));
        this.db
          .prepare(
            'DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY time_ms DESC, seq DESC LIMIT ?)',
          )
          .run(this.maxSnapshots);
      });
      tx();
    } catch (err) {
      throw historyError(this.path, 'add', err);
    }
  }

  /**
   * The newest `limit` snapshots (at most HISTORY_LIMITS.maxRead) at or after sinceMs, oldest first.
   * Rows that are not snapshots of this schema are skipped.
   */
  list(opts: { sinceMs?: number; limit?: number } = {}): FleetSnapshot[] {
    const limit = Math.max(
      0,
      Math.min(HISTORY_LIMITS.maxRead, Math.floor(opts.limit ?? HISTORY_LIMITS.maxRead)),
    );
    try {
      const rows = this.db
        .prepare('SELECT body FROM snapshots WHERE time_ms >= ? ORDER BY time_ms DESC, seq DESC LIMIT ?')
        .all(opts.sinceMs ?? Number.MIN_SAFE_INTEGER, limit) as Array<{ body: string }>;
      const out: FleetSnapshot[] = [];
      for (const r of rows) {
        try {
          const s = JSON.parse(r.body) as unknown;
          if (isSnapshot(s)) out.push(s);
        } catch {
          // A row this version cannot read: skip it.
        }
      }
      return out.reverse();
    } catch (err) {
      throw historyError(this.path, 'read', err);
    }
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM snapshots').get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Reads the snapshots of a history file; [] when the file does not exist. */
export function readHistory(path: string, opts: { sinceMs?: number; limit?: number } = {}): FleetSnapshot[] {
  if (!existsSync(path)) return [];
  const store = new HistoryStore({ path, readonly: true });
  try {
    return store.list(opts);
  } finally {
    store.close();
  }
}

/** Appends one snapshot to a history file (created with its folders when missing). */
export function appendHistory(path: string, snapshot: FleetSnapshot): void {
  const store = new HistoryStore({ path });
  try {
    store.add(snapshot);
  } finally {
    store.close();
  }
}
