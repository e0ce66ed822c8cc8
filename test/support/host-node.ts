import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { canUseNetns, createNetns, type Netns } from './netns.js';
import { waitFor, waitForOutput } from './wait.js';

/**
 * A host built out of network namespaces for the install/doctor/uninstall tests: an emulator on
 * 169.254.169.254:80 (and [fd00:ec2::254]:80) stands for IMDS; the real guard (`imdsguard guard`) runs
 * as `nobody` with the unit's two ambient capabilities, writing one event per request to a JSON-lines
 * file, so a test tells redirected traffic (an event appears) from direct traffic (none). Pods are
 * further namespaces attached the way the Amazon VPC CNI attaches them (addPod). Nothing here creates
 * users or touches the machine's own firewall.
 */

export const MAIN = resolve('dist/cli/main.js');
export const HOST_TESTS_ENABLED = canUseNetns() && existsSync(MAIN);
export const GUARD_PORT = 16925;
/** The emulator's admin endpoint (GET /requests lists what IMDS was asked), inside the host's namespace. */
export const EMULATOR_ADMIN_PORT = 1339;
/** setpriv arguments that run the guard as `nobody` with the unit's two ambient capabilities. */
export const AS_GUARD = [
  '--reuid=65534',
  '--regid=65534',
  '--clear-groups',
  '--inh-caps=+dac_read_search,+sys_ptrace',
  '--ambient-caps=+dac_read_search,+sys_ptrace',
] as const;
/** The guard reads MODE, PORT and other aliases from its environment: give it a clean one. */
export const CLEAN_ENV = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
const TTL = 'X-aws-ec2-metadata-token-ttl-seconds: 60';

/** curl arguments for a token PUT to url with User-Agent agent; prints only the response head. */
export function tokenPutArgs(agent: string, url: string): string[] {
  return [
    '-s',
    '-o',
    '/dev/null',
    '-D',
    '-',
    '--connect-timeout',
    '3',
    '--max-time',
    '5',
    '-A',
    agent,
    '-X',
    'PUT',
    '-H',
    TTL,
    url,
  ];
}

/**
 * Resolves when the child prints a line matching re (stdout or stderr); rejects on exit, or just
 * before the running test's timeout (test/support/wait.ts).
 */
export async function waitForLine(child: ChildProcess, re: RegExp): Promise<void> {
  await waitForOutput(child, re);
}

export interface CurlResult {
  /** The HTTP status, or "curl exit N" (7: refused or reset, 28: timed out). */
  code: string;
  /** Whether the guard recorded the request. */
  viaGuard: boolean;
}

export interface Host {
  ns: Netns;
  root: string;
  /** Scratch directory (writable by nobody): guard config and events. */
  work: string;
  guard: ChildProcess | undefined;
  /**
   * The CLI in the host's namespace. Asynchronous: a test that ran several of these synchronously
   * held its worker's event loop for minutes on a loaded machine, long enough for vitest's own
   * worker messages to time out.
   */
  cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }>;
  /** `install --apply --json --user nobody --root ROOT` and more arguments. */
  installArgs(...more: string[]): string[];
  startGuard(): Promise<void>;
  stopGuard(): Promise<void>;
  /** curl as a user (root or nobody): the status and whether the guard saw the request. */
  curl(user: 'root' | 'nobody', url: string): Promise<CurlResult>;
  /** A token PUT from another namespace (a container, a pod). */
  curlFrom(ns: Netns, url?: string): Promise<CurlResult>;
  /**
   * Whether the guard recorded a request with this User-Agent (sent before this call). When the guard
   * runs, a marker request sent to it now is waited for first: the guard records events in order, so
   * once the marker's is there, an earlier request's is too, or it never went through the guard.
   */
  sawAgent(agent: string): Promise<boolean>;
  /** The firewall as text: iptables-save, ip6tables-save and nft list ruleset. */
  snapshot(): string;
  /** What IMDS (the emulator) was asked so far. */
  imdsRequests(): Array<{ path: string; tokenPut: boolean; withToken: boolean }>;
}

function status(r: { status: number; stdout: string }): string {
  return /^HTTP\/[\d.]+ (\d+)/m.exec(r.stdout)?.[1] ?? `curl exit ${r.status}`;
}

