import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../src/guard/attribution/types.js';
import {
  type JsonlStats,
  OVERFLOW_KEY,
  parseEvent,
  readEventsJsonl,
  renderCallers,
  summarizeCallers,
} from '../../src/guard/callers/index.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { SqliteEventStore } from '../../src/guard/store/index.js';
import type { ImdsVersion } from '../../src/imds/version.js';
import { renderCallersCsv } from '../../src/report/callers.js';
import { renderEvents } from '../../src/report/events.js';
import { runInProcess } from '../support/cli.js';

let seq = 0;
function ev(
  time: string,
  version: ImdsVersion,
  caller: Caller | undefined,
  extra: { path?: string; decision?: 'allow' | 'deny' } = {},
): GuardEvent {
  const e: GuardEvent = {
    v: 1,
    id: `e${++seq}`,
    time,
    host: 'h',
    mode: 'monitor',
    decision: extra.decision ?? 'allow',
    action: extra.decision === 'deny' ? 'flagged' : 'forwarded',
    rule: 'x',
    reason: 'x',
    request: {
      method: version === 'token' ? 'PUT' : 'GET',
      path: extra.path ?? (version === 'token' ? '/latest/api/token' : '/latest/meta-data/'),
      version,
      flavor: 'aws',
      client: { address: '127.0.0.1', port: 40000 },
    },
    status: 200,
    alert: false,
  };
  if (caller) e.caller = caller;
  return e;
}

const curl: Caller = { resolved: 'full', pid: 10, exe: '/usr/bin/curl', uid: 65534, user: 'nobody' };
const curl2: Caller = { ...curl, pid: 11 };
const aws: Caller = { resolved: 'full', pid: 20, exe: '/usr/bin/python3.11', uid: 0, user: 'root' };
const inDocker: Caller = {
  resolved: 'full',
  pid: 30,
  exe: '/usr/bin/curl',
  uid: 65534,
  user: 'nobody',
  container: { id: 'd'.repeat(64), runtime: 'docker' },
  netns: 'other',
};
const unknown: Caller = { resolved: 'partial', uid: 1000, error: 'the client socket is already closed' };

const EVENTS: GuardEvent[] = [
  ev('2026-11-20T10:00:00.000Z', 'token', aws),
  ev('2026-11-20T10:00:01.000Z', 'v2', aws, { path: '/latest/meta-data/iam/info' }),
  ev('2026-11-20T10:05:00.000Z', 'v1', curl, { decision: 'deny' }),
  ev('2026-11-21T09:00:00.000Z', 'v1', curl2, { path: '/latest/user-data' }),
  ev('2026-11-21T09:30:00.000Z', 'v1', inDocker),
  ev('2026-11-21T11:00:00.000Z', 'v2', aws),
  ev('2026-11-21T12:00:00.000Z', 'v1', unknown),
  ev('2026-11-21T12:30:00.000Z', 'v1', undefined),
];

describe('summarizeCallers', () => {
  it('one row per (exe, user, container), v1 callers first', () => {
    const rows = summarizeCallers(EVENTS);
    expect(rows.map((r) => [r.exe, r.user, r.container?.runtime, r.v1, r.v2, r.token])).toEqual([
      ['/usr/bin/curl', 'nobody', undefined, 2, 0, 0],
      // Ties on v1 and total: the most recently seen first.
      [undefined, undefined, undefined, 1, 0, 0],
      [undefined, '1000', undefined, 1, 0, 0],
      ['/usr/bin/curl', 'nobody', 'docker', 1, 0, 0],
      ['/usr/bin/python3.11', 'root', undefined, 0, 2, 1],
    ]);
  });

  it('counts denials, first/last seen, last path and pid, distinct pids', () => {
    const curlRow = summarizeCallers(EVENTS)[0];
    expect(curlRow).toMatchObject({
      denied: 1,
      total: 2,
      firstSeen: '2026-11-20T10:05:00.000Z',
      lastSeen: '2026-11-21T09:00:00.000Z',
      lastPath: '/latest/user-data',
      lastPid: 11,
      pids: 2,
      unattributed: false,
    });
    const unattributed = summarizeCallers(EVENTS).filter((r) => r.unattributed);
    expect(unattributed).toHaveLength(2);
  });

  it('order of events does not matter for first/last seen', () => {
    const a = summarizeCallers(EVENTS);
    const b = summarizeCallers([...EVENTS].reverse());
    expect(b.map((r) => [r.key, r.firstSeen, r.lastSeen, r.lastPath])).toEqual(
      a.map((r) => [r.key, r.firstSeen, r.lastSeen, r.lastPath]),
    );
  });

  it('a window drops older events; a callers list with no v1 leads with the busiest', () => {
    const rows = summarizeCallers(EVENTS, { sinceMs: Date.parse('2026-11-21T10:00:00Z') });
    expect(rows.map((r) => [r.exe ?? r.user ?? '?', r.v1, r.v2])).toEqual([
      ['?', 1, 0],
      ['1000', 1, 0],
      ['/usr/bin/python3.11', 0, 1],
    ]);
    const noV1 = summarizeCallers(EVENTS.filter((e) => e.request.version !== 'v1'));
    expect(noV1).toHaveLength(1);
    expect(noV1[0]?.v1).toBe(0);
  });

  it('bounds identities: the rest fold into one row', () => {
    const many = Array.from({ length: 50 }, (_, i) =>
      ev('2026-11-21T00:00:00.000Z', 'v2', { resolved: 'full', pid: i, exe: `/bin/p${i}`, user: 'root' }),
    );
    const rows = summarizeCallers(many, { maxIdentities: 10 });
    expect(rows).toHaveLength(11);
    const other = rows.find((r) => r.key === OVERFLOW_KEY);
    expect(other?.total).toBe(40);
    expect(other?.exe).toBeUndefined();
  });
});

