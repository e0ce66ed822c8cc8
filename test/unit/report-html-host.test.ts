/** The host report document (pure fold of guard events), its HTML, and `imdsguard report` in-process. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../src/guard/store/index.js';
import { renderHostHtml } from '../../src/report/html/host.js';
import {
  buildHostReport,
  chooseBucketSeconds,
  HOST_REPORT_LIMITS,
  type HostReportDocument,
} from '../../src/report/html/host-data.js';
import { runInProcess } from '../support/cli.js';
import { makeEvent } from '../support/guard-events.js';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const at = (msAgo: number) => new Date(NOW - msAgo).toISOString();
const HOUR = 3_600_000;

const dir = mkdtempSync(join(tmpdir(), 'imdsguard-host-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function v2(msAgo: number, exe = '/usr/bin/node') {
  return makeEvent({
    time: at(msAgo),
    decision: 'allow',
    action: 'forwarded',
    rule: 'imdsv2',
    alert: false,
    status: 200,
    request: { path: '/latest/meta-data/instance-id', version: 'v2' },
    caller: { resolved: 'full', pid: 10, exe, user: 'app', uid: 1000 },
  });
}

describe('chooseBucketSeconds', () => {
  it('keeps the timeline at or under maxBuckets buckets', () => {
    expect(chooseBucketSeconds(60 * 60_000)).toBe(60);
    expect(chooseBucketSeconds(24 * HOUR)).toBe(900);
    expect(chooseBucketSeconds(7 * 24 * HOUR)).toBe(6 * 3600);
    for (const span of [1, 59_000, HOUR, 24 * HOUR, 30 * 24 * HOUR, 400 * 24 * HOUR]) {
      const b = chooseBucketSeconds(span) * 1000;
      if (span / b > HOST_REPORT_LIMITS.maxBuckets) expect(b).toBe(604_800_000);
    }
  });
});

describe('buildHostReport', () => {
  it('counts decisions, versions and actions in the window and buckets them by time', async () => {
    const events = [
      makeEvent({ time: at(48 * HOUR) }), // before the window
      v2(5 * HOUR),
      v2(5 * HOUR - 1000),
      makeEvent({ time: at(2 * HOUR) }), // v1 deny by curl
      makeEvent({
        time: at(HOUR),
        decision: 'allow',
        action: 'flagged',
        alert: true,
        mode: 'monitor',
        request: { version: 'v1' },
      }),
      v2(60_000, '/usr/bin/python3'),
    ];
    const doc = await buildHostReport(events, { nowMs: NOW, sinceMs: NOW - 24 * HOUR, generatedAt: at(0) });
    expect(doc.totals).toMatchObject({
      events: 5,
      allowed: 4,
      denied: 1,
      alerted: 2,
      v1: 2,
      v2: 3,
      refused: 1,
      flagged: 1,
      forwarded: 3,
      callers: 3,
      v1Callers: 1,
    });
    expect(doc.timeline.bucketSeconds).toBe(900);
    expect(doc.timeline.buckets.length).toBe(24 * 4 + 1);
    expect(doc.timeline.buckets.reduce((n, b) => n + b.allow + b.deny, 0)).toBe(5);
    const denyBucket = doc.timeline.buckets.find((b) => b.deny > 0);
    expect(Date.parse(denyBucket?.start ?? '')).toBeLessThanOrEqual(NOW - 2 * HOUR);
    expect(Date.parse(denyBucket?.start ?? '') + 900_000).toBeGreaterThan(NOW - 2 * HOUR);
    expect(doc.v1Callers.map((c) => c.exe)).toEqual(['/usr/bin/curl']);
    expect(doc.topCallers[0]?.exe).toBe('/usr/bin/curl');
    expect(doc.topCallers[0]?.total).toBe(2);
    // Denied or alerted, newest first.
    expect(doc.requests.total).toBe(2);
    expect(doc.requests.rows.map((r) => r.action)).toEqual(['flagged', 'refused']);
    expect(doc.hosts).toEqual(['test-host']);
  });

  it('keeps only the newest requests rows but counts them all', async () => {
    const n = HOST_REPORT_LIMITS.requests + 250;
    const events = Array.from({ length: n }, (_, k) => makeEvent({ time: at((n - k) * 1000) }));
    const doc = await buildHostReport(events, { nowMs: NOW, generatedAt: at(0) });
    expect(doc.requests.total).toBe(n);
    expect(doc.requests.rows).toHaveLength(HOST_REPORT_LIMITS.requests);
    expect(doc.requests.rows[0]?.time).toBe(at(1000));
    expect(doc.window.since).toBeNull();
    expect(doc.timeline.buckets.reduce((s, b) => s + b.allow + b.deny, 0)).toBe(n);
  });

  it('never carries the command line, headers or other secrets of an event', async () => {
    const doc = await buildHostReport([makeEvent({ time: at(1000) })], { nowMs: NOW, generatedAt: at(0) });
    const all = JSON.stringify(doc) + renderHostHtml(doc);
    expect(all).not.toContain('SECRET-ARGV-VALUE');
    expect(all).not.toContain('cmdline');
  });

  it('names the pod of Kubernetes callers (a Pod column only when there are pods)', async () => {
    const pod = makeEvent({
      time: at(2000),
      request: { path: '/latest/meta-data/instance-id', version: 'v1' },
      caller: {
        resolved: 'full',
        pid: 11,
        exe: '/app/agent',
        user: 'root',
        uid: 0,
        pod: {
          namespace: 'monitoring',
          name: 'node-agent-x2k9p',
          container: 'agent',
          hostNetwork: true,
          source: 'cgroup',
        },
      },
    });
    const html = renderHostHtml(await buildHostReport([pod, v2(1000)], { nowMs: NOW, generatedAt: at(0) }));
    expect(html).toContain('<th data-key="pod">Pod</th>');
    expect(html).toContain('data-testid="v1-caller-pod">monitoring/node-agent-x2k9p (agent) [hostNetwork]<');
    const plain = renderHostHtml(await buildHostReport([v2(1000)], { nowMs: NOW, generatedAt: at(0) }));
    expect(plain).not.toContain('data-key="pod"');
  });

  it('renders an empty store as a page that says so', async () => {
    const doc = await buildHostReport([], { nowMs: NOW, sinceMs: NOW - HOUR, generatedAt: at(0) });
    expect(doc.totals.events).toBe(0);
    const html = renderHostHtml(doc);
    expect(html).toContain('data-testid="host-events">0<');
    expect(html).toContain('No denied or alerted request in this window.');
    expect(html).toContain('data-testid="v1-caller-empty"');
  });
});

describe('imdsguard report (in-process)', () => {
  it('reads the event store and writes JSON whose numbers the HTML shows', async () => {
    const db = join(dir, 'events.db');
    const store = new SqliteEventStore({ path: db });
    const now = Date.now();
    await store.insert([
      makeEvent({ time: new Date(now - HOUR).toISOString() }),
      makeEvent({ time: new Date(now - 30 * 60_000).toISOString() }),
      v2(0),
      makeEvent({ time: new Date(now - 3 * 24 * HOUR).toISOString() }),
    ]);
    await store.close();
    const j = await runInProcess(['report', '--db', db, '--since', '24h', '--format', 'json']);
    expect(j.stderr).toBe('');
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as HostReportDocument;
    expect(doc.totals.events).toBe(2);
    expect(doc.totals.denied).toBe(2);
    const wide = await runInProcess(['report', '--db', db, '--since', '7d', '--format', 'json']);
    expect((JSON.parse(wide.stdout) as HostReportDocument).totals.events).toBe(3);
    // --since as an ISO-8601 time: 90 minutes ago keeps the two recent events.
    const iso = new Date(now - 90 * 60_000).toISOString();
    const fromIso = await runInProcess(['report', '--db', db, '--since', iso, '--format', 'json']);
    expect(fromIso.code, fromIso.stderr).toBe(0);
    expect((JSON.parse(fromIso.stdout) as HostReportDocument).totals.events).toBe(2);
    const out = join(dir, 'host.html');
    const h = await runInProcess(['report', '--db', db, '--since', '24h', '--output', out]);
    expect(h.code).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain(`data-testid="host-denied">${doc.totals.denied}<`);
    expect(html).toContain(`data-testid="requests-total">${doc.requests.total}<`);
  });

  it('fails with IMDSGUARD_E_STORE on a missing database and IMDSGUARD_E_USAGE on bad options', async () => {
    const a = await runInProcess(['report', '--db', join(dir, 'missing.db')]);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('IMDSGUARD_E_STORE');
    const b = await runInProcess(['report', '--db', join(dir, 'missing.db'), '--since', 'yesterday']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('IMDSGUARD_E_USAGE');
    const c = await runInProcess(['report', '--format', 'pdf']);
    expect(c.code).toBe(2);
  });
});
