import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../support/cli.js';

/**
 * The host commands' argument handling, in-process. Only print mode runs here (it reads, never
 * changes anything); --apply runs only in the network-namespace tests (test/e2e/host.test.ts).
 */

const root = mkdtempSync(join(tmpdir(), 'imdsg-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('imdsguard install (print mode)', () => {
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
