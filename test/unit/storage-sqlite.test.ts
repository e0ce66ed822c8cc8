import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase, RETAINED_STATEMENTS_MAX } from '../../src/storage/sqlite.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'imdsg-sqlite-'));
const SCHEMA = 'CREATE TABLE IF NOT EXISTS t (x INTEGER)';

describe('openDatabase', () => {
  it('keeps one statement per SQL text, bounded, and opens in WAL mode', () => {
    const db = openDatabase(join(tmp(), 'x.db'), { schema: SCHEMA });
    try {
      const a = db.prepare('INSERT INTO t (x) VALUES (?)');
      expect(db.prepare('INSERT INTO t (x) VALUES (?)')).toBe(a);
      expect(a.run(1).changes).toBe(1);
      db.prepare('INSERT INTO t (x) VALUES (@x)').run({ x: 2 });
      expect({ ...(db.prepare('SELECT COUNT(*) AS n FROM t').get() as object) }).toEqual({ n: 2 });
      expect({ ...(db.prepare('PRAGMA journal_mode').get() as object) }).toEqual({ journal_mode: 'wal' });
      for (let i = 0; i < RETAINED_STATEMENTS_MAX + 10; i++) db.prepare(`SELECT ${i} AS v`).get();
      const past = `SELECT ${RETAINED_STATEMENTS_MAX + 5} AS v`;
      expect(db.prepare(past)).not.toBe(db.prepare(past));
    } finally {
      db.close();
    }
    expect(db.open).toBe(false);
  });

  it('commits a transaction, rolls it back when it throws, and lets a nested call join it', () => {
    const db = openDatabase(':memory:', { schema: SCHEMA });
    const count = () => (db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;
    const insert = (x: number) => db.prepare('INSERT INTO t (x) VALUES (?)').run(x);
    db.transaction(() => {
      insert(1);
      db.transaction(() => insert(2))();
    })();
    expect(count()).toBe(2);
    expect(() =>
      db.transaction(() => {
        insert(3);
        throw new Error('boom');
      })(),
    ).toThrow('boom');
    expect(count()).toBe(2);
    db.transaction((n: number) => insert(n))(4);
    expect(count()).toBe(3);
    db.close();
  });

  it('opens read-only only an existing file, and refuses writes through it', () => {
    const path = join(tmp(), 'ro.db');
    expect(() => openDatabase(path, { schema: SCHEMA, readonly: true })).toThrow(/no such file/);
    expect(() => openDatabase(path, { schema: SCHEMA, mustExist: true })).toThrow(/no such file/);
    openDatabase(path, { schema: SCHEMA }).close();
    const ro = openDatabase(path, { schema: SCHEMA, readonly: true });
    expect(() => ro.prepare('INSERT INTO t (x) VALUES (1)').run()).toThrow(/readonly/);
    ro.close();
  });
});
