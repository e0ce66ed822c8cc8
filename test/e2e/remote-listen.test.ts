import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { requireBuild, runBin } from '../support/bin.js';
import { canUseNetns, createNetns, type Netns } from '../support/netns.js';

/**
 * A guard listening on a non-loopback address on purpose (guard.allowRemoteListen), with real clients
 * on another host. Three namespaces the test creates:
 *
 *   host    10.213.0.1/24 (veth to "remote") and 10.214.0.1/24 (veth to "pod"); the emulator on
 *           127.0.0.1:18080 (tokens optional: it would answer IMDSv1), the guard on 10.213.0.1 and
 *           127.0.0.1; metadata traffic from the pod's veth DNATed to 127.0.0.1 (route_localnet),
 *           as `install --pod-interfaces` and the Kubernetes manifests do;
 *   remote  10.213.0.2: another host on the network;
 *   pod     10.214.0.2: a container whose traffic the host redirects.
 *
 * A remote client's tokenless request needs the secret (or a rule): a spoofed User-Agent or
 * Metadata-Flavor gets nothing. The host's own processes (even through 10.213.0.1) and the
 * redirected pod are local clients and keep their defaults.
 */

const MAIN = join(process.cwd(), 'dist', 'cli', 'main.js');
const GUARD_PORT = 16925;
const EMU_PORT = 18080;
const SECRET = 'remote-listen-secret-5d1e';
const CREDS = '/latest/meta-data/iam/security-credentials/';
const enabled = canUseNetns();

