import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase, RETAINED_STATEMENTS_MAX } from '../../src/storage/sqlite.js';

describe('openDatabase', () => {
  it('keeps one live statement per SQL text, bounded, and leaves pragmas working', () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'imdsg-sqlite-')), 'x.db'), {
      schema: 'CREATE TABLE IF NOT EXISTS t (x INTEGER)',
    });
    try {
      const a = db.prepare('INSERT INTO t (x) VALUES (?)');
      expect(db.prepare('INSERT INTO t (x) VALUES (?)')).toBe(a);
      a.run(1);
      db.prepare('INSERT INTO t (x) VALUES (?)').run(2);
      expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 2 });
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      for (let i = 0; i < RETAINED_STATEMENTS_MAX + 10; i++) db.prepare(`SELECT ${i} AS v`).get();
      const past = `SELECT ${RETAINED_STATEMENTS_MAX + 5} AS v`;
      expect(db.prepare(past)).not.toBe(db.prepare(past));
    } finally {
      db.close();
    }
  });
});
