import { describe, expect, it } from 'vitest';
import { adminConfigSchema } from '../../src/config/admin.js';
import { alertsConfigSchema, alertsFromLegacyEnv } from '../../src/config/alerts.js';
import { eventsConfigSchema } from '../../src/config/events.js';
import { defaultSinkName, sinkConfigs } from '../../src/guard/alerts/sinks/index.js';

function issues(r: {
  success: boolean;
  error?: { issues: Array<{ path: PropertyKey[]; code: string; keys?: string[] }> };
}) {
  return (r.error?.issues ?? []).map((i) => [...i.path, ...(i.keys ?? [])].join('.'));
}

describe('alerts config', () => {
  it('has finite defaults for every bound', () => {
    const c = alertsConfigSchema.parse({});
    expect(c).toMatchObject({
      quiet: true,
      queueSize: 10_000,
      timeoutMs: 10_000,
      drainTimeoutMs: 5000,
      noise: { windowMs: 300_000, perKey: 1, globalWindowMs: 60_000, globalLimit: 120, maxKeys: 10_000 },
      spool: { maxBytes: 64 * 1024 * 1024 },
      retry: { initialMs: 1000, maxMs: 300_000, factor: 2, jitter: 0.5 },
    });
    const e = eventsConfigSchema.parse({});
    expect(e.retention).toEqual({ maxAgeMs: 30 * 86_400_000, maxBytes: 256 * 1024 * 1024 });
  });

  it('parses every sink type with its defaults', () => {
    const c = alertsConfigSchema.parse({
      sinks: [
        { type: 'slack-webhook', url: 'https://hooks.slack.com/services/T/B/X' },
        { type: 'slack-api', token: 'xoxb-1', channel: '#sec' },
        { type: 'webhook', url: 'https://example.com/h', hmacSecret: '0123456789abcdef' },
        { type: 'syslog' },
        { type: 'syslog', transport: 'udp', host: '10.0.0.1', port: 5514, facility: 'local0' },
        { type: 'file', path: '/var/log/imdsguard/alerts.jsonl' },
        { type: 'cloudwatch-logs', group: '/imdsguard/alerts', region: 'us-east-1' },
      ],
    });
    expect(c.sinks[1]).toMatchObject({ baseUrl: 'https://slack.com/api' });
    expect(c.sinks[2]).toMatchObject({ authHeaderName: 'Authorization' });
    expect(c.sinks[3]).toMatchObject({ transport: 'unix', path: '/dev/log', facility: 'auth' });
    const names = sinkConfigs(c).map(defaultSinkName);
    expect(new Set(names).size).toBe(7);
    for (const n of names) expect(n).not.toContain('hooks.slack.com');
  });

  it('refuses unknown keys and bad values, naming the path', () => {
    expect(
      issues(alertsConfigSchema.safeParse({ sinks: [{ type: 'file', path: '/x', colour: 'red' }] })),
    ).toEqual(['sinks.0.colour']);
    expect(issues(alertsConfigSchema.safeParse({ noise: { windowMs: 10 } }))).toEqual(['noise.windowMs']);
    expect(issues(alertsConfigSchema.safeParse({ sinks: [{ type: 'pager' }] }))).toEqual(['sinks.0.type']);
    expect(issues(alertsConfigSchema.safeParse({ sinks: [{ type: 'webhook', url: 'ftp://x' }] }))).toEqual([
      'sinks.0.url',
    ]);
    expect(issues(alertsConfigSchema.safeParse({ spool: { maxbytes: 1 } }))).toEqual(['spool.maxbytes']);
    expect(
      issues(
        alertsConfigSchema.safeParse({ sinks: [{ type: 'webhook', url: 'http://x', hmacSecret: 'short' }] }),
      ),
    ).toEqual(['sinks.0.hmacSecret']);
    expect(issues(eventsConfigSchema.safeParse({ retention: { maxAgeMs: 1 } }))).toEqual([
      'retention.maxAgeMs',
    ]);
  });

  it('accepts only a loopback admin address', () => {
    expect(adminConfigSchema.parse({ listen: '127.0.0.1:9100' }).listen).toBe('127.0.0.1:9100');
    expect(adminConfigSchema.parse({ listen: '[::1]:9100' }).listen).toBe('[::1]:9100');
    const r = adminConfigSchema.safeParse({ listen: '0.0.0.0:9100' });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['listen']);
    expect(r.error?.issues[0]?.message).toContain('loopback');
    expect(adminConfigSchema.safeParse({ listen: '10.1.2.3:80' }).success).toBe(false);
    expect(adminConfigSchema.safeParse({ listen: 'nonsense' }).success).toBe(false);
  });
});

describe('metatrapd environment names', () => {
  it('map SLACK_WEBHOOK, SLACK_TOKEN + SLACK_CHANNEL, WEBHOOK and WEBHOOK_AUTH onto sinks', () => {
    const partial = alertsFromLegacyEnv({
      SLACK_WEBHOOK: 'https://hooks.slack.com/services/T/B/X',
      SLACK_TOKEN: 'xoxb-1',
      SLACK_CHANNEL: '#sec',
      WEBHOOK: 'https://example.com/hook',
      WEBHOOK_AUTH: 'Bearer abc',
    });
    expect(partial).toEqual({
      sinks: [
        { type: 'slack-webhook', url: 'https://hooks.slack.com/services/T/B/X' },
        { type: 'slack-api', token: 'xoxb-1', channel: '#sec' },
      ],
      webhooks: [{ url: 'https://example.com/hook', authHeader: 'Bearer abc' }],
    });
    expect(alertsConfigSchema.safeParse(partial).success).toBe(true);
    expect(alertsFromLegacyEnv({ SLACK_WEBHOOK: '', PATH: '/bin' })).toEqual({});
  });

  it('a token without a channel fails validation naming the channel', () => {
    const r = alertsConfigSchema.safeParse(alertsFromLegacyEnv({ SLACK_TOKEN: 'xoxb-1' }));
    expect(issues(r)).toEqual(['sinks.0.channel']);
  });
});

describe('through the config loader', () => {
  it('refuses bad alert keys naming the full path, and maps the metatrapd names', async () => {
    const { loadConfig, parseConfig } = await import('../../src/config/index.js');
    let err: unknown;
    try {
      parseConfig({
        alerts: { sinks: [{ type: 'file', path: '/x', colour: 'red' }], noise: { windowMs: 5 } },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'IMDSGUARD_E_CONFIG' });
    expect((err as Error).message).toContain('alerts.sinks[0].colour: unknown key');
    expect((err as Error).message).toContain('alerts.noise.windowMs');
    expect(() => parseConfig({ admin: { listen: '0.0.0.0:9469' } })).toThrow(
      /admin\.listen: must be a loopback address/,
    );

    const cfg = loadConfig({
      env: {
        SLACK_WEBHOOK: 'https://hooks.slack.com/services/T/B/X',
        WEBHOOK: 'https://example.com/h',
        WEBHOOK_AUTH: 'Bearer z',
      },
      cwd: '/',
    });
    expect(cfg.alerts.sinks).toEqual([
      { type: 'slack-webhook', url: 'https://hooks.slack.com/services/T/B/X' },
    ]);
    expect(cfg.alerts.webhooks).toEqual([
      { url: 'https://example.com/h', authHeader: 'Bearer z', authHeaderName: 'Authorization' },
    ]);
  });
});
