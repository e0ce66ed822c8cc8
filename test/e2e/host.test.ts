import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALL_OK,
  createHost,
  destroyHost,
  doctor,
  HOST_TESTS_ENABLED as ENABLED,
  type Host,
  json,
  MAIN,
  GUARD_PORT as PORT,
} from '../support/host-node.js';
import { createNetns, type Netns } from '../support/netns.js';

/**
 * install / doctor / uninstall with the real CLI binary inside network namespaces this test creates
 * (test/support/host-node.ts: an emulator for IMDS, the real guard as `nobody`, one event per
 * request). No test creates users or touches the machine's own firewall.
 */

if (!ENABLED) {
  console.warn('host e2e tests skipped: they need root, `ip netns` and a build (npm run build)');
}

describe.skipIf(!ENABLED).each(['iptables', 'nftables'] as const)(
  'install, doctor, uninstall (%s)',
  // Each test runs the binary (install, doctor, uninstall) and iptables/nft in the namespace.
  { timeout: 60_000 },
  (backend) => {
    let h: Host | undefined;
    let before = '';
    const installArgs = () => [
      'install',
      '--apply',
      '--json',
      '--backend',
      backend,
      '--user',
      'nobody',
      '--root',
      (h as Host).root,
      '--ipv6',
      // Under a --root other than / install writes the unit but never runs systemctl. --bin: the
      // unit must not name a checkout under /home or /tmp, which its sandbox hides (CI runners).
      '--systemd',
      '--bin',
      '/usr/bin/imdsguard',
    ];

    beforeAll(async () => {
      h = await createHost(backend.slice(0, 4));
      before = h.snapshot();
      // A namespace, the emulator and the guard, each binary allowed up to 15 s to listen.
    }, 60_000);
    afterAll(() => destroyHost(h));

    it('refuses to add the redirect while the guard is down, unless forced', async () => {
      const host = h as Host;
      const r = await host.cli(installArgs());
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('IMDSGUARD_E_GUARD_UNHEALTHY');
      expect(host.snapshot()).toBe(before);
    });

    it('install --apply sends other users to the guard and exempts the guard user', async () => {
      const host = h as Host;
      await host.startGuard();
      const r = await host.cli(installArgs());
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect((json(r.stdout)['changes'] as string[]).length).toBeGreaterThan(0);
      expect(host.snapshot()).not.toBe(before);

      // root (any uid but nobody) is redirected to the guard, v4 and v6.
      expect(await host.curl('root', 'http://169.254.169.254/latest/api/token')).toEqual({
        code: '200',
        viaGuard: true,
      });
      expect(await host.curl('root', 'http://[fd00:ec2::254]/latest/api/token')).toEqual({
        code: '200',
        viaGuard: true,
      });
      // the exempt guard user reaches IMDS directly.
      expect(await host.curl('nobody', 'http://169.254.169.254/latest/api/token')).toEqual({
        code: '200',
        viaGuard: false,
      });
      expect(await host.curl('nobody', 'http://[fd00:ec2::254]/latest/api/token')).toEqual({
        code: '200',
        viaGuard: false,
      });
      // the files went under the root prefix.
      expect(existsSync(join(host.root, 'etc/imdsguard/config.yaml'))).toBe(true);
      expect(existsSync(join(host.root, 'var/lib/imdsguard/install.json'))).toBe(true);
      expect(readFileSync(join(host.root, 'etc/systemd/system/imdsguard.service'), 'utf8')).toContain(
        'User=nobody',
      );
      expect((json(r.stdout)['notes'] as string[]).join('\n')).toContain('not running systemctl');
    }, 90_000);

    it('a second install changes nothing', async () => {
      const host = h as Host;
      const first = host.snapshot();
      const r = await host.cli(installArgs());
      expect(r.status, `${r.stderr}${r.stdout}`).toBe(0);
      expect(json(r.stdout)['changes']).toEqual([]);
      expect(host.snapshot()).toBe(first);
    });

    it('doctor reports healthy, then names each broken piece', async () => {
      const host = h as Host;
      let d = await doctor(host);
      expect(d.checks, d.raw).toEqual(ALL_OK);
      expect(d.status).toBe(0);

      // 1. the redirect is deleted
      if (backend === 'nftables') host.ns.exec('nft', ['flush', 'chain', 'inet', 'imdsguard', 'output']);
      else host.ns.exec('iptables', ['-t', 'nat', '-F', 'IMDSGUARD']);
      d = await doctor(host);
      expect(d.status).toBe(1);
      expect(d.checks['redirect-v4']).toBe('fail');
      expect(d.checks['guard-health']).toBe('ok');
      expect((await host.curl('root', 'http://169.254.169.254/latest/api/token')).viaGuard).toBe(false);
      expect((await host.cli(installArgs())).status).toBe(0);
      expect((await doctor(host)).checks).toEqual(ALL_OK);

      // 2. the guard stops: fail closed, IMDS unreachable for everyone but the guard user
      await host.stopGuard();
      d = await doctor(host);
      expect(d.status).toBe(1);
      expect(d.checks['guard-health']).toBe('fail');
      expect(d.checks['imds-via-guard']).toBe('fail');
      expect(d.checks['capabilities']).toBe('warn');
      expect(d.checks['redirect-v4']).toBe('ok');
      expect((await host.curl('root', 'http://169.254.169.254/latest/api/token')).code).toMatch(/^curl exit/);
      expect((await host.curl('nobody', 'http://169.254.169.254/latest/api/token')).code).toBe('200');
      // 3. the rules exempt the wrong user (a guard running as nobody would loop into itself; it
      //    stays stopped meanwhile, so the change needs --force)
      const daemonArgs = [
        ...installArgs().filter((a) => a !== 'nobody' && a !== '--user'),
        '--user',
        'daemon',
      ];
      expect((await host.cli([...daemonArgs, '--force'])).status).toBe(0);
      d = await doctor(host, ['--user', 'nobody']);
      expect(d.checks['guard-exempt']).toBe('fail');
      expect(d.checks['redirect-v4']).toBe('ok');
      expect((await host.cli([...installArgs(), '--force'])).status).toBe(0);
      await host.startGuard();
      expect((await doctor(host)).checks).toEqual(ALL_OK);
      // Seven doctor runs (each starts a probe process too), three installs and a guard start: up to
      // 100 s on a 2-core machine loaded by a second suite.
    }, 240_000);

    it('uninstall --apply leaves the rulesets and the root exactly as before', async () => {
      const host = h as Host;
      const r = await host.cli(['uninstall', '--apply', '--json', '--backend', backend, '--root', host.root]);
      expect(r.status, r.stderr).toBe(0);
      expect(host.snapshot()).toBe(before);
      expect(readdirSync(host.root)).toEqual([]);
      // and a second uninstall has nothing left to do
      const again = await host.cli([
        'uninstall',
        '--apply',
        '--json',
        '--backend',
        backend,
        '--root',
        host.root,
      ]);
      expect(json(again.stdout)['changes']).toEqual([]);
    });
  },
);

