import type { GuardEvent } from '../../src/guard/events/types.js';
import { SqliteEventStore } from '../../src/guard/store/index.js';
import { makeEvent } from './guard-events.js';

/**
 * Writes three events to a new SQLite event store at path and returns them, oldest first: a refused
 * IMDSv1 credentials read by curl (3 h ago), an IMDSv2 read (30 min ago) and a token PUT (1 min ago)
 * by /usr/bin/python3 as user app.
 */
export async function writeSampleEvents(path: string): Promise<GuardEvent[]> {
  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms).toISOString();
  const events = [
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
  const store = new SqliteEventStore({ path });
  await store.insert(events);
  await store.close();
  return events;
}
