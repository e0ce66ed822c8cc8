import { ImdsguardError } from '../../errors.js';
import { type Db, openDatabase } from '../../storage/sqlite.js';

const SPOOL_SCHEMA = `
  CREATE TABLE IF NOT EXISTS alerts (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, bytes INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/**
 * The durable alert spool: an append-only SQLite table (WAL) of serialized alerts in order, plus one
 * cursor per sink (the last sequence number it accepted). Each sink reads after its cursor, so it gets
 * every alert in order, and a restart resumes where each sink stopped. Rows every active sink has
 * passed are deleted.
 *
 * Bounded by size: when the alerts held exceed maxBytes, the OLDEST are deleted and counted as
 * dropped (a sink that is down for very long loses its oldest alerts first, and never the newest).
 */
export interface SpoolOptions {
  /** SQLite file, or ':memory:' (not durable: lost on restart). */
  path: string;
  /** Most bytes of alert bodies held. */
  maxBytes: number;
}

export interface SpoolRow {
  seq: number;
  body: string;
}

export interface SpoolStats {
  /** Alerts held. */
  alerts: number;
  /** Bytes of alert bodies held. */
  bytes: number;
  /** Alerts deleted unsent because the spool was full, since it was created. */
  dropped: number;
}

export class Spool {
  private readonly db: Db;
  private readonly maxBytes: number;
  private bytes: number;
  private count: number;
  private dropped: number;
  private active = new Set<string>();
  /** Each sink's cursor; written to the database by persist() (at most tickMs later, and at close). */
  private readonly cursors = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly stmts;

  constructor(opts: SpoolOptions) {
    this.maxBytes = opts.maxBytes;
    try {
      this.db = openDatabase(opts.path, { schema: SPOOL_SCHEMA, synchronous: 'NORMAL' });
    } catch (err) {
      throw new ImdsguardError(
        'IMDSGUARD_E_STORE',
        `cannot open the alert spool ${opts.path}: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
          hint: 'check that the directory exists and is writable by the guard user',
        },
      );
    }
    this.stmts = {
      insert: this.db.prepare('INSERT INTO alerts (body, bytes) VALUES (?, ?)'),
      read: this.db.prepare('SELECT seq, body FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?'),
      cursor: this.db.prepare('SELECT seq FROM cursors WHERE sink = ?'),
      setCursor: this.db.prepare(
        'INSERT INTO cursors (sink, seq) VALUES (?, ?) ON CONFLICT(sink) DO UPDATE SET seq = excluded.seq',
      ),
      maxSeq: this.db.prepare(
        "SELECT COALESCE(MAX(seq), (SELECT seq FROM sqlite_sequence WHERE name = 'alerts'), 0) AS s FROM alerts",
      ),
      oldest: this.db.prepare('SELECT seq, bytes FROM alerts ORDER BY seq LIMIT ?'),
      deleteUpTo: this.db.prepare('DELETE FROM alerts WHERE seq <= ?'),
      sumUpTo: this.db.prepare(
        'SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM alerts WHERE seq <= ?',
      ),
      backlog: this.db.prepare('SELECT COUNT(*) AS n FROM alerts WHERE seq > ?'),
      getMeta: this.db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: this.db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
    };
    const totals = this.db
      .prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM alerts')
      .get() as {
      n: number;
      b: number;
    };
    this.count = totals.n;
    this.bytes = totals.b;
    this.dropped = (this.stmts.getMeta.get('dropped') as { value: number } | undefined)?.value ?? 0;
  }

  /**
   * Declares the sinks that read this spool. A sink seen for the first time starts after the newest
   * alert held (it does not receive an old backlog); a known sink keeps its cursor.
   */
  register(sinks: readonly string[]): void {
    this.active = new Set(sinks);
    const max = (this.stmts.maxSeq.get() as { s: number }).s;
    const tx = this.db.transaction(() => {
      for (const name of sinks) {
        const row = this.stmts.cursor.get(name) as { seq: number } | undefined;
        if (row === undefined) this.stmts.setCursor.run(name, max);
        this.cursors.set(name, row?.seq ?? max);
      }
    });
    tx();
    this.collect();
  }

  /** Appends alerts in order (one transaction). Returns how many old alerts were dropped to make room. */
  append(bodies: readonly string[]): number {
    if (bodies.length === 0) return 0;
    let dropped = 0;
    const tx = this.db.transaction(() => {
      for (const body of bodies) {
        const bytes = Buffer.byteLength(body, 'utf8');
        this.stmts.insert.run(body, bytes);
        this.bytes += bytes;
        this.count += 1;
      }
      dropped = this.enforceBound();
    });
    tx();
    return dropped;
  }

  private enforceBound(): number {
    if (this.bytes <= this.maxBytes) return 0;
    let dropped = 0;
    while (this.bytes > this.maxBytes && this.count > 0) {
      const rows = this.stmts.oldest.all(256) as Array<{ seq: number; bytes: number }>;
      let upTo = 0;
      let freed = 0;
      let n = 0;
      for (const r of rows) {
        upTo = r.seq;
        freed += r.bytes;
        n += 1;
        if (this.bytes - freed <= this.maxBytes) break;
      }
      this.stmts.deleteUpTo.run(upTo);
      this.bytes -= freed;
      this.count -= n;
      dropped += n;
    }
    this.dropped += dropped;
    this.stmts.setMeta.run('dropped', this.dropped);
    return dropped;
  }

  /** The next alerts after the sink's cursor, oldest first. */
  read(sink: string, limit: number): SpoolRow[] {
    return this.stmts.read.all(this.cursorOf(sink), limit) as SpoolRow[];
  }

  cursorOf(sink: string): number {
    return this.cursors.get(sink) ?? (this.stmts.cursor.get(sink) as { seq: number } | undefined)?.seq ?? 0;
  }

  /**
   * Records that the sink accepted everything up to seq. The cursor is kept in memory and written by
   * persist(): after a crash a sink may get up to one persist interval of alerts again (at least once).
   */
  ack(sink: string, seq: number): void {
    this.cursors.set(sink, seq);
    this.dirty.add(sink);
  }

  /** Writes the cursors that moved, and deletes the alerts every sink has passed (one transaction). */
  persist(): void {
    if (this.dirty.size === 0 || !this.db.open) return;
    const tx = this.db.transaction(() => {
      for (const name of this.dirty) this.stmts.setCursor.run(name, this.cursors.get(name) ?? 0);
      this.dirty.clear();
      this.collect();
    });
    tx();
  }

  /** Alerts the sink has not accepted yet. */
  backlog(sink: string): number {
    return (this.stmts.backlog.get(this.cursorOf(sink)) as { n: number }).n;
  }

  private collect(): void {
    if (this.active.size === 0) return;
    let min = Number.POSITIVE_INFINITY;
    for (const name of this.active) min = Math.min(min, this.cursorOf(name));
    if (!Number.isFinite(min) || min <= 0) return;
    const gone = this.stmts.sumUpTo.get(min) as { n: number; b: number };
    if (gone.n === 0) return;
    this.stmts.deleteUpTo.run(min);
    this.count -= gone.n;
    this.bytes -= gone.b;
  }

  stats(): SpoolStats {
    return { alerts: this.count, bytes: this.bytes, dropped: this.dropped };
  }

  /** True when a write transaction can start now (for /readyz). */
  isWritable(): boolean {
    if (!this.db.open) return false;
    try {
      this.db.exec('BEGIN IMMEDIATE; ROLLBACK');
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (!this.db.open) return;
    this.persist();
    this.db.close();
  }
}
