import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/guard/alerts/alert.js';
import { AlertPipeline, type PipelineOptions } from '../../src/guard/alerts/pipeline.js';
import { createFileSink } from '../../src/guard/alerts/sinks/file.js';
import type { AlertSink } from '../../src/guard/alerts/sinks/types.js';
import { createWebhookSink } from '../../src/guard/alerts/sinks/webhook.js';
import { makeEvent, waitFor } from '../support/guard-events.js';
import { type HttpReceiver, startHttpReceiver } from '../support/sink-contract.js';

const tmp = mkdtempSync(join(tmpdir(), 'imdsguard-pipeline-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(tmp, `${++n}-${name}`);

const FAST = { initialMs: 5, maxMs: 50, factor: 2, jitter: 0.5 };
const LOUD = {
  windowMs: 300_000,
  perKey: 1_000_000,
  globalWindowMs: 60_000,
  globalLimit: 1_000_000,
  maxKeys: 100_000,
};

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function receiver(): Promise<HttpReceiver> {
  const r = await startHttpReceiver();
  open.push(r);
  return r;
}

function pipeline(opts: Partial<PipelineOptions> & Pick<PipelineOptions, 'sinks'>): AlertPipeline {
  const p = new AlertPipeline({
    spool: { path: fresh('spool.db'), maxBytes: 16 * 1024 * 1024 },
    quiet: true,
    queueSize: 10_000,
    retry: FAST,
    noise: LOUD,
    drainTimeoutMs: 2000,
    ...opts,
  });
  open.push(p);
  return p;
}

const webhook = (r: HttpReceiver, name = 'hook') =>
  createWebhookSink({ name, url: r.url, authHeaderName: 'Authorization', timeoutMs: 2000 });

function reasons(r: HttpReceiver): string[] {
  return r.requests.flatMap((q) => (JSON.parse(q.body) as { alerts: Alert[] }).alerts.map((a) => a.reason));
}

function firstOccurrences(xs: readonly string[]): string[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    if (seen.has(x)) return false;
    seen.add(x);
    return true;
  });
}

const events = (count: number, tag: string) =>
  Array.from({ length: count }, (_, i) =>
    makeEvent({ reason: `${tag}-${i}`, request: { path: `/latest/meta-data/${tag}/${i}` } }),
  );

describe('alert pipeline delivery', () => {
  it('a sink answering 500 for a while gets every alert, in order, once it recovers', async () => {
    const r = await receiver();
    r.mode = 'fail';
    const p = pipeline({ sinks: [webhook(r)] });
    const evs = events(120, 'outage');
    for (const e of evs) p.record(e);
    await waitFor(() => p.stats().sinks[0]!.failures >= 3, 'retries');
    expect(reasons(r)).toEqual([]);
    expect(p.stats().sinks[0]!.backlog).toBe(120);
    expect(p.stats().sinks[0]!.lastError).toContain('HTTP 500');
    r.mode = 'ok';
    await waitFor(() => p.stats().sinks[0]!.backlog === 0, 'drain');
    expect(firstOccurrences(reasons(r))).toEqual(evs.map((e) => e.reason));
    expect(p.stats().sinks[0]!.lastError).toBeUndefined();
  });

  it('a dead sink does not hold back a healthy one', async () => {
    const dead = await receiver();
    await dead.down();
    const file = fresh('alerts.jsonl');
    const p = pipeline({ sinks: [webhook(dead, 'dead'), createFileSink({ name: 'file', path: file })] });
    const evs = events(10, 'split');
    for (const e of evs) p.record(e);
    await waitFor(() => p.stats().sinks[1]!.delivered === 10, 'file delivery');
    expect(p.stats().sinks[0]!.delivered).toBe(0);
    expect(p.stats().sinks[0]!.backlog).toBe(10);
    expect(p.stats().spool.alerts).toBe(10);
  });

  it('an outage and a restart lose nothing: the spool and each cursor survive', async () => {
    const r = await receiver();
    await r.down();
    const spoolPath = fresh('restart.db');
    const first = new AlertPipeline({
      sinks: [webhook(r)],
      spool: { path: spoolPath, maxBytes: 16 * 1024 * 1024 },
      quiet: true,
      queueSize: 1000,
      retry: FAST,
      noise: LOUD,
      drainTimeoutMs: 50,
    });
    const before = events(50, 'before');
    for (const e of before) first.record(e);
    await waitFor(() => first.stats().sinks[0]!.failures >= 1, 'a failure');
    await first.close();
    expect(existsSync(spoolPath)).toBe(true);

    await r.up();
    const second = pipeline({ sinks: [webhook(r)], spool: { path: spoolPath, maxBytes: 16 * 1024 * 1024 } });
    const after = events(5, 'after');
    for (const e of after) second.record(e);
    await waitFor(
      () => second.stats().sinks[0]!.backlog === 0 && reasons(r).length >= 55,
      'drain after restart',
    );
    expect(firstOccurrences(reasons(r))).toEqual([...before, ...after].map((e) => e.reason));
    await second.close();

    // A third start has nothing left to send.
    const count = r.requests.length;
    const third = pipeline({ sinks: [webhook(r)], spool: { path: spoolPath, maxBytes: 16 * 1024 * 1024 } });
    expect(third.stats().spool.alerts).toBe(0);
    expect(third.stats().sinks[0]?.backlog).toBe(0);
    // close() waits for the sink worker to send whatever it found: nothing.
    await third.close();
    expect(r.requests.length).toBe(count);
  });

  it('record() returns synchronously while the sink hangs, and the queue is bounded', async () => {
    let calls = 0;
    const hanging: AlertSink = {
      name: 'hang',
      maxBatch: 10,
      send: () => {
        calls += 1;
        return new Promise<void>(() => {});
      },
      close: async () => {},
    };
    const p = pipeline({ sinks: [hanging], queueSize: 100, drainTimeoutMs: 20 });
    const results: unknown[] = [];
    for (const e of events(500, 'sync')) results.push(p.record(e));
    expect(results.every((x) => x === undefined)).toBe(true);
    expect(p.stats().queueDepth).toBe(100);
    expect(p.stats().queueDropped).toBe(400);
    await waitFor(() => calls === 1 && p.stats().queueDepth === 0, 'the flush');
    expect(p.stats().spool.alerts).toBe(100);
    // Still hanging on the first batch: further records still return at once.
    for (const e of events(50, 'more')) p.record(e);
    expect(p.stats().queueDepth).toBe(50);
    expect(calls).toBe(1);
  });

  it('quiet drops allowed requests; not quiet alerts on them', async () => {
    const r = await receiver();
    const allowed = makeEvent({ decision: 'allow', action: 'forwarded', alert: false, reason: 'allowed-1' });
    const quiet = pipeline({ sinks: [webhook(r)] });
    quiet.record(allowed);
    quiet.record(makeEvent({ reason: 'denied-1' }));
    await waitFor(() => reasons(r).length >= 1, 'one alert');
    await quiet.close();
    expect(reasons(r)).toEqual(['denied-1']);
    const loud = pipeline({ sinks: [webhook(r, 'loud')], quiet: false });
    loud.record(allowed);
    await waitFor(() => reasons(r).length >= 2, 'the allowed alert');
    expect(reasons(r)).toEqual(['denied-1', 'allowed-1']);
  });
});

