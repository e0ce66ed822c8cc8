import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/index.js';
import { ImdsguardError } from '../../src/errors.js';

function configError(fn: () => unknown): ImdsguardError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ImdsguardError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

const dir = mkdtempSync(join(tmpdir(), 'imdsg-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('config defaults', () => {
  it('has finite defaults and is frozen', () => {
    const c = parseConfig({});
    expect(c.guard.mode).toBe('enforce');
    expect(c.guard.flavor).toBe('aws');
    expect(c.guard.listen).toEqual([
      { host: '127.0.0.1', port: 16925 },
      { host: '::1', port: 16925 },
    ]);
    expect(c.guard.upstream).toMatchObject({
      href: 'http://169.254.169.254',
      host: '169.254.169.254',
      port: 80,
    });
    expect(c.guard.authHeader).toBe('x-meta-auth');
    expect(c.guard.allowUserAgents).toContain('Botocore/');
    expect(c.guard.limits.maxHeaderBytes).toBe(8192);
    expect(c.guard.limits.upstreamTimeoutMs).toBeGreaterThan(0);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.guard.limits)).toBe(true);
    expect(Object.isFrozen(c.guard.allowUserAgents)).toBe(true);
  });
  it('defaults the upstream to the flavour address', () => {
    expect(parseConfig({ guard: { flavor: 'alibaba' } }).guard.upstream.href).toBe('http://100.100.100.200');
  });
});

describe('config errors name their path', () => {
  it('guard.rules[2].exe: must be an absolute path', () => {
    const err = configError(() =>
      parseConfig({
        guard: {
          rules: [
            { action: 'allow', path: '/latest/' },
            { action: 'deny', user: 'bob' },
            { action: 'deny', exe: 'python3' },
          ],
        },
      }),
    );
    expect(err.code).toBe('IMDSGUARD_E_CONFIG');
    expect(err.message).toContain('guard.rules[2].exe: must be an absolute path');
  });
  it('bounds the inline attribution budget (0..10 ms) and defaults it to 1 ms', () => {
    expect(parseConfig({}).guard.attribution.inlineBudgetMs).toBe(1);
    expect(
      parseConfig({ guard: { attribution: { inlineBudgetMs: 0 } } }).guard.attribution.inlineBudgetMs,
    ).toBe(0);
    const err = configError(() => parseConfig({ guard: { attribution: { inlineBudgetMs: 20 } } }));
    expect(err.code).toBe('IMDSGUARD_E_CONFIG');
    expect(err.message).toContain('guard.attribution.inlineBudgetMs');
  });
  it("takes the node's pod records from absolute paths, with the kubelet's defaults", () => {
    const a = parseConfig({ guard: { attribution: { podsRoot: '/host/var/log/pods' } } }).guard.attribution;
    expect(a.podsRoot).toBe('/host/var/log/pods');
    expect(a.containerLogsRoot).toBe('/var/log/containers');
    expect(a.procRoot).toBe('/proc');
    const err = configError(() =>
      parseConfig({ guard: { attribution: { cniNetworksRoot: 'var/lib/cni' } } }),
    );
    expect(err.code).toBe('IMDSGUARD_E_CONFIG');
    expect(err.message).toContain('guard.attribution.cniNetworksRoot: must be an absolute path');
  });
  it('refuses unknown keys at every level', () => {
    const err = configError(() =>
      parseConfig({ guard: { mdoe: 'enforce', limits: { maxFoo: 1 } }, extra: 1 }),
    );
    expect(err.message).toContain('guard.mdoe: unknown key');
    expect(err.message).toContain('guard.limits.maxFoo: unknown key');
    expect(err.message).toContain('extra: unknown key');
  });
  it('explains enums, URLs, listen addresses and empty rules', () => {
    const err = configError(() =>
      parseConfig({
        guard: {
          mode: 'block',
          upstream: 'https://169.254.169.254',
          listen: ['nonsense'],
          rules: [{ action: 'deny' }],
        },
      }),
    );
    expect(err.message).toMatch(/guard\.mode: must be one of enforce, monitor, trap/);
    expect(err.message).toMatch(/guard\.upstream: must be an http:\/\/ URL/);
    expect(err.message).toMatch(/guard\.listen\[0\]: expected HOST:PORT/);
    expect(err.message).toMatch(/guard\.rules\[0\]: a rule needs at least one condition/);
  });
});

