import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsFilter } from '../../src/cli/commands/events.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { SqliteEventStore } from '../../src/guard/store/index.js';
import { runInProcess } from '../support/cli.js';
import { writeSampleEvents } from '../support/event-store.js';
import { makeEvent } from '../support/guard-events.js';

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
    const now = Date.UTC(2026, 10, 20, 12, 0, 0);
    expect(eventsFilter({ limit: '5', since: '2026-11-20T10:00:00Z', until: '1h' }, now)).toEqual({
      limit: 5,
      sinceMs: Date.UTC(2026, 10, 20, 10, 0, 0),
      untilMs: Date.UTC(2026, 10, 20, 11, 0, 0),
    });
    expect(() => eventsFilter({ limit: '5', since: '1h', until: '2h' }, now)).toThrow(
      expect.objectContaining({
        code: 'IMDSGUARD_E_USAGE',
        message: '--until (2026-11-20T10:00:00.000Z) must be later than --since (2026-11-20T11:00:00.000Z)',
      }),
    );
  });
});

describe('imdsguard events --since/--until: a time window', () => {
  // Fixed times around the window 2026-11-20 10:00 .. 11:00 UTC, with the edges on the millisecond.
  const at = (iso: string, over: Parameters<typeof makeEvent>[0] = {}) => makeEvent({ time: iso, ...over });
  const fixed = {
    before: at('2026-11-20T09:59:59.999Z'),
    start: at('2026-11-20T10:00:00.000Z'),
    mid: at('2026-11-20T10:30:00.000Z', {
      decision: 'allow',
      action: 'forwarded',
      rule: 'imdsv2',
      status: 200,
      request: { version: 'v2' },
    }),
    last: at('2026-11-20T10:59:59.999Z'),
    end: at('2026-11-20T11:00:00.000Z'),
    nextDay: at('2026-11-21T00:00:00.000Z'),
  };
  let windowDb: string;

  beforeAll(async () => {
    windowDb = join(dir, 'window.db');
    const store = new SqliteEventStore({ path: windowDb });
    await store.insert(Object.values(fixed));
    await store.close();
  });

  async function windowIds(args: string[]): Promise<string[]> {
    const r = await runInProcess(['events', '--db', windowDb, '--json', ...args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as GuardEvent[]).map((e) => e.id);
  }

  it('shows the events from --since (included) to --until (excluded), newest first', async () => {
    const { before, start, mid, last, end, nextDay } = fixed;
    expect(await windowIds(['--since', '2026-11-20T10:00:00Z', '--until', '2026-11-20T11:00:00Z'])).toEqual([
      last.id,
      mid.id,
      start.id,
    ]);
    // The same hour written with an offset, and with a minute-only time.
    expect(
      await windowIds(['--since', '2026-11-20T12:00:00+02:00', '--until', '2026-11-20T12:30+0200']),
    ).toEqual([start.id]);
    expect(await windowIds(['--until', '2026-11-20T10:30:00.000Z'])).toEqual([start.id, before.id]);
    expect(await windowIds(['--since', '2026-11-20T10:59:59.999Z'])).toEqual([nextDay.id, end.id, last.id]);
    // A date alone is 00:00 UTC.
    expect(await windowIds(['--since', '2026-11-21'])).toEqual([nextDay.id]);
    expect(await windowIds(['--until', '2026-11-21'])).toEqual([
      end.id,
      last.id,
      mid.id,
      start.id,
      before.id,
    ]);
    // With the other filters and the limit.
    expect(
      await windowIds([
        '--since',
        '2026-11-20T10:00:00Z',
        '--until',
        '2026-11-20T11:00:00Z',
        '--decision',
        'deny',
      ]),
    ).toEqual([last.id, start.id]);
    expect(
      await windowIds([
        '--since',
        '2026-11-20T10:00:00Z',
        '--until',
        '2026-11-20T11:00:00Z',
        '--version',
        'v2',
      ]),
    ).toEqual([mid.id]);
    expect(
      await windowIds(['--since', '2026-11-20T10:00:00Z', '--until', '2026-11-20T11:00:00Z', '--limit', '2']),
    ).toEqual([last.id, mid.id]);
    // A window with nothing in it.
    expect(
      await windowIds(['--since', '2026-11-20T11:00:00.001Z', '--until', '2026-11-20T23:00:00Z']),
    ).toEqual([]);
  });

  it('counts durations back from now, alone or mixed with a time', async () => {
    // The sample store: old (3 h ago), v2 (30 min ago), token (1 min ago).
    const [old, v2, token] = events.map((e) => e.id);
    expect(await ids(['--since', '2h', '--until', '10m'])).toEqual([v2]);
    expect(await ids(['--until', '10m'])).toEqual([v2, old]);
    expect(await ids(['--since', '4h', '--until', '1h'])).toEqual([old]);
    expect(
      await ids(['--until', '2h', '--since', new Date(Date.now() - 4 * 3_600_000).toISOString()]),
    ).toEqual([old]);
    expect(await ids(['--since', '45m', '--until', new Date(Date.now() + 60_000).toISOString()])).toEqual([
      token,
      v2,
    ]);
  });

  it('prints the table of a window, and the window message when empty', async () => {
    const r = await runInProcess([
      'events',
      '--db',
      windowDb,
      '--since',
      '2026-11-20T10:00:00Z',
      '--until',
      '2026-11-20T11:00:00Z',
      '--limit',
      '2',
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^2026-11-20T10:59:59\.999Z\s+deny/);
    expect(lines[2]).toMatch(/^2026-11-20T10:30:00\.000Z\s+allow/);
    expect(r.stderr).toBe('(showing the newest 2; use --limit, or --since/--until for a window)\n');
  });

  it('refuses an invalid time, or --until not after --since, with IMDSGUARD_E_USAGE (exit 2)', async () => {
    const refused = async (args: string[], message: string) => {
      const r = await runInProcess(['events', '--db', windowDb, ...args]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const [first, hint] = r.stderr.split('\n');
      const head = `imdsguard: ${message}`;
      expect(first?.slice(0, head.length)).toBe(head);
      expect(first).toMatch(/ \[IMDSGUARD_E_USAGE\]$/);
      expect(hint).toMatch(/^hint: /);
    };
    await refused(
      ['--since', '2026-11-20T11:00:00Z', '--until', '2026-11-20T10:00:00Z'],
      '--until (2026-11-20T10:00:00.000Z) must be later than --since (2026-11-20T11:00:00.000Z)',
    );
    await refused(
      ['--since', '2026-11-20T10:00:00Z', '--until', '2026-11-20T12:00:00+02:00'],
      '--until (2026-11-20T10:00:00.000Z) must be later than --since (2026-11-20T10:00:00.000Z)',
    );
    await refused(['--since', '1h', '--until', '2h'], '--until (');
    await refused(
      ['--until', 'tomorrow'],
      '--until: expected a duration or an ISO-8601 time, got "tomorrow"',
    );
    await refused(
      ['--since', 'yesterday'],
      '--since: expected a duration or an ISO-8601 time, got "yesterday"',
    );
    await refused(['--until', ''], '--until: expected a duration or an ISO-8601 time, got ""');
    await refused(['--until', '2026-11-20T10:00:00'], '--until: "2026-11-20T10:00:00" has no time zone');
    await refused(['--until', '2026-02-29T00:00:00Z'], '--until: "2026-02-29T00:00:00Z" is not a valid date');
    await refused(['--since', '2026-13-01'], '--since: "2026-13-01" is not a valid date');
    await refused(['--since', '2026-11-20T24:00:00Z'], '--since: "2026-11-20T24:00:00Z" is not a valid date');
    await refused(
      ['--since', '2026-11-20T10:00:00+24:00'],
      '--since: "2026-11-20T10:00:00+24:00" is not a valid date',
    );
    await refused(
      ['--since', '1969-12-31T23:59:59Z'],
      '--since: "1969-12-31T23:59:59Z" is outside 1970-01-01',
    );
    await refused(['--since', '0099-01-01'], '--since: "0099-01-01" is outside 1970-01-01');
    await refused(
      ['--since', '1970-01-01T01:00:00+02:00'],
      '--since: "1970-01-01T01:00:00+02:00" is outside 1970-01-01 .. 9999-12-31',
    );
    await refused(['--since', '99999999999w'], '--since: "99999999999w" is outside 1970-01-01');
    const long = `2026-11-20T10:00:00Z${'0'.repeat(80)}`;
    await refused(
      ['--until', long],
      `--until: expected a duration or an ISO-8601 time, got "${long.slice(0, 64)}"`,
    );
  });
});
