import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertUnitCanRun } from '../../src/host/sandbox.js';
import { execPaths } from '../../src/host/self-io.js';
import { runInProcess } from '../support/cli.js';

/**
 * The host commands' argument handling, in-process. Only print mode runs here (it reads, never
 * changes anything); --apply runs only in the network-namespace tests (test/e2e/host.test.ts).
 */

const root = mkdtempSync(join(tmpdir(), 'imdsg-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// install looks its user up with getent (a process).
describe('imdsguard install (print mode)', { timeout: 20_000 }, () => {
  it('prints the plan for the given options and writes nothing', async () => {
    const r = await runInProcess([
      'install',
      '--backend',
      'iptables',
      '--user',
      'nobody',
      '--root',
      root,
      '--port',
      '4242',
      '--ipv6',
      '--systemd',
      '--fail-open',
      '--bin',
      '/usr/bin/imdsguard',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '# imdsguard install plan (iptables, port 4242, user nobody, IPv6, fail open)',
    );
    expect(r.stdout).toContain('--uid-owner 65534');
    expect(r.stdout).toContain('ip6tables -t nat -A IMDSGUARD -d fd00:ec2::254/128');
    expect(r.stdout).toContain('--to-ports 4242');
    expect(r.stdout).toContain('ExecStart=/usr/bin/imdsguard guard --config /etc/imdsguard/config.yaml');
    expect(r.stdout).toContain(
      'ExecStopPost=+/usr/bin/imdsguard uninstall --apply --rules-only --backend iptables',
    );
    expect(readdirSync(root)).toEqual([]);
  });

  it('prints the plan as JSON', async () => {
    const r = await runInProcess([
      'install',
      '--json',
      '--backend',
      'nftables',
      '--user',
      'nobody',
      '--root',
      root,
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { applied: boolean; plan: { rules: { nftScript: string } } };
    expect(out.applied).toBe(false);
    expect(out.plan.rules.nftScript).toContain('table inet imdsguard');
  });

  it('refuses bad options with usage errors (exit 2)', async () => {
    const u = ['--user', 'nobody', '--root', root];
    for (const [argv, message] of [
      [['install', '--port', '0', ...u], '--port: 0 is out of range'],
      [['install', '--backend', 'ipfw', ...u], '--backend: expected one of iptables, nftables'],
      [['install', '--containers', '--bridges', 'docker0;reboot', ...u], 'is not an interface name'],
      [['install', '--health-url', 'ftp://x/', ...u], 'only http://'],
      [['install', '--bin', 'relative/imdsguard', ...u], '--bin: expected an absolute path'],
      [['doctor', '--port', '70000', ...u], '--port: 70000 is out of range'],
      [['uninstall', '--backend', 'pf', '--root', root], '--backend: expected one of'],
    ] as const) {
      const r = await runInProcess([...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toContain('IMDSGUARD_E_USAGE');
      expect(r.stderr).toContain(message);
    }
  });

  it('an explicit --user must exist', async () => {
    const r = await runInProcess([
      'install',
      '--backend',
      'iptables',
      '--user',
      'imdsg-no-such-user',
      '--root',
      root,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('IMDSGUARD_E_HOST_USER');
  });
});

describe('install --systemd under a path the unit hides', { timeout: 20_000 }, () => {
  // Outside every hidden path (the checkout), and inside one (/tmp, which PrivateTmp hides).
  mkdirSync(resolve('test-artifacts'), { recursive: true });
  const outside = mkdtempSync(join(resolve('test-artifacts'), 'imdsg-sandbox-'));
  const inside = mkdtempSync('/tmp/imdsg-sandbox-');
  afterAll(() => {
    rmSync(outside, { recursive: true, force: true });
    rmSync(inside, { recursive: true, force: true });
  });
  const exe = (dir: string) => {
    const p = join(dir, 'imdsguard');
    writeFileSync(p, '#!/bin/sh\n', { mode: 0o755 });
    return p;
  };
  const args = ['install', '--user', 'nobody', '--root', root, '--backend', 'nftables'];

  it('refuses a --bin that resolves into /tmp, names it, and changes nothing', async () => {
    const link = join(outside, 'imdsguard-link');
    symlinkSync(exe(inside), link);
    for (const bin of [link, join(inside, 'imdsguard')]) {
      for (const apply of [[], ['--apply', '--force']]) {
        const r = await runInProcess([...args, '--systemd', '--bin', bin, ...apply]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain('IMDSGUARD_E_HOST_SANDBOX');
        expect(r.stderr).toContain(`${inside}/imdsguard`);
        expect(r.stderr).toContain('PrivateTmp=yes');
        expect(r.stdout).toBe('');
      }
    }
    expect(readdirSync(root)).toEqual([]);
  });

  it('accepts the same executable without --systemd, and a --bin outside the hidden paths', async () => {
    const r = await runInProcess([...args, '--bin', join(inside, 'imdsguard')]);
    expect(r.code, r.stderr).toBe(0);
    const ok = await runInProcess([...args, '--systemd', '--bin', exe(outside)]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`ExecStart=${outside}/imdsguard guard`);
  });

  it("follows main.js's node_modules when a link sends it into a hidden path", async () => {
    const pkg = join(outside, 'pkg');
    mkdirSync(join(pkg, 'dist', 'cli'), { recursive: true });
    writeFileSync(join(pkg, 'dist', 'cli', 'main.js'), '');
    mkdirSync(join(inside, 'node_modules'));
    symlinkSync(join(inside, 'node_modules'), join(pkg, 'node_modules'));
    const paths = await execPaths(['/usr/bin/node', join(pkg, 'dist', 'cli', 'main.js')]);
    expect(paths.at(-1)).toEqual({
      given: join(pkg, 'node_modules'),
      resolved: join(inside, 'node_modules'),
    });
    const unit = '[Service]\nPrivateTmp=yes\n';
    expect(() => assertUnitCanRun(unit, paths)).toThrow(/node_modules \(resolves to \/tmp\/imdsg-sandbox-/);
  });
});