describe.skipIf(!enabled)('a guard listening on a non-loopback address (allowRemoteListen)', () => {
  let host: Netns;
  let remote: Netns;
  let pod: Netns;
  let dir: string;
  let eventsFile: string;
  let guard: ChildProcess;
  let guardStderr = '';

  const events = (): GuardEvent[] => {
    try {
      return readFileSync(eventsFile, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as GuardEvent);
    } catch {
      return [];
    }
  };
  /** The event of the request to `path` sent with the marker User-Agent suffix `mark`. */
  const eventOf = async (mark: string): Promise<GuardEvent> => {
    const end = Date.now() + 10_000;
    for (;;) {
      const e = events().find((x) => JSON.stringify(x.request ?? {}).includes(mark));
      if (e) return e;
      if (Date.now() > end) throw new Error(`no event for ${mark}; guard stderr:\n${guardStderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** curl in `ns`; returns the status code and body. */
  const curl = (ns: Netns, url: string, headers: string[], extra: string[] = []) => {
    const args = ['-s', '-m', '8', '-o', '-', '-w', '\n%{http_code}', ...extra];
    for (const h of headers) args.push('-H', h);
    const r = ns.run('curl', [...args, url]);
    const lines = r.stdout.split('\n');
    return { status: Number(lines.pop()), body: lines.join('\n') };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'imdsg-remote-'));
    eventsFile = join(dir, 'events.jsonl');
    host = createNetns('rhost');
    remote = createNetns('rpeer');
    pod = createNetns('rpod');
    try {
      host.exec('ip', [
        'link',
        'add',
        'vremote',
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        remote.name,
      ]);
      host.exec('ip', ['link', 'add', 'vpod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
      host.exec('ip', ['addr', 'add', '10.213.0.1/24', 'dev', 'vremote']);
      host.exec('ip', ['addr', 'add', '10.214.0.1/24', 'dev', 'vpod']);
      host.exec('ip', ['link', 'set', 'vremote', 'up']);
      host.exec('ip', ['link', 'set', 'vpod', 'up']);
      remote.exec('ip', ['addr', 'add', '10.213.0.2/24', 'dev', 'eth0']);
      remote.exec('ip', ['link', 'set', 'eth0', 'up']);
      pod.exec('ip', ['addr', 'add', '10.214.0.2/24', 'dev', 'eth0']);
      pod.exec('ip', ['link', 'set', 'eth0', 'up']);
      pod.exec('ip', ['route', 'add', 'default', 'via', '10.214.0.1']);
      // the pod's metadata traffic goes to the guard on loopback, as the host's redirect does it
      host.exec('sysctl', ['-qw', 'net.ipv4.conf.vpod.route_localnet=1']);
      host.exec('iptables', [
        '-t',
        'nat',
        '-A',
        'PREROUTING',
        '-i',
        'vpod',
        '-d',
        '169.254.169.254/32',
        '-p',
        'tcp',
        '--dport',
        '80',
        '-j',
        'DNAT',
        '--to-destination',
        `127.0.0.1:${GUARD_PORT}`,
      ]);
      const emu = host.spawn(process.execPath, [
        MAIN,
        'emulate',
        '--listen',
        `127.0.0.1:${EMU_PORT}`,
        '--tokens',
        'optional',
      ]);
      emu.stdout?.resume();
      emu.stderr?.resume();
      guard = host.spawn(
        process.execPath,
        [
          MAIN,
          'guard',
          '--listen',
          `10.213.0.1:${GUARD_PORT}`,
          '--listen',
          `127.0.0.1:${GUARD_PORT}`,
          '--allow-remote-listen',
          '--upstream',
          `http://127.0.0.1:${EMU_PORT}`,
          '--events',
          eventsFile,
        ],
        { env: { PATH: '/usr/bin:/bin', XHEADER: SECRET } },
      );
      guard.stdout?.resume();
      guard.stderr?.on('data', (d: Buffer) => {
        guardStderr += d.toString();
      });
      const end = Date.now() + 30_000;
      while (!guardStderr.includes('listening on')) {
        if (guard.exitCode !== null) throw new Error(`the guard exited: ${guardStderr}`);
        if (Date.now() > end) throw new Error(`the guard did not start: ${guardStderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // the emulator is up once the guard can forward to it
      while (
        curl(host, `http://127.0.0.1:${GUARD_PORT}/latest/meta-data/instance-id`, ['User-Agent: aws-cli/2'])
          .status !== 200
      ) {
        if (Date.now() > end) throw new Error(`the emulator did not start: ${guardStderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (err) {
      for (const n of [pod, remote, host]) n.destroy();
      throw err;
    }
  }, 60_000);

  afterAll(() => {
    for (const n of [pod, remote, host]) n?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const remoteUrl = `http://10.213.0.1:${GUARD_PORT}${CREDS}`;

  it.each([
    ['a spoofed AWS CLI User-Agent', 'User-Agent: aws-cli/2.15.0 remote-ua'],
    ['Metadata-Flavor: Amazon', 'Metadata-Flavor: Amazon'],
  ])(
    'a remote client with %s gets no credentials (401 remote-v1)',
    async (_n, header) => {
      const mark = `m${Math.random().toString(36).slice(2, 10)}`;
      const headers = header.startsWith('User-Agent')
        ? [`${header} ${mark}`]
        : [header, `User-Agent: curl ${mark}`];
      const r = curl(remote, remoteUrl, headers);
      expect(r.status).toBe(401);
      expect(r.body).not.toContain('AccessKeyId');
      const e = await eventOf(mark);
      expect(e.decision).toBe('deny');
      expect(e.rule).toBe('remote-v1');
      expect(e.request.client.address).toBe('10.213.0.2');
    },
    30_000,
  );

  it('a remote client with the secret header is allowed (auth-header), and the secret is not forwarded', async () => {
    const mark = `m${Math.random().toString(36).slice(2, 10)}`;
    const r = curl(remote, `${remoteUrl}`, [`X-Meta-Auth: ${SECRET}`, `User-Agent: curl ${mark}`]);
    expect(r.status).toBe(200);
    const e = await eventOf(mark);
    expect(e.rule).toBe('auth-header');
    expect(JSON.stringify(e)).not.toContain(SECRET);
  }, 30_000);

  it('a remote token PUT is refused as from another network namespace (container-token)', () => {
    const r = curl(
      remote,
      `http://10.213.0.1:${GUARD_PORT}/latest/api/token`,
      ['X-aws-ec2-metadata-token-ttl-seconds: 60'],
      ['-X', 'PUT'],
    );
    expect(r.status).toBe(403);
  }, 30_000);

  it('botocore on the remote host gets no credentials through the guard', async () => {
    const r = remote.run(
      'python3',
      [
        '-c',
        'import botocore.session\nc = botocore.session.get_session().get_credentials()\nprint("creds" if c else "none")',
      ],
      {
        env: {
          PATH: '/usr/bin:/bin',
          HOME: '/tmp',
          AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://10.213.0.1:${GUARD_PORT}/`,
          AWS_CONFIG_FILE: '/dev/null',
          AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        },
      },
    );
    expect(r.stdout.trim(), r.stderr).toBe('none');
    // it asked the guard (a token PUT refused, then IMDSv1 with its own User-Agent, refused)
    const end = Date.now() + 10_000;
    const botocore = () => events().filter((e) => e.request.userAgent?.startsWith('Botocore/'));
    while (!botocore().some((e) => e.rule === 'remote-v1') && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(botocore().map((e) => e.rule)).toContain('remote-v1');
    expect(botocore().every((e) => e.decision === 'deny')).toBe(true);
  }, 30_000);

  it('a process on the guard host through the non-loopback address is local: the User-Agent default holds', async () => {
    const mark = `m${Math.random().toString(36).slice(2, 10)}`;
    const r = curl(host, remoteUrl, [`User-Agent: aws-cli/2.15.0 ${mark}`]);
    expect(r.status).toBe(200);
    const e = await eventOf(mark);
    expect(e.rule).toBe('ua-allowlist');
  }, 30_000);

  it('a redirected container (DNAT to 127.0.0.1, its own source address) is local, not remote', async () => {
    const mark = `m${Math.random().toString(36).slice(2, 10)}`;
    const r = curl(pod, `http://169.254.169.254${CREDS}`, [`User-Agent: aws-cli/2.15.0 ${mark}`]);
    expect(r.status).toBe(200);
    const e = await eventOf(mark);
    expect(e.request.client.address).toBe('10.214.0.2');
    expect(e.rule).not.toBe('remote-v1');
    expect(e.decision).toBe('allow');
  }, 30_000);
});

describe('the real binary refuses a non-loopback listener in enforce and monitor', () => {
  const env = { PATH: '/usr/bin:/bin', HOME: '/tmp' };
  it.each([
    [['--listen', '0.0.0.0:0'], '0.0.0.0:0'],
    [['--mode', 'monitor', '--listen', '127.0.0.1:0', '--listen', '[::]:0'], '[::]:0'],
  ])(
    'guard %j exits 2 with IMDSGUARD_E_CONFIG naming the address and the option',
    async (args, addr) => {
      requireBuild();
      const r = await runBin(['guard', ...args, '--upstream', 'http://127.0.0.1:9'], {
        env,
        timeoutMs: 30_000,
      });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('IMDSGUARD_E_CONFIG');
      expect(r.stderr).toContain(`${addr} is not a loopback address`);
      expect(r.stderr).toContain('--allow-remote-listen');
      expect(r.stderr).toContain('(from flag --listen)');
      expect(r.stderr).not.toContain('listening on');
    },
    40_000,
  );

  it('a config file that sets the mode is refused the same way, naming the file', async () => {
    requireBuild();
    const d = mkdtempSync(join(tmpdir(), 'imdsg-remote-cfg-'));
    try {
      const file = join(d, 'guard.yaml');
      writeFileSync(file, 'guard:\n  mode: monitor\n  listen: ["0.0.0.0:0"]\n');
      const r = await runBin(['guard', '--config', file, '--upstream', 'http://127.0.0.1:9'], {
        env,
        timeoutMs: 30_000,
      });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('guard.listen[0]: 0.0.0.0:0 is not a loopback address: in monitor mode');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }, 40_000);
});