describe.skipIf(!ENABLED)('install --containers', () => {
  let h: Host | undefined;
  let container: Netns | undefined;
  afterAll(() => {
    container?.destroy();
    destroyHost(h);
  });

  it('redirects IPv4 metadata traffic from a bridge to the guard, refuses IPv6, and uninstall restores both', async () => {
    // Token requests from other network namespaces are refused unless allowed (the guard's default).
    h = await createHost('ctr', '  containerTokens: allow\n');
    const host = h;
    container = createNetns('ctr-c');
    // A veth pair stands for the bridge: "imdsgbr0" on the host side, eth0 in the container.
    host.ns.exec('ip', [
      'link',
      'add',
      'imdsgbr0',
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      container.name,
    ]);
    host.ns.exec('ip', ['addr', 'add', '10.213.0.1/24', 'dev', 'imdsgbr0']);
    host.ns.exec('ip', ['link', 'set', 'imdsgbr0', 'up']);
    container.exec('ip', ['addr', 'add', '10.213.0.2/24', 'dev', 'eth0']);
    container.exec('ip', ['link', 'set', 'eth0', 'up']);
    container.exec('ip', ['route', 'add', 'default', 'via', '10.213.0.1']);
    host.ns.exec('ip', ['-6', 'addr', 'add', 'fd00:213::1/64', 'dev', 'imdsgbr0', 'nodad']);
    container.exec('ip', ['-6', 'addr', 'add', 'fd00:213::2/64', 'dev', 'eth0', 'nodad']);
    container.exec('ip', ['-6', 'route', 'add', 'default', 'via', 'fd00:213::1']);
    const before = host.snapshot();
    const fromContainer = (url?: string) => host.curlFrom(container as Netns, url);
    const v6 = 'http://[fd00:ec2::254]/latest/api/token';
    // Before install the container reaches the emulator directly, over IPv4 and IPv6.
    expect(await fromContainer()).toEqual({ code: '200', viaGuard: false });
    expect(await fromContainer(v6)).toEqual({ code: '200', viaGuard: false });

    await host.startGuard();
    const args = host.installArgs('--containers', '--bridges', 'imdsgbr0', '--ipv6');
    for (const backend of ['nftables', 'iptables']) {
      const r = await host.cli([...args, '--backend', backend]);
      expect(r.status, r.stderr).toBe(0);
      expect(host.ns.exec('cat', ['/proc/sys/net/ipv4/conf/imdsgbr0/route_localnet']).trim()).toBe('1');
      expect(await fromContainer()).toEqual({ code: '200', viaGuard: true });
      // IPv6 cannot be sent to the guard on ::1 (no route_localnet): it is refused, not let through.
      // curl exit 7: connection refused (the TCP reset answering its SYN).
      expect(await fromContainer(v6)).toEqual({ code: 'curl exit 7', viaGuard: false });
      expect(existsSync(join(host.root, 'etc/sysctl.d/60-imdsguard.conf'))).toBe(true);
      // doctor checks what install recorded: the DNAT, route_localnet, the IPv6 refusal.
      expect((await doctor(host)).checks['containers'], backend).toBe('ok');
      host.ns.exec('sysctl', ['-qw', 'net.ipv4.conf.imdsgbr0.route_localnet=0']);
      const off = await doctor(host);
      expect(off.checks['containers']).toBe('fail');
      expect(off.raw).toContain('imdsgbr0: route_localnet is 0');
      host.ns.exec('sysctl', ['-qw', 'net.ipv4.conf.imdsgbr0.route_localnet=1']);
      // Without the drop of other bridge traffic to 127.0.0.0/8, route_localnet exposes loopback.
      if (backend === 'nftables') host.ns.exec('nft', ['flush', 'chain', 'inet', 'imdsguard', 'input']);
      else host.ns.exec('iptables', ['-t', 'filter', '-F', 'IMDSGUARD-IN']);
      const open = await doctor(host);
      expect(open.checks['containers']).toBe('fail');
      expect(open.raw).toContain('imdsgbr0: nothing drops its other traffic to 127.0.0.0/8');
      // A second install puts it back.
      expect((await host.cli([...args, '--backend', backend])).status).toBe(0);
      expect((await doctor(host)).checks['containers']).toBe('ok');
    }
    // The fail-open stop hook (uninstall --rules-only) takes route_localnet back with the drop rule:
    // the switch never stays on without it.
    const rulesOnly = await host.cli(['uninstall', '--apply', '--rules-only', '--json', '--root', host.root]);
    expect(rulesOnly.status, rulesOnly.stderr).toBe(0);
    expect(host.ns.exec('cat', ['/proc/sys/net/ipv4/conf/imdsgbr0/route_localnet']).trim()).toBe('0');
    expect(existsSync(join(host.root, 'etc/sysctl.d/60-imdsguard.conf'))).toBe(true);
    const r = await host.cli(['uninstall', '--apply', '--json', '--root', host.root]);
    expect(r.status, r.stderr).toBe(0);
    expect(host.ns.exec('cat', ['/proc/sys/net/ipv4/conf/imdsgbr0/route_localnet']).trim()).toBe('0');
    expect(host.snapshot()).toBe(before);
    expect(readdirSync(host.root)).toEqual([]);
    expect(await fromContainer()).toEqual({ code: '200', viaGuard: false });
    expect(await fromContainer(v6)).toEqual({ code: '200', viaGuard: false });
    // Two namespaces, a guard, three install/doctor/uninstall runs and a dozen curls: about 25 s on a
    // quiet machine, 110 s with two test suites beside it.
  }, 240_000);
});

