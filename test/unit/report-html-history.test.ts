/** The fleet history: snapshot contents, the SQLite store (order, bounds, read-only), default paths. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../src/cli/context.js';
import { readHistoryOption } from '../../src/cli/fleet-options.js';
import { isImdsguardError } from '../../src/errors.js';
import { type FleetSnapshot, makeSnapshot } from '../../src/fleet/history/snapshot.js';
import { defaultHistoryPath, HistoryStore, readHistory } from '../../src/fleet/history/store.js';
import { findFindings } from '../../src/fleet/posture/findings.js';
import { summarize } from '../../src/fleet/posture/summary.js';
import { recordSnapshot } from '../../src/fleet/run/history.js';
import { capture } from '../support/cli.js';
import { smallInventory } from '../support/fleet-records.js';

const inventory = smallInventory();
const dir = mkdtempSync(join(tmpdir(), 'imdsguard-history-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function snap(time: string, enforced = 1): FleetSnapshot {
  const summary = summarize(inventory);
  const s = makeSnapshot({ time, source: 'test', failures: 0, summary, findings: [] });
  s.overall.tokensRequired = enforced;
  return s;
}

function ctx(env: Record<string, string>, cwd = dir): CliContext & { err: ReturnType<typeof capture> } {
  const err = capture();
  return {
    stdout: capture(),
    stderr: err,
    err,
    env,
    cwd,
    shutdown: Promise.resolve('x'),
    onReload: () => () => {},
    confirm: async () => false,
    exitCode: 0,
  };
}

describe('makeSnapshot', () => {
  it('keeps the counts per account, per region and overall, and the findings by severity', () => {
    const summary = summarize(inventory);
    const findings = findFindings(inventory);
    const s = makeSnapshot({
      time: inventory.generatedAt,
      source: 'fleet discover',
      failures: 0,
      summary,
      findings,
    });
    expect(s.overall).toEqual({
      instances: summary.overall.instances,
      tokensRequired: summary.overall.tokensRequired,
      tokensOptional: summary.overall.tokensOptional,
      endpointDisabled: summary.overall.endpointDisabled,
      percentEnforced: summary.overall.percent.tokensRequired,
    });
    expect(s.byAccount.map((a) => a.accountId)).toEqual(summary.byAccount.map((a) => a.accountId));
    expect(s.byRegion.map((r) => [r.region, r.instances])).toEqual(
      summary.byRegion.map((r) => [r.region, r.instances]),
    );
    expect(Object.values(s.findings).reduce((a, b) => a + b, 0)).toBe(findings.length);
    expect(s.readiness).toBeNull();
  });
});

describe('HistoryStore', () => {
  it('lists snapshots oldest first, the newest `limit` of them, from sinceMs', () => {
    const store = new HistoryStore({ path: join(dir, 'order.db') });
    store.add(snap('2026-01-03T00:00:00.000Z', 3));
    store.add(snap('2026-01-01T00:00:00.000Z', 1));
    store.add(snap('2026-01-02T00:00:00.000Z', 2));
    expect(store.list().map((s) => s.overall.tokensRequired)).toEqual([1, 2, 3]);
    expect(store.list({ limit: 2 }).map((s) => s.overall.tokensRequired)).toEqual([2, 3]);
    expect(store.list({ sinceMs: Date.parse('2026-01-02T00:00:00.000Z') }).length).toBe(2);
    store.close();
  });

  it('keeps at most maxSnapshots, deleting the oldest', () => {
    const store = new HistoryStore({ path: join(dir, 'bounded.db'), maxSnapshots: 5 });
    for (let d = 1; d <= 9; d++) store.add(snap(`2026-02-0${d}T00:00:00.000Z`, d));
    expect(store.count()).toBe(5);
    expect(store.list().map((s) => s.overall.tokensRequired)).toEqual([5, 6, 7, 8, 9]);
    store.close();
  });

  it('skips rows that are not snapshots, refuses a bad time, and reads a missing file as empty', () => {
    const path = join(dir, 'mixed.db');
    const store = new HistoryStore({ path });
    store.add(snap('2026-03-01T00:00:00.000Z'));
    expect(() => store.add({ ...snap('x'), time: 'not a time' })).toThrow(/bad time/);
    store.close();
    const raw = new DatabaseSync(path);
    raw.prepare('INSERT INTO snapshots (time_ms, source, body) VALUES (?, ?, ?)').run(1, 'x', '{not json');
    raw
      .prepare('INSERT INTO snapshots (time_ms, source, body) VALUES (?, ?, ?)')
      .run(2, 'x', '{"schemaVersion":99}');
    raw.close();
    expect(readHistory(path)).toHaveLength(1);
    expect(readHistory(join(dir, 'none.db'))).toEqual([]);
    try {
      new HistoryStore({ path: join(dir, 'none.db'), readonly: true });
      expect.unreachable();
    } catch (err) {
      expect(isImdsguardError(err, 'IMDSGUARD_E_STORE')).toBe(true);
    }
  });
});

describe('history paths and recording', () => {
  it('defaults: IMDSGUARD_FLEET_HISTORY, then XDG_DATA_HOME, then HOME, else none', () => {
    expect(defaultHistoryPath({ IMDSGUARD_FLEET_HISTORY: '/x/h.db', HOME: '/home/a' })).toBe('/x/h.db');
    expect(defaultHistoryPath({ XDG_DATA_HOME: '/d', HOME: '/home/a' })).toBe(
      '/d/imdsguard/fleet-history.db',
    );
    expect(defaultHistoryPath({ HOME: '/home/a' })).toBe('/home/a/.local/share/imdsguard/fleet-history.db');
    expect(defaultHistoryPath({})).toBeUndefined();
  });

  it('--history is relative to the working directory; --no-history turns it off', () => {
    expect(readHistoryOption({ history: 'h.db' }, ctx({ HOME: '/home/a' }))).toBe(join(dir, 'h.db'));
    expect(readHistoryOption({ history: false }, ctx({ HOME: '/home/a' }))).toBeUndefined();
    expect(readHistoryOption({}, ctx({ HOME: '/home/a' }))).toBe(
      '/home/a/.local/share/imdsguard/fleet-history.db',
    );
  });

  it('recordSnapshot appends one row, and only warns when the history cannot be written', () => {
    const summary = summarize(inventory);
    const input = {
      time: inventory.generatedAt,
      source: 'fleet discover',
      failures: 0,
      summary,
      findings: [],
    };
    const c = ctx({ HOME: join(dir, 'home') });
    const path = recordSnapshot(readHistoryOption({}, c), { output: c.stderr }, input);
    expect(path).toBe(join(dir, 'home', '.local', 'share', 'imdsguard', 'fleet-history.db'));
    expect(readHistory(path as string)).toHaveLength(1);
    const bad = ctx({});
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder');
    expect(
      recordSnapshot(readHistoryOption({ history: join(file, 'h.db') }, bad), { output: bad.stderr }, input),
    ).toBeUndefined();
    expect(bad.err.text).toContain('warning: scan not recorded in the history');
    expect(bad.exitCode).toBe(0);
  });
});