// 10,000 alerts through the noise filter, a SQLite spool and a webhook: seconds on a loaded machine.
describe('a burst of 10,000 alerts', { timeout: 60_000 }, () => {
  it('from one caller is rate limited into one alert and a summary', async () => {
    const r = await receiver();
    let now = Date.UTC(2026, 0, 1);
    const p = pipeline({
      sinks: [webhook(r)],
      noise: { windowMs: 300_000, perKey: 1, globalWindowMs: 60_000, globalLimit: 120, maxKeys: 10_000 },
      now: () => now,
      tickMs: 10,
    });
    for (let i = 0; i < 10_000; i++) p.record(makeEvent({ reason: `same-${i}` }));
    expect(p.stats().queueDepth).toBeLessThanOrEqual(10_000);
    await waitFor(() => reasons(r).length === 1, 'the first alert');
    expect(p.stats().suppressed).toBe(9_999);
    now += 300_000; // the window closes
    await waitFor(() => r.requests.length >= 2, 'the summary');
    const all = r.requests.flatMap((q) => (JSON.parse(q.body) as { alerts: Alert[] }).alerts);
    expect(all).toHaveLength(2);
    expect(all[1]?.kind).toBe('summary');
    expect(all[1]?.summary?.count).toBe(9_999);
    expect(all[1]?.text).toMatch(/^9999 more in the last 5 minutes: /);
  });

  it('over many paths meets the global limit, with one overflow summary', async () => {
    const r = await receiver();
    const p = pipeline({
      sinks: [webhook(r)],
      noise: { windowMs: 300_000, perKey: 1, globalWindowMs: 60_000, globalLimit: 120, maxKeys: 10_000 },
    });
    for (const e of events(10_000, 'scan')) p.record(e);
    await waitFor(() => p.stats().spooled === 120 && p.stats().sinks[0]!.backlog === 0, '120 alerts');
    await p.close();
    const all = r.requests.flatMap((q) => (JSON.parse(q.body) as { alerts: Alert[] }).alerts);
    const summaries = all.filter((a) => a.kind === 'summary');
    expect(all.length - summaries.length).toBe(120);
    expect(summaries.find((s) => s.rule === 'alert-rate-limit')?.summary?.count).toBe(9_880);
  });

  it('with the sink down keeps the queue and the spool within bounds, counting drops', async () => {
    const r = await receiver();
    r.mode = 'fail';
    const maxBytes = 256 * 1024;
    const p = pipeline({
      sinks: [webhook(r)],
      queueSize: 4000,
      spool: { path: fresh('small.db'), maxBytes },
    });
    let maxDepth = 0;
    for (const e of events(10_000, 'flood')) {
      p.record(e);
      maxDepth = Math.max(maxDepth, p.stats().queueDepth);
    }
    expect(maxDepth).toBe(4000);
    expect(p.stats().queueDropped).toBe(6000);
    await waitFor(() => p.stats().queueDepth === 0, 'the flush');
    const s = p.stats();
    expect(s.spool.bytes).toBeLessThanOrEqual(maxBytes);
    expect(s.spool.dropped).toBeGreaterThan(0);
    expect(s.spool.alerts + s.spool.dropped).toBe(4000);
    // What is kept is the newest, and arrives in order once the sink is back.
    r.mode = 'ok';
    await waitFor(() => p.stats().sinks[0]!.backlog === 0, 'drain');
    const got = firstOccurrences(reasons(r));
    expect(got).toHaveLength(s.spool.alerts);
    expect(got[got.length - 1]).toBe('flood-3999');
    const idx = got.map((x) => Number(x.split('-')[1]));
    expect(idx).toEqual([...idx].sort((a, b) => a - b));
  });
});
