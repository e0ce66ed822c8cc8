import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeOrigins, loadConfigWithOrigins, parseConfig } from '../../src/config/index.js';
import { planReload } from '../../src/guard/reload.js';

/** The daemon's configuration: where each setting came from (the start-up line), and what a reload applies or names. */

describe('where each setting came from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'imdsg-origins-'));
  const file = join(dir, 'guard.yaml');
  writeFileSync(
    file,
    ['guard:', '  mode: monitor', '  allowExe: [/usr/bin/app]', 'events:', '  db: /var/lib/x.db', ''].join(
      '\n',
    ),
  );

  it('names the flag, the file, IMDSGUARD_* and the legacy names, the later layer winning', () => {
    const { config, origins } = loadConfigWithOrigins({
      cwd: dir,
      env: {
        MODE: 'PROXY',
        PORT: '9999',
        IMDSGUARD_UPSTREAM: 'http://127.0.0.1:1',
        XHEADER: 'a-long-secret',
      },
      flags: { config: file, events: '/var/log/e.jsonl' },
    });
    expect(config.guard.mode).toBe('enforce'); // MODE=PROXY over the file's monitor
    expect(Object.fromEntries(origins)).toEqual({
      'guard.mode': 'environment MODE',
      'guard.allowExe': `config file ${file}`,
      'events.db': `config file ${file}`,
      'guard.listen': 'environment PORT',
      'guard.upstream': 'environment IMDSGUARD_UPSTREAM',
      'guard.authSecret': 'environment XHEADER',
      'events.file': 'flag --events',
    });
    const line = describeOrigins(origins);
    expect(line).toBe(
      `flag --events: events.file; environment IMDSGUARD_UPSTREAM: guard.upstream; environment MODE: guard.mode; environment PORT: guard.listen; environment XHEADER: guard.authSecret; config file ${file}: events.db, guard.allowExe; the rest are defaults`,
    );
    // Names only: the secret's value never appears.
    expect(line).not.toContain('a-long-secret');
  });

  it('says so when every setting is a default', () => {
    expect(describeOrigins(loadConfigWithOrigins({ cwd: dir, env: {} }).origins)).toBe(
      'every setting is a default',
    );
  });
});

describe('reload: applied, or named as needing a restart', () => {
  const base = parseConfig({ events: { file: '/var/log/a.jsonl' } });

  it('applies the policy and a new events.file; names nothing when nothing else changed', () => {
    const next = parseConfig({ guard: { mode: 'monitor', rules: [] }, events: { file: '/var/log/b.jsonl' } });
    expect(planReload(base, next, '/var/log/a.jsonl')).toEqual({
      eventsFile: '/var/log/b.jsonl',
      needRestart: [],
    });
    expect(planReload(base, base, '/var/log/a.jsonl')).toEqual({
      eventsFile: '/var/log/a.jsonl',
      needRestart: [],
    });
  });

  it('names sinks, the store, the admin endpoint and attribution when they change', () => {
    const next = parseConfig({
      guard: { attribution: { timeoutMs: 100 } },
      events: { file: '/var/log/a.jsonl', db: '/var/lib/e.db' },
      alerts: { sinks: [{ type: 'slack-webhook', url: 'https://hooks.slack.com/services/T/B/secret' }] },
      admin: { listen: '127.0.0.1:16926' },
    });
    const plan = planReload(base, next, '/var/log/a.jsonl');
    expect(plan.needRestart).toEqual(['guard.attribution', 'events.db', 'alerts.sinks', 'admin.listen']);
    expect(JSON.stringify(plan)).not.toContain('secret');
  });

  it('keeps the file (named) when events.file is removed, and opens one when it is added', () => {
    const none = parseConfig({});
    expect(planReload(base, none, '/var/log/a.jsonl')).toEqual({
      eventsFile: '/var/log/a.jsonl',
      needRestart: ['events.file'],
    });
    expect(planReload(none, base, undefined)).toEqual({ eventsFile: '/var/log/a.jsonl', needRestart: [] });
  });
});
