import type { CallerRecord } from '../../src/guard/callers/interval.js';
import type { FakeLogs } from './fake-aws/logs.js';

/**
 * Caller summary records as a guard writes them (src/guard/callers/interval.ts), put straight into
 * fake-aws's CloudWatch Logs for tests of the query side. The end-to-end test has real guards write
 * them instead.
 */
export function callerRecord(
  r: Pick<CallerRecord, 'instanceId' | 'accountId' | 'region'> &
    Partial<Pick<CallerRecord, 'version' | 'exe' | 'user' | 'container' | 'pod' | 'calls'>> & {
      atMs: number;
    },
): CallerRecord {
  return {
    v: 1,
    kind: 'callers',
    time: new Date(r.atMs).toISOString(),
    host: `host-${r.instanceId ?? 'x'}`,
    ...(r.instanceId !== undefined ? { instanceId: r.instanceId } : {}),
    ...(r.accountId !== undefined ? { accountId: r.accountId } : {}),
    ...(r.region !== undefined ? { region: r.region } : {}),
    mode: 'monitor',
    version: r.version ?? 'v1',
    exe: r.exe ?? '/usr/bin/curl',
    user: r.user ?? 'app',
    container: r.container ?? '-',
    pod: r.pod ?? '-',
    calls: r.calls ?? 1,
    denied: 0,
    firstSeenMs: r.atMs - 1000,
    lastSeenMs: r.atMs - 1,
    intervalMs: 300_000,
  };
}

/** Appends records to `group` in the account and region (created as needed), one stream per instance. */
export function putRecords(
  logs: FakeLogs,
  accountId: string,
  region: string,
  group: string,
  records: readonly CallerRecord[],
): void {
  const key = `${accountId}|${region}|${group}`;
  let g = logs.groups.get(key);
  if (!g) {
    g = new Map();
    logs.groups.set(key, g);
  }
  for (const r of records) {
    const stream = r.instanceId ?? r.host;
    let s = g.get(stream);
    if (!s) {
      s = [];
      g.set(stream, s);
    }
    s.push({ timestamp: Date.parse(r.time), message: JSON.stringify(r) });
  }
}