describe('renderCallers', () => {
  it('says what breaks, marks v1 rows, and notes unattributed callers', () => {
    const text = renderCallers(summarizeCallers(EVENTS), { events: EVENTS.length, window: 'in the last 7d' });
    expect(text).toContain('What breaks if you enforce IMDSv2 on this host:');
    expect(text).toContain('4 callers made 5 IMDSv1 (tokenless) requests in the last 7d');
    expect(text).toMatch(/2 of them could not be tied to a process/);
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.includes('LAST SEEN'));
    expect(lines[header + 1]).toMatch(
      /^!\s+2\s+0\s+0\s+1\s+2026-11-21T09:00:00Z\s+\/usr\/bin\/curl\s+nobody\s+-\s+\/latest\/user-data$/,
    );
    expect(lines.find((l) => l.includes('python3.11'))).toMatch(/^\s+0\s+2\s+1\s+0\s/);
    expect(text).toContain('docker:dddddddddddd');
    expect(text).not.toContain('\x1b[');
    expect(renderCallers(summarizeCallers(EVENTS), { events: 8, window: 'x', color: true })).toContain(
      '\x1b[1;31m',
    );
  });

  it('no v1 callers: says nothing breaks; no events: says so', () => {
    const text = renderCallers(summarizeCallers(EVENTS.filter((e) => e.request.version !== 'v1')), {
      events: 3,
      window: 'in the recorded events',
    });
    expect(text).toContain(
      'nothing that called in the recorded events: no IMDSv1 (tokenless) requests in 3 events',
    );
    expect(renderCallers([], { events: 0, window: 'in the last 1h' })).toBe(
      'No IMDS requests in the last 1h (0 events read).\n',
    );
  });
});

