import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, createNetns, type Netns } from '../support/netns.js';

/**
 * install / doctor / uninstall with the real CLI binary inside network namespaces this test creates.
 * An emulator on 169.254.169.254:80 (and [fd00:ec2::254]:80) stands for IMDS; a small forwarding
 * proxy run as `nobody` with the unit's two ambient capabilities stands for the guard and marks its
 * answers with an x-test-guard header, so the test can tell redirected traffic from direct traffic.
 * No test creates users or touches the machine's own firewall.
 */

const MAIN = resolve('dist/cli/main.js');
const ENABLED = canUseNetns() && existsSync(MAIN);
if (!ENABLED) {
  console.warn('host e2e tests skipped: they need root, `ip netns` and a build (npm run build)');
}

const PORT = 16925;
const TTL = 'X-aws-ec2-metadata-token-ttl-seconds: 60';

/** A forwarding proxy standing in for the guard: every answer carries x-test-guard: <its uid>. */
const FAKE_GUARD = `
const http = require('node:http');
const port = Number(process.argv[1]);
const handler = (req, res) => {
  const up = http.request({ host: '169.254.169.254', port: 80, method: req.method, path: req.url,
    headers: { ...req.headers, host: '169.254.169.254' }, agent: false }, (u) => {
    res.writeHead(u.statusCode, { ...u.headers, 'x-test-guard': String(process.getuid()) });
    u.pipe(res);
  });
  up.on('error', (e) => { res.writeHead(502); res.end(String(e.code)); });
  req.pipe(up);
};
let n = 0;
for (const host of process.argv.slice(2)) {
  http.createServer(handler).listen(port, host, () => { if (++n === process.argv.length - 2) console.log('ready'); });
}
`;

