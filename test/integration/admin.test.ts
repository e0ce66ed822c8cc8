import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adminConfigSchema } from '../../src/config/admin.js';
import { alertsConfigSchema } from '../../src/config/alerts.js';
import { eventsConfigSchema } from '../../src/config/events.js';
import { startAdminServer } from '../../src/guard/admin/server.js';
import type { Alert } from '../../src/guard/alerts/alert.js';
import { SqliteEventStore } from '../../src/guard/store/index.js';
import { createEventOutputs } from '../../src/guard/wire.js';
import { makeEvent, waitFor } from '../support/guard-events.js';
import { startHttpReceiver } from '../support/sink-contract.js';

const tmp = mkdtempSync(join(tmpdir(), 'imdsguard-admin-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('event outputs with the admin endpoint', () => {
  it('stores events, delivers alerts, and serves /healthz, /readyz and /metrics over real HTTP', async () => {
    const hook = await startHttpReceiver();
    let ready = false;
    const db = join(tmp, 'events.db');
    const outputs = await createEventOutputs(
      eventsConfigSchema.parse({ db }),
      alertsConfigSchema.parse({ webhooks: [{ url: `${hook.url}/hook`, name: 'ops' }] }),
      adminConfigSchema.parse({ listen: '127.0.0.1:0' }),
      { hostname: 'test-host', isReady: () => ready },
    );
    try {
      expect(outputs.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const url = outputs.adminUrl as string;

      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.text()).toBe('ok\n');

      const notReady = await fetch(`${url}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({ ready: false, failed: ['guard'] });
      ready = true;
      const isReady = await fetch(`${url}/readyz`);
      expect(isReady.status).toBe(200);
      expect(await isReady.json()).toEqual({ ready: true, failed: [] });

      const denied = makeEvent({ reason: 'denied-one', upstream: { latencyMs: 2 }, attributionMs: 0.3 });
      const allowed = makeEvent({
        decision: 'allow',
        action: 'forwarded',
        rule: 'imdsv2',
        alert: false,
        request: { version: 'v2' },
        upstream: { status: 200, latencyMs: 40 },
      });
      for (const r of outputs.recorders) {
        r.record(denied);
        r.record(allowed);
      }
      await waitFor(() => hook.requests.length >= 1, 'the alert');
      const alerts = hook.requests.flatMap((q) => (JSON.parse(q.body) as { alerts: Alert[] }).alerts);
      expect(alerts.map((a) => a.reason)).toEqual(['denied-one']);

      // Delivered alerts leave the spool when the sink cursors are saved (every second).
      await waitFor(() => outputs.alerts?.stats().spool.alerts === 0, 'the spool to empty');
      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await res.text();
      expect(
        metricValue(
          text,
          'imdsguard_requests_total{action="refused",decision="deny",rule="default-deny-v1",version="v1"}',
        ),
      ).toBe(1);
      expect(
        metricValue(
          text,
          'imdsguard_requests_total{action="forwarded",decision="allow",rule="imdsv2",version="v2"}',
        ),
      ).toBe(1);
      expect(metricValue(text, 'imdsguard_upstream_latency_seconds_bucket{le="0.0025"}')).toBe(1);
      expect(metricValue(text, 'imdsguard_upstream_latency_seconds_bucket{le="0.05"}')).toBe(2);
      expect(metricValue(text, 'imdsguard_upstream_latency_seconds_count')).toBe(2);
      expect(metricValue(text, 'imdsguard_attribution_latency_seconds_count')).toBe(2);
      expect(metricValue(text, 'imdsguard_attribution_latency_seconds_bucket{le="0.00025"}')).toBe(1);
      expect(metricValue(text, 'imdsguard_alert_queue_depth')).toBe(0);
      expect(metricValue(text, 'imdsguard_alert_sink_backlog{sink="ops"}')).toBe(0);
      expect(metricValue(text, 'imdsguard_alerts_delivered_total{sink="ops"}')).toBe(1);
      expect(metricValue(text, 'imdsguard_alert_spool_bytes')).toBe(0);
      expect(metricValue(text, 'imdsguard_dropped_total{reason="full",stage="alert_queue"}')).toBe(0);
      expect(metricValue(text, 'imdsguard_dropped_total{reason="full",stage="alert_spool"}')).toBe(0);
      expect(text).toContain('# TYPE imdsguard_upstream_latency_seconds histogram');

      expect((await fetch(`${url}/nope`)).status).toBe(404);
      expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await outputs.close();
      await hook.close();
    }
    // close() flushed the store: both events are there.
    const store = new SqliteEventStore({ path: db, readonly: true });
    expect((await store.query({})).map((e) => e.rule).sort()).toEqual(['default-deny-v1', 'imdsv2']);
    await store.close();
  });

  it('shows a dead sink as a backlog, a failure count and sink_up 0', async () => {
    const hook = await startHttpReceiver();
    await hook.down();
    const outputs = await createEventOutputs(
      eventsConfigSchema.parse({}),
      alertsConfigSchema.parse({
        webhooks: [{ url: hook.url, name: 'dead' }],
        retry: { initialMs: 5, maxMs: 20 },
        drainTimeoutMs: 0,
      }),
      adminConfigSchema.parse({ listen: '127.0.0.1:0' }),
      { hostname: 'h', isReady: () => true },
    );
    try {
      for (let i = 0; i < 3; i++) {
        for (const r of outputs.recorders) r.record(makeEvent({ request: { path: `/p/${i}` } }));
      }
      await waitFor(() => (outputs.alerts?.stats().sinks[0]?.failures ?? 0) >= 2, 'failures');
      const text = await (await fetch(`${outputs.adminUrl}/metrics`)).text();
      expect(metricValue(text, 'imdsguard_alert_sink_backlog{sink="dead"}')).toBe(3);
      expect(metricValue(text, 'imdsguard_alert_sink_up{sink="dead"}')).toBe(0);
      expect(
        metricValue(text, 'imdsguard_alert_delivery_failures_total{sink="dead"}'),
      ).toBeGreaterThanOrEqual(2);
      expect(metricValue(text, 'imdsguard_alert_spool_alerts')).toBe(3);
      expect(metricValue(text, 'imdsguard_alert_spool_bytes')).toBeGreaterThan(0);
    } finally {
      await outputs.close();
    }
  });

  it('refuses a non-loopback admin address with IMDSGUARD_E_CONFIG', async () => {
    await expect(
      startAdminServer({ host: '0.0.0.0', port: 0, metrics: () => '', checks: {} }),
    ).rejects.toMatchObject({ code: 'IMDSGUARD_E_CONFIG' });
  });

  it('refuses two sinks with the same name (the same URL twice) with IMDSGUARD_E_CONFIG', async () => {
    await expect(
      createEventOutputs(
        eventsConfigSchema.parse({}),
        alertsConfigSchema.parse({
          webhooks: [{ url: 'http://127.0.0.1:9/a' }, { url: 'http://127.0.0.1:9/a' }],
        }),
        adminConfigSchema.parse({}),
        { hostname: 'h', isReady: () => true },
      ),
    ).rejects.toMatchObject({ code: 'IMDSGUARD_E_CONFIG' });
  });

  it('builds nothing but metrics when nothing is configured', async () => {
    const outputs = await createEventOutputs(
      eventsConfigSchema.parse({}),
      alertsConfigSchema.parse({}),
      adminConfigSchema.parse({}),
      {
        hostname: 'h',
        isReady: () => true,
      },
    );
    expect(outputs.recorders).toHaveLength(1);
    expect(outputs.adminUrl).toBeUndefined();
    expect(outputs.alerts).toBeUndefined();
    await outputs.close();
  });
});