describe('callers in Kubernetes pods', () => {
  const podCaller = (
    containerId: string,
    container: string | undefined,
    extra: Partial<Caller> = {},
  ): Caller => {
    const pod: NonNullable<Caller['pod']> = {
      namespace: 'team-a',
      name: 'web-7c9d8b',
      uid: '6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b',
      hostNetwork: false,
      source: 'cgroup',
    };
    if (container !== undefined) pod.container = container;
    return {
      resolved: 'full',
      pid: 40,
      exe: '/usr/bin/python3.11',
      uid: 1000,
      user: '1000',
      netns: 'other',
      container: { id: containerId, runtime: 'containerd', podUid: pod.uid as string },
      pod,
      ...extra,
    };
  };
  const POD_EVENTS = [
    ev('2026-11-21T10:00:00.000Z', 'v1', podCaller('a'.repeat(64), 'app')),
    // the same container after a restart: a new container id, the same pod and container name
    ev('2026-11-21T10:01:00.000Z', 'v1', podCaller('b'.repeat(64), 'app', { pid: 41 })),
    ev('2026-11-21T10:02:00.000Z', 'v2', podCaller('c'.repeat(64), 'sidecar', { pid: 42 })),
    // only the UID known (no /var/log/pods)
    ev('2026-11-21T10:03:00.000Z', 'v1', {
      resolved: 'full',
      pid: 50,
      exe: '/app',
      user: 'root',
      uid: 0,
      pod: { uid: '0f8c6b3c9e1d4a5b6c7d8e9f0a1b2c3d', hostNetwork: true, source: 'cgroup' },
    }),
    ev('2026-11-21T10:04:00.000Z', 'v2', aws),
  ];

  it('one row per namespace, pod and container name, whatever the container id', () => {
    const rows = summarizeCallers(POD_EVENTS);
    expect(rows.map((r) => [r.key, r.v1, r.v2, r.pids])).toEqual([
      ['/usr/bin/python3.11|1000|pod:team-a/web-7c9d8b/app', 2, 0, 2],
      ['/app|root|pod:0f8c6b3c9e1d4a5b6c7d8e9f0a1b2c3d', 1, 0, 1],
      // ties: the most recently seen first
      ['/usr/bin/python3.11|root|', 0, 1, 1],
      ['/usr/bin/python3.11|1000|pod:team-a/web-7c9d8b/sidecar', 0, 1, 1],
    ]);
    expect(rows[0]?.pod).toMatchObject({ namespace: 'team-a', name: 'web-7c9d8b', container: 'app' });
  });

  it('the table names the pod (a POD column only when there are pods); CSV has its fields', () => {
    const text = renderCallers(summarizeCallers(POD_EVENTS), { events: 5, window: 'x' });
    const lines = text.split('\n');
    expect(lines.find((l) => l.includes('LAST SEEN'))).toMatch(/USER\s+POD\s+CONTAINER/);
    expect(lines.find((l) => l.includes('(app)'))).toContain('team-a/web-7c9d8b (app)');
    expect(text).toContain('pod 0f8c6b3c9e1d4a5b6c7d8e9f0a1b2c3d [hostNetwork]');
    expect(renderCallers(summarizeCallers(EVENTS), { events: 8, window: 'x' })).not.toContain('POD');
    const csv = renderCallersCsv(summarizeCallers(POD_EVENTS)).split('\n');
    expect(csv[0]).toContain('pod_namespace,pod,pod_container,host_network,container');
    expect(csv[1]).toContain(',team-a,web-7c9d8b,app,false,');
    // imdsguard events --format csv: one row per event, the pod's fields beside the container id
    const events = renderEvents(POD_EVENTS.slice(0, 1), 'csv', '').split('\n');
    expect(events[0]).toContain('pod_namespace,pod,pod_container,container');
    expect(events[1]).toContain(`,team-a,web-7c9d8b,app,${'a'.repeat(64)}`);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'imdsg-callers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('events file source', () => {
  it('streams JSON lines, skipping and counting bad ones', async () => {
    const file = join(dir, 'mixed.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify(EVENTS[0]),
        'not json',
        '',
        JSON.stringify({ hello: 'world' }),
        JSON.stringify(EVENTS[2]),
        `${JSON.stringify(EVENTS[3]).slice(0, 40)}`,
        JSON.stringify(EVENTS[4]),
      ].join('\n'),
    );
    const stats: JsonlStats = { lines: 0, bad: 0 };
    const got: GuardEvent[] = [];
    for await (const e of readEventsJsonl(file, stats)) got.push(e);
    expect(got.map((e) => e.id)).toEqual([EVENTS[0]?.id, EVENTS[2]?.id, EVENTS[4]?.id]);
    expect(stats).toEqual({ lines: 6, bad: 3, firstBadLine: 2 });
  });

  it('skips an overlong line without buffering it, and reads lines split across chunks', async () => {
    const file = join(dir, 'long.jsonl');
    const big = JSON.stringify({ ...EVENTS[1], reason: 'x'.repeat(200_000) });
    writeFileSync(file, `${big}\n${JSON.stringify(EVENTS[5])}\n${big}`);
    const stats: JsonlStats = { lines: 0, bad: 0 };
    const got: GuardEvent[] = [];
    for await (const e of readEventsJsonl(file, stats, { maxLineBytes: 1000 })) got.push(e);
    expect(got.map((e) => e.id)).toEqual([EVENTS[5]?.id]);
    expect(stats.bad).toBe(2);
    const all: GuardEvent[] = [];
    for await (const e of readEventsJsonl(file, { lines: 0, bad: 0 })) all.push(e);
    expect(all).toHaveLength(3);
  });

  it('parseEvent accepts events and rejects near misses', () => {
    expect(parseEvent(JSON.stringify(EVENTS[0]))?.id).toBe(EVENTS[0]?.id);
    expect(parseEvent('{"time":"nope","request":{"path":"/","version":"v1"}}')).toBeUndefined();
    expect(parseEvent('{"time":"2026-11-21T00:00:00Z","request":{"path":"/"}}')).toBeUndefined();
    expect(
      parseEvent('{"time":"2026-11-21T00:00:00Z","request":{"path":"/","version":"v1"},"caller":5}'),
    ).toBeUndefined();
    expect(parseEvent('[]')).toBeUndefined();
  });
});

describe('imdsguard callers', () => {
  const file = join(dir, 'events.jsonl');
  writeFileSync(file, `${EVENTS.map((e) => JSON.stringify(e)).join('\n')}\nbroken\n`);

  it('prints the table, warns about bad lines, exits 1 when IMDSv1 callers exist', async () => {
    const r = await runInProcess(['callers', '--events', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('4 callers made 5 IMDSv1 (tokenless) requests in the recorded events');
    expect(r.stdout).toContain('/usr/bin/python3.11');
    expect(r.stderr).toContain('warning: skipped 1 bad line in');
    expect(r.stderr).toContain('(first at line 9)');
  });

  it('--json is the summaries; --since narrows the window', async () => {
    const r = await runInProcess(['callers', '--events', file, '--json']);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ since: null, events: 8, badLines: 1, v1Callers: 4, v1Requests: 5 });
    expect(out.callers[0]).toMatchObject({ exe: '/usr/bin/curl', v1: 2 });
    // The fixture events are in the past: a 1 ms window keeps none of them.
    const none = JSON.parse(
      (await runInProcess(['callers', '--events', file, '--json', '--since', '1ms'])).stdout,
    );
    expect(none.events).toBe(0);
    expect(none.callers).toEqual([]);
    // An ISO-8601 time: the four events from 2026-11-21 10:00 UTC on (the +01:00 offset is honoured).
    const iso = await runInProcess(['callers', '--events', file, '--since', '2026-11-21T11:00:00+01:00']);
    expect(iso.stdout).toContain('since 2026-11-21T10:00:00.000Z');
    const isoJson = JSON.parse(
      (await runInProcess(['callers', '--events', file, '--json', '--since', '2026-11-21T10:00:00Z'])).stdout,
    );
    expect(isoJson).toMatchObject({ since: '2026-11-21T10:00:00.000Z', events: 3, v1Requests: 2 });
  });

  it('exits 0 when nothing calls IMDSv1', async () => {
    const v2only = join(dir, 'v2.jsonl');
    writeFileSync(
      v2only,
      EVENTS.filter((e) => e.request.version !== 'v1')
        .map((e) => JSON.stringify(e))
        .join('\n'),
    );
    const r = await runInProcess(['callers', '--events', v2only]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('nothing that called');
  });

  it('--db reads the event store; without a source it reads IMDSGUARD_DB', async () => {
    const db = join(dir, 'events.db');
    const store = new SqliteEventStore({ path: db });
    await store.insert(EVENTS);
    await store.close();
    const viaFlag = JSON.parse((await runInProcess(['callers', '--db', db, '--json'])).stdout);
    expect(viaFlag).toMatchObject({ events: 8, v1Callers: 4, v1Requests: 5 });
    const viaEnv = await runInProcess(['callers', '--json'], { env: { IMDSGUARD_DB: db } });
    expect(viaEnv.code).toBe(1);
    expect(JSON.parse(viaEnv.stdout).callers).toEqual(viaFlag.callers);
    const missing = await runInProcess(['callers'], { env: { IMDSGUARD_DB: join(dir, 'none.db') } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('IMDSGUARD_E_STORE');
    expect(missing.stderr).toContain('none.db');
  });

  it('usage errors: both sources, bad duration, missing file', async () => {
    expect((await runInProcess(['callers', '--events', file, '--db', 'x.db'])).code).toBe(2);
    const bad = await runInProcess(['callers', '--events', file, '--since', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since');
    const noZone = await runInProcess(['callers', '--events', file, '--since', '2026-11-21T10:00']);
    expect(noZone.code).toBe(2);
    expect(noZone.stderr).toContain('has no time zone');
    const missing = await runInProcess(['callers', '--events', join(dir, 'nope.jsonl')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('IMDSGUARD_E_CONFIG_READ');
  });
});