describe('loadConfig layers', () => {
  it('reads YAML, then environment, then flags', () => {
    const f = file(
      'a.yaml',
      'guard:\n  mode: monitor\n  listen: ["127.0.0.1:1000"]\n  allowExe: [/usr/bin/a]\n  rules:\n    - name: r1\n      path: /latest/user-data\n      action: deny\n',
    );
    const c = loadConfig({
      cwd: dir,
      env: { IMDSGUARD_MODE: 'trap', IMDSGUARD_ALLOW_USER: 'ops,1001' },
      flags: { config: f, listen: ['127.0.0.1:2000'], allowExe: ['/usr/bin/b'] },
    });
    expect(c.guard.mode).toBe('trap');
    expect(c.guard.listen).toEqual([{ host: '127.0.0.1', port: 2000 }]);
    expect(c.guard.allowExe).toEqual(['/usr/bin/b']);
    expect(c.guard.allowUser).toEqual(['ops', 1001]);
    expect(c.guard.rules[0]?.path).toEqual(['/latest/user-data']);
  });
  it('reads JSON and IMDSGUARD_CONFIG', () => {
    const f = file(
      'b.json',
      JSON.stringify({ guard: { requireV2: true }, events: { file: '/tmp/x.jsonl' } }),
    );
    const c = loadConfig({ cwd: dir, env: { IMDSGUARD_CONFIG: f } });
    expect(c.guard.requireV2).toBe(true);
    expect(c.events.file).toBe('/tmp/x.jsonl');
  });
  it('maps the metatrapd and ec2-metadata-filter names', () => {
    const c = loadConfig({
      cwd: dir,
      env: {
        MODE: 'ALERT',
        XHEADER: 'a-long-secret',
        ALLOW_LIST: '/usr/bin/app,/usr/bin/agent',
        COALMINE: '127.0.0.2',
        COALMINE_PORT: '8011',
        WEBHOOK: 'http://127.0.0.1:9/hook',
      },
    });
    expect(c.guard.mode).toBe('trap');
    expect(c.guard.authSecret).toBe('a-long-secret');
    expect(c.guard.allowExe).toEqual(['/usr/bin/app', '/usr/bin/agent']);
    expect(c.guard.listen).toEqual([{ host: '127.0.0.2', port: 8011 }]);
    expect(c.alerts.webhooks.map((w) => w.url)).toEqual(['http://127.0.0.1:9/hook']);
    expect(loadConfig({ cwd: dir, env: { MODE: 'PROXY', PORT: '9000' } }).guard).toMatchObject({
      mode: 'enforce',
      listen: [{ host: '127.0.0.1', port: 9000 }],
    });
    // IMDSGUARD_* wins over an alias
    expect(loadConfig({ cwd: dir, env: { MODE: 'ALERT', IMDSGUARD_MODE: 'monitor' } }).guard.mode).toBe(
      'monitor',
    );
  });
  it('says where a bad value came from', () => {
    const err = configError(() => loadConfig({ cwd: dir, env: { IMDSGUARD_MODE: 'nope' } }));
    expect(err.message).toContain(
      'guard.mode: must be one of enforce, monitor, trap (from environment IMDSGUARD_MODE)',
    );
    const err2 = configError(() => loadConfig({ cwd: dir, env: {}, flags: { allowExe: ['relative'] } }));
    expect(err2.message).toContain('guard.allowExe[0]: must be an absolute path (from flag --allow-exe)');
  });
  it('--alert adds to the configured webhooks', () => {
    const f = file('c.yaml', 'alerts:\n  webhooks:\n    - url: http://127.0.0.1:1/a\n');
    const c = loadConfig({ cwd: dir, env: {}, flags: { config: f, alert: ['http://127.0.0.1:2/b'] } });
    expect(c.alerts.webhooks.map((w) => w.url)).toEqual(['http://127.0.0.1:1/a', 'http://127.0.0.1:2/b']);
  });
  it('read and parse errors are IMDSGUARD_E_CONFIG_READ', () => {
    expect(
      configError(() => loadConfig({ cwd: dir, env: {}, flags: { config: join(dir, 'missing.yaml') } })).code,
    ).toBe('IMDSGUARD_E_CONFIG_READ');
    const bad = file('bad.yaml', 'guard: [1, 2\n');
    expect(configError(() => loadConfig({ cwd: dir, env: {}, flags: { config: bad } })).code).toBe(
      'IMDSGUARD_E_CONFIG_READ',
    );
    const dup = file('dup.yaml', 'guard:\n  mode: trap\n  mode: enforce\n');
    expect(configError(() => loadConfig({ cwd: dir, env: {}, flags: { config: dup } })).code).toBe(
      'IMDSGUARD_E_CONFIG_READ',
    );
  });
});