describe.skipIf(!ENABLED)('print mode and the fail-open unit hooks', () => {
  let h: Host | undefined;
  afterAll(() => destroyHost(h));

  it('install without --apply prints the plan and changes nothing', async () => {
    h = await createHost('hook');
    const host = h;
    const before = host.snapshot();
    const r = await host.cli([
      'install',
      '--user',
      'nobody',
      '--root',
      host.root,
      '--backend',
      'nftables',
      '--systemd',
      '--bin',
      '/usr/bin/imdsguard',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^#!\/bin\/sh/);
    expect(r.stdout).toContain("nft -f - <<'EOF'");
    expect(r.stdout).toContain('meta skuid != 65534 redirect to :16925');
    expect(r.stdout).toContain('AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE');
    expect(host.snapshot()).toBe(before);
    expect(readdirSync(host.root)).toEqual([]);
    const u = await host.cli(['uninstall', '--root', host.root]);
    expect(u.stdout).toContain('none found');
  }, 60_000);

  it('the ExecStartPost hook waits for the guard, the ExecStopPost hook removes only the rules', async () => {
    const host = h as Host;
    const before = host.snapshot();
    // What the fail-open unit runs (without --root: the hooks write no files).
    const hook = host.ns.spawn('node', [
      MAIN,
      'install',
      '--apply',
      '--rules-only',
      '--backend',
      'nftables',
      '--user',
      'nobody',
      '--health-timeout',
      '60s',
      '--health-url',
      `http://127.0.0.1:${PORT + 1}/readyz`,
    ]);
    const done = new Promise<number | null>((ok) => hook.once('exit', ok));
    await new Promise((r) => setTimeout(r, 1000));
    expect(hook.exitCode).toBeNull(); // still waiting: no guard yet
    expect(host.snapshot()).toBe(before);
    await host.startGuard();
    expect(await done).toBe(0);
    expect((await host.curl('root', 'http://169.254.169.254/latest/api/token')).viaGuard).toBe(true);
    const r = await host.cli(['uninstall', '--apply', '--rules-only', '--backend', 'nftables', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(json(r.stdout)['changes']).toEqual(['nft delete table inet imdsguard']);
    expect(host.snapshot()).toBe(before);
  }, 120_000);
});
