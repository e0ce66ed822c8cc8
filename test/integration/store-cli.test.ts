import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsFilter } from '../../src/cli/commands/events.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { runInProcess } from '../support/cli.js';
import { writeSampleEvents } from '../support/event-store.js';

let dir: string;
let db: string;
let events: GuardEvent[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-store-cli-'));
  db = join(dir, 'events.db');
  events = await writeSampleEvents(db);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ids(args: string[]): Promise<string[]> {
  const r = await runInProcess(['events', '--db', db, '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as GuardEvent[]).map((e) => e.id);
}

describe('imdsguard events filters', () => {
  it('filters by time, decision, exe, user, path, version and limit', async () => {
    const [old, v2, token] = events.map((e) => e.id);
    expect(await ids([])).toEqual([token, v2, old]);
    expect(await ids(['--since', '1h'])).toEqual([token, v2]);
    expect(await ids(['--since', '90s'])).toEqual([token]);
    expect(await ids(['--decision', 'deny'])).toEqual([old]);
    expect(await ids(['--decision', 'allow'])).toEqual([token, v2]);
    expect(await ids(['--exe', '/usr/bin/python3'])).toEqual([token, v2]);
    expect(await ids(['--exe', '/usr/bin/python'])).toEqual([]);
    expect(await ids(['--user', 'www-data'])).toEqual([old]);
    expect(await ids(['--path', '/latest/meta-data/'])).toEqual([v2, old]);
    expect(await ids(['--version', 'token'])).toEqual([token]);
    expect(await ids(['--version', 'v1'])).toEqual([old]);
    expect(await ids(['--limit', '1'])).toEqual([token]);
  });

  it('prints a table with one row per event and notes when the limit cut the list', async () => {
    const r = await runInProcess(['events', '--db', db, '--limit', '2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      /allow\s+forwarded\s+token\s+PUT\s+\/latest\/api\/token\s+\/usr\/bin\/python3\s+app\s+77\s+200\s+imdsv2$/,
    );
    expect(r.stderr).toContain('showing the newest 2');
  });

  it('turns flags into a filter, refusing bad values with IMDSGUARD_E_USAGE', () => {
    expect(eventsFilter({ limit: '5', since: '2h', decision: 'deny', path: '/latest/' }, 10_000_000)).toEqual(
      {
        limit: 5,
        sinceMs: 10_000_000 - 7_200_000,
        decision: 'deny',
        pathPrefix: '/latest/',
      },
    );
    expect(() => eventsFilter({ limit: '0' }, 0)).toThrow(
      expect.objectContaining({ code: 'IMDSGUARD_E_USAGE' }),
    );
    expect(() => eventsFilter({ limit: '10', version: 'v3' }, 0)).toThrow(/--version/);
  });
});