function waitForLine(child: ChildProcess, re: RegExp, ms = 15_000): Promise<void> {
  return new Promise((ok, fail) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${re}: ${buf}`)), ms);
    const on = (c: Buffer) => {
      buf += c.toString();
      if (re.test(buf)) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', (c: Buffer) => {
      buf += c.toString();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`exited ${code} before ${re}: ${buf}`));
    });
  });
}

interface Host {
  ns: Netns;
  root: string;
  guard: ChildProcess | undefined;
  cli(args: string[]): { status: number; stdout: string; stderr: string };
  startGuard(): Promise<void>;
  stopGuard(): Promise<void>;
  /** curl as a user (root or nobody): the status and whether the fake guard answered. */
  curl(user: 'root' | 'nobody', url: string, put?: boolean): { code: string; viaGuard: boolean };
  snapshot(): string;
}

async function createHost(label: string): Promise<Host> {
  const ns = createNetns(label);
  const root = mkdtempSync(join(tmpdir(), 'imdsg-root-'));
  try {
    ns.exec('ip', ['addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
    ns.exec('ip', ['addr', 'add', 'fd00:ec2::254/128', 'dev', 'lo', 'nodad']);
    const emu = ns.spawn('node', [
      MAIN,
      'emulate',
      '--listen',
      '169.254.169.254:80',
      '--listen',
      '[fd00:ec2::254]:80',
      '--tokens',
      'required',
      '--json',
    ]);
    await waitForLine(emu, /"listening"/);
  } catch (err) {
    ns.destroy();
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const host: Host = {
    ns,
    root,
    guard: undefined,
    cli: (args) => ns.run('node', [MAIN, ...args]),
    async startGuard() {
      const g = ns.spawn('setpriv', [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--inh-caps=+dac_read_search,+sys_ptrace',
        '--ambient-caps=+dac_read_search,+sys_ptrace',
        process.execPath,
        '-e',
        FAKE_GUARD,
        String(PORT),
        '127.0.0.1',
        '::1',
      ]);
      host.guard = g;
      await waitForLine(g, /ready/);
    },
    async stopGuard() {
      const g = host.guard;
      if (!g || g.exitCode !== null) return;
      const gone = new Promise((r) => g.once('exit', r));
      // The child of `ip netns exec` is setpriv's exec'd node: kill the whole namespace member.
      g.kill('SIGKILL');
      await gone;
      host.guard = undefined;
    },
    curl(user, url, put = true) {
      const args = ['-s', '-o', '/dev/null', '-D', '-', '--max-time', '3'];
      if (put) args.push('-X', 'PUT', '-H', TTL);
      args.push(url);
      const argv =
        user === 'root'
          ? ['curl', ...args]
          : ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'curl', ...args];
      const r = ns.run(argv[0] as string, argv.slice(1));
      const status = /^HTTP\/[\d.]+ (\d+)/m.exec(r.stdout)?.[1] ?? `curl exit ${r.status}`;
      return { code: status, viaGuard: /^x-test-guard: 65534/im.test(r.stdout) };
    },
    snapshot() {
      const strip = (s: string) =>
        s
          .split('\n')
          .filter((l) => !l.startsWith('#'))
          .join('\n');
      return [
        strip(ns.exec('iptables-save', [])),
        strip(ns.exec('ip6tables-save', [])),
        ns.exec('nft', ['list', 'ruleset']),
      ].join('\n=====\n');
    },
  };
  return host;
}

function destroyHost(h: Host | undefined): void {
  if (!h) return;
  h.ns.destroy();
  rmSync(h.root, { recursive: true, force: true });
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

function doctor(
  h: Host,
  extra: string[] = [],
): { status: number; checks: Record<string, string>; raw: string } {
  const r = h.cli(['doctor', '--json', '--root', h.root, ...extra]);
  const out = json(r.stdout) as { checks: Array<{ id: string; status: string }> };
  return {
    status: r.status,
    checks: Object.fromEntries(out.checks.map((c) => [c.id, c.status])),
    raw: r.stdout,
  };
}

const ALL_OK = {
  'redirect-v4': 'ok',
  'redirect-v6': 'ok',
  'guard-health': 'ok',
  'guard-exempt': 'ok',
  'imds-via-guard': 'ok',
  'imds-settings': 'ok',
  capabilities: 'ok',
};

describe.skipIf(!ENABLED).each(['iptables', 'nftables'] as const)(
  'install, doctor, uninstall (%s)',
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
    ];

    beforeAll(async () => {
      h = await createHost(backend.slice(0, 4));
      before = h.snapshot();
    });
    afterAll(() => destroyHost(h));

    it('refuses to add the redirect while the guard is down, unless forced', () => {
      const host = h as Host;
      const r = host.cli(installArgs());
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('IMDSGUARD_E_GUARD_UNHEALTHY');
      expect(host.snapshot()).toBe(before);
    });

    it('install --apply sends other users to the guard and exempts the guard user', async () => {
      const host = h as Host;
      await host.startGuard();
      const r = host.cli(installArgs());
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect((json(r.stdout)['changes'] as string[]).length).toBeGreaterThan(0);
      expect(host.snapshot()).not.toBe(before);

      // root (any uid but nobody) is redirected to the guard, v4 and v6.
      expect(host.curl('root', 'http://169.254.169.254/latest/api/token')).toEqual({
        code: '200',
        viaGuard: true,
      });
      expect(host.curl('root', 'http://[fd00:ec2::254]/latest/api/token')).toEqual({
        code: '200',
        viaGuard: true,
      });
      // the exempt guard user reaches IMDS directly.
      expect(host.curl('nobody', 'http://169.254.169.254/latest/api/token')).toEqual({
        code: '200',
        viaGuard: false,
      });
      expect(host.curl('nobody', 'http://[fd00:ec2::254]/latest/api/token')).toEqual({
        code: '200',
        viaGuard: false,
      });
      // the files went under the root prefix.
      expect(existsSync(join(host.root, 'etc/imdsguard/config.yaml'))).toBe(true);
      expect(existsSync(join(host.root, 'var/lib/imdsguard/install.json'))).toBe(true);
    });

    it('a second install changes nothing', () => {
      const host = h as Host;
      const first = host.snapshot();
      const r = host.cli(installArgs());
      expect(r.status).toBe(0);
      expect(json(r.stdout)['changes']).toEqual([]);
      expect(host.snapshot()).toBe(first);
    });

    it('doctor reports healthy, then names each broken piece', async () => {
      const host = h as Host;
      let d = doctor(host);
      expect(d.checks, d.raw).toEqual(ALL_OK);
      expect(d.status).toBe(0);

      // 1. the redirect is deleted
      if (backend === 'nftables') host.ns.exec('nft', ['flush', 'chain', 'inet', 'imdsguard', 'output']);
      else host.ns.exec('iptables', ['-t', 'nat', '-F', 'IMDSGUARD']);
      d = doctor(host);
      expect(d.status).toBe(1);
      expect(d.checks['redirect-v4']).toBe('fail');
      expect(d.checks['guard-health']).toBe('ok');
      expect(host.curl('root', 'http://169.254.169.254/latest/api/token').viaGuard).toBe(false);
      expect(host.cli(installArgs()).status).toBe(0);
      expect(doctor(host).checks).toEqual(ALL_OK);

      // 2. the guard stops: fail closed, IMDS unreachable for everyone but the guard user
      await host.stopGuard();
      d = doctor(host);
      expect(d.status).toBe(1);
      expect(d.checks['guard-health']).toBe('fail');
      expect(d.checks['imds-via-guard']).toBe('fail');
      expect(d.checks['capabilities']).toBe('warn');
      expect(d.checks['redirect-v4']).toBe('ok');
      expect(host.curl('root', 'http://169.254.169.254/latest/api/token').code).toMatch(/^curl exit/);
      expect(host.curl('nobody', 'http://169.254.169.254/latest/api/token').code).toBe('200');
      // 3. the rules exempt the wrong user (a guard running as nobody would loop into itself; it
      //    stays stopped meanwhile, so the change needs --force)
      const daemonArgs = [
        ...installArgs().filter((a) => a !== 'nobody' && a !== '--user'),
        '--user',
        'daemon',
      ];
      expect(host.cli([...daemonArgs, '--force']).status).toBe(0);
      d = doctor(host, ['--user', 'nobody']);
      expect(d.checks['guard-exempt']).toBe('fail');
      expect(d.checks['redirect-v4']).toBe('ok');
      expect(host.cli([...installArgs(), '--force']).status).toBe(0);
      await host.startGuard();
      expect(doctor(host).checks).toEqual(ALL_OK);
    }, 120_000);

    it('uninstall --apply leaves the rulesets and the root exactly as before', () => {
      const host = h as Host;
      const r = host.cli(['uninstall', '--apply', '--json', '--backend', backend, '--root', host.root]);
      expect(r.status, r.stderr).toBe(0);
      expect(host.snapshot()).toBe(before);
      expect(readdirSync(host.root)).toEqual([]);
      // and a second uninstall has nothing left to do
      const again = host.cli(['uninstall', '--apply', '--json', '--backend', backend, '--root', host.root]);
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

  it('redirects metadata traffic from a bridge to the guard on loopback, and uninstall restores it', async () => {
    h = await createHost('ctr');
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
    const before = host.snapshot();
    const fromContainer = () => {
      const r = (container as Netns).run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-D',
        '-',
        '--max-time',
        '3',
        '-X',
        'PUT',
        '-H',
        TTL,
        'http://169.254.169.254/latest/api/token',
      ]);
      return {
        code: /^HTTP\/[\d.]+ (\d+)/m.exec(r.stdout)?.[1],
        viaGuard: /^x-test-guard: 65534/im.test(r.stdout),
      };
    };
    // Before install the container reaches the emulator directly.
    expect(fromContainer()).toEqual({ code: '200', viaGuard: false });

    await host.startGuard();
    const args = [
      'install',
      '--apply',
      '--json',
      '--user',
      'nobody',
      '--root',
      host.root,
      '--containers',
      '--bridges',
      'imdsgbr0',
    ];
    for (const backend of ['nftables', 'iptables']) {
      const r = host.cli([...args, '--backend', backend]);
      expect(r.status, r.stderr).toBe(0);
      expect(host.ns.exec('cat', ['/proc/sys/net/ipv4/conf/imdsgbr0/route_localnet']).trim()).toBe('1');
      expect(fromContainer()).toEqual({ code: '200', viaGuard: true });
      expect(existsSync(join(host.root, 'etc/sysctl.d/60-imdsguard.conf'))).toBe(true);
    }
    const r = host.cli(['uninstall', '--apply', '--json', '--root', host.root]);
    expect(r.status, r.stderr).toBe(0);
    expect(host.ns.exec('cat', ['/proc/sys/net/ipv4/conf/imdsgbr0/route_localnet']).trim()).toBe('0');
    expect(host.snapshot()).toBe(before);
    expect(readdirSync(host.root)).toEqual([]);
    expect(fromContainer()).toEqual({ code: '200', viaGuard: false });
  });
});
