import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsFilter } from '../../src/cli/commands/events.js';
import { SqliteEventStore } from '../../src/guard/events/store.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { runInProcess } from '../support/cli.js';
import { makeEvent } from '../support/guard-events.js';

let dir: string;
let db: string;
let events: GuardEvent[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-store-cli-'));
  db = join(dir, 'events.db');
  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms).toISOString();
  events = [
    makeEvent({
      time: ago(3 * 3_600_000),
      request: { path: '/latest/meta-data/iam/security-credentials/', version: 'v1' },
    }),
    makeEvent({
      time: ago(30 * 60_000),
      decision: 'allow',
      action: 'forwarded',
      rule: 'imdsv2',
      alert: false,
      status: 200,
      request: { path: '/latest/meta-data/instance-id', version: 'v2' },
      caller: { resolved: 'full', pid: 77, exe: '/usr/bin/python3', user: 'app' },
    }),
    makeEvent({
      time: ago(60_000),
      decision: 'allow',
      action: 'forwarded',
      rule: 'imdsv2',
      alert: false,
      status: 200,
      request: { method: 'PUT', path: '/latest/api/token', version: 'token' },
      caller: { resolved: 'full', pid: 77, exe: '/usr/bin/python3', user: 'app' },
    }),
  ];
  const store = new SqliteEventStore({ path: db });
  await store.insert(events);
  await store.close();
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