export async function createHost(label: string, guardYaml = ''): Promise<Host> {
  const ns = createNetns(label);
  const root = mkdtempSync(join(tmpdir(), 'imdsg-root-'));
  const work = mkdtempSync(join(tmpdir(), 'imdsg-work-'));
  chmodSync(work, 0o777);
  // A loaded test machine needs more than the default 50 ms for a cold attribution.
  writeFileSync(
    join(work, 'guard.yaml'),
    `guard:\n  attribution:\n    timeoutMs: 3000\n${guardYaml}events:\n  file: ${join(work, 'events.jsonl')}\nadmin:\n  listen: 127.0.0.1:${GUARD_PORT + 1}\n`,
  );
  try {
    // Pods get their IPv6 addresses without duplicate address detection (nothing to wait for).
    for (const k of ['all', 'default']) ns.exec('sysctl', ['-qw', `net.ipv6.conf.${k}.accept_dad=0`]);
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
      '--admin',
      `127.0.0.1:${EMULATOR_ADMIN_PORT}`,
      '--json',
    ]);
    await waitForLine(emu, /"listening"/);
  } catch (err) {
    ns.destroy();
    rmSync(root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  const events = () => {
    try {
      return readFileSync(join(work, 'events.jsonl'), 'utf8');
    } catch {
      return '';
    }
  };
  const host: Host = {
    ns,
    root,
    work,
    guard: undefined,
    cli: (args) =>
      new Promise((resolve, reject) => {
        const child = ns.spawn('node', [MAIN, ...args]);
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (c: Buffer) => {
          stdout += c.toString();
        });
        child.stderr?.on('data', (c: Buffer) => {
          stderr += c.toString();
        });
        child.stdin?.end();
        child.once('error', reject);
        child.once('close', (code, signal) =>
          resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr }),
        );
      }),
    installArgs: (...more) => ['install', '--apply', '--json', '--user', 'nobody', '--root', root, ...more],
    async startGuard() {
      const g = ns.spawn(
        'setpriv',
        [
          ...AS_GUARD,
          process.execPath,
          MAIN,
          'guard',
          '--config',
          join(work, 'guard.yaml'),
          '--listen',
          `127.0.0.1:${GUARD_PORT}`,
          '--listen',
          `[::1]:${GUARD_PORT}`,
        ],
        { env: CLEAN_ENV },
      );
      host.guard = g;
      await waitForLine(g, /listening on/);
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
    async curl(user, url) {
      // A unique User-Agent per request: the guard records it in the request's event.
      const agent = `imdsg-e2e-${randomBytes(6).toString('hex')}`;
      const args = tokenPutArgs(agent, url);
      const argv =
        user === 'root'
          ? ['curl', ...args]
          : ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'curl', ...args];
      const r = ns.run(argv[0] as string, argv.slice(1));
      return { code: status(r), viaGuard: await host.sawAgent(agent) };
    },
    async curlFrom(other, url = 'http://169.254.169.254/latest/api/token') {
      const agent = `imdsg-e2e-${randomBytes(6).toString('hex')}`;
      const r = other.run('curl', tokenPutArgs(agent, url));
      return { code: status(r), viaGuard: await host.sawAgent(agent) };
    },
    async sawAgent(agent) {
      const seen = () => events().includes(`"${agent}"`);
      if (seen() || host.guard === undefined || host.guard.exitCode !== null) return seen();
      const marker = `imdsg-e2e-marker-${randomBytes(6).toString('hex')}`;
      const r = ns.run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '--max-time',
        '30',
        '-A',
        marker,
        `http://127.0.0.1:${GUARD_PORT}/latest/meta-data/`,
      ]);
      if (r.status !== 0) throw new Error(`the marker request to the guard failed: curl exit ${r.status}`);
      await waitFor(() => events().includes(`"${marker}"`), 'the marker request in the events');
      return seen();
    },
    imdsRequests() {
      const out = ns.exec('curl', [
        '-s',
        '--max-time',
        '5',
        `http://127.0.0.1:${EMULATOR_ADMIN_PORT}/requests`,
      ]);
      return (JSON.parse(out) as { requests: ReturnType<Host['imdsRequests']> }).requests;
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

export function destroyHost(h: Host | undefined): void {
  if (!h) return;
  h.ns.destroy();
  rmSync(h.root, { recursive: true, force: true });
  rmSync(h.work, { recursive: true, force: true });
}

export function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

export interface DoctorRun {
  status: number;
  checks: Record<string, string>;
  raw: string;
}

/** imdsguard doctor --json on the host, against the guard's admin /readyz. */
export async function doctor(h: Host, extra: string[] = []): Promise<DoctorRun> {
  const r = await h.cli([
    'doctor',
    '--json',
    '--root',
    h.root,
    '--health-url',
    `http://127.0.0.1:${GUARD_PORT + 1}/readyz`,
    ...extra,
  ]);
  const out = json(r.stdout) as { checks: Array<{ id: string; status: string }> };
  return {
    status: r.status,
    checks: Object.fromEntries(out.checks.map((c) => [c.id, c.status])),
    raw: r.stdout,
  };
}

/** What doctor answers on a healthy host. */
export const ALL_OK = {
  'redirect-v4': 'ok',
  'redirect-v6': 'ok',
  containers: 'ok',
  'guard-health': 'ok',
  'guard-exempt': 'ok',
  'imds-via-guard': 'ok',
  'imds-settings': 'ok',
  capabilities: 'ok',
  // npm install builds the sock_diag addon; IMDSGUARD_SKIP_NATIVE=1 skips it, and doctor says so.
  attribution: existsSync(resolve('native/addon/build/Release/imdsguard.node')) ? 'ok' : 'warn',
};

export interface Pod {
  ns: Netns;
  /** The host side of the pod's veth (eni..., as the Amazon VPC CNI names it). */
  iface: string;
  ip: string;
  ip6: string;
}

/**
 * A pod attached the way the Amazon VPC CNI attaches one: a veth whose host side (named like
 * "eni0a1b2c3d4e5") has no IPv4 address and no bridge, a /32 route to the pod's address on it, and in
 * the pod a default route via 169.254.1.1 with a static neighbour entry for the host side. IPv6 the
 * same way with a link-local gateway. Destroying the pod's namespace removes the veth pair.
 */
export function addPod(node: Netns, label: string, index: number): Pod {
  const iface = `eni${randomBytes(5).toString('hex')}`.slice(0, 15);
  const ip = `10.0.1.${10 + index}`;
  const ip6 = `fd00:10::${10 + index}`;
  const pod = createNetns(label);
  try {
    for (const k of ['all', 'default']) pod.exec('sysctl', ['-qw', `net.ipv6.conf.${k}.accept_dad=0`]);
    node.exec('ip', ['link', 'add', iface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
    const mac = (ns: Netns, dev: string) =>
      (JSON.parse(ns.exec('ip', ['-j', 'link', 'show', dev])) as Array<{ address: string }>)[0]?.address ??
      '';
    node.exec('ip', ['link', 'set', iface, 'up']);
    pod.exec('ip', ['link', 'set', 'eth0', 'up']);
    const hostMac = mac(node, iface);
    const podMac = mac(pod, 'eth0');
    pod.exec('ip', ['addr', 'add', `${ip}/32`, 'dev', 'eth0']);
    pod.exec('ip', ['route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
    pod.exec('ip', ['route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
    pod.exec('ip', ['neigh', 'add', '169.254.1.1', 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent']);
    node.exec('ip', ['route', 'add', `${ip}/32`, 'dev', iface, 'scope', 'link']);
    node.exec('ip', ['neigh', 'add', ip, 'lladdr', podMac, 'dev', iface, 'nud', 'permanent']);
    node.exec('ip', ['-6', 'addr', 'add', 'fe80::1/64', 'dev', iface, 'nodad']);
    pod.exec('ip', ['-6', 'addr', 'add', `${ip6}/128`, 'dev', 'eth0', 'nodad']);
    pod.exec('ip', ['-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0']);
    pod.exec('ip', ['-6', 'neigh', 'add', 'fe80::1', 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent']);
    node.exec('ip', ['-6', 'route', 'add', `${ip6}/128`, 'dev', iface]);
    node.exec('ip', ['-6', 'neigh', 'add', ip6, 'lladdr', podMac, 'dev', iface, 'nud', 'permanent']);
  } catch (err) {
    pod.destroy();
    throw err;
  }
  return { ns: pod, iface, ip, ip6 };
}
