import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { canUseNetns, createNetns, type Netns } from '../support/netns.js';
import { waitFor, waitForOutput } from '../support/wait.js';

/**
 * The real binary in a network namespace: an emulator upstream, the guard in monitor mode with
 * attribution on (the default), an iptables REDIRECT of 169.254.169.254:80 to the guard, and real
 * clients (curl, python, node) running as nobody. Every event must name the client's pid, exe and uid;
 * `imdsguard callers` must list them as IMDSv1 callers.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const ENABLED = canUseNetns() && existsSync(MAIN);
const GUARD_PORT = 16925;
const EMU_PORT = 18080;
const ADMIN_PORT = 16926;
/** Whether npm install built the sock_diag addon (IMDSGUARD_SKIP_NATIVE=1 skips it). */
const NATIVE = existsSync(join(ROOT, 'native', 'addon', 'build', 'Release', 'imdsguard.node'));
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const PY = '/usr/bin/python3';
const CURL = '/usr/bin/curl';

if (!ENABLED) {
  console.warn(
    `skipping test/e2e/attribution.test.ts: ${canUseNetns() ? `${MAIN} is missing (npm run build)` : 'needs root and ip netns'}`,
  );
}

let ns: Netns;
let dir: string;
let eventsFile: string;
let guard: ChildProcess;
let guardLog = '';
let configFile: string;

/** Keeps what a child prints in guardLog (for failure messages and the log checks). */
function logOutput(child: ChildProcess): void {
  const on = (d: Buffer) => {
    guardLog += d.toString();
  };
  child.stderr?.on('data', on);
  child.stdout?.on('data', on);
}

function exited(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode);
  return new Promise((res) => c.once('exit', (code) => res(code)));
}

function events(): GuardEvent[] {
  if (!existsSync(eventsFile)) return [];
  return readFileSync(eventsFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as GuardEvent);
}

async function eventFor(pid: number): Promise<GuardEvent> {
  const find = () => events().find((x) => x.caller?.pid === pid);
  try {
    await waitFor(() => find() !== undefined, `an event attributed to pid ${pid}`);
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; events: ${JSON.stringify(events().map((x) => x.caller))}\n${guardLog}`,
    );
  }
  return find() as GuardEvent;
}

/** Runs a client as nobody inside the namespace; resolves with its pid once it has exited 0. */
async function client(cmd: string, args: string[]): Promise<number> {
  const c = ns.spawn(NOBODY[0] as string, [...NOBODY.slice(1), cmd, ...args]);
  let out = '';
  c.stdout?.on('data', (d) => {
    out += d;
  });
  c.stderr?.on('data', (d) => {
    out += d;
  });
  const pid = c.pid as number;
  const code = await exited(c);
  expect(code, `${cmd} ${args.join(' ')}: ${out}`).toBe(0);
  return pid;
}

// Each test runs clients (and the CLI) in the namespace and polls the guard's events or metrics for up
// to 12 s: about 1-4 s on a quiet machine.
vi.setConfig({ testTimeout: 45_000 });

describe.skipIf(!ENABLED)('attribution end to end (netns, real binary, real clients as nobody)', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'imdsg-e2e-attr-'));
    eventsFile = join(dir, 'events.jsonl');
    // A generous attribution timeout: this test checks facts, and the machine may be busy.
    configFile = join(dir, 'config.json');
    // An exe rule makes each tokenless decision wait for attribution (as it would in production
    // with --allow-exe), so the lookup happens while the short-lived client is still connected.
    writeFileSync(
      configFile,
      JSON.stringify({
        guard: { attribution: { timeoutMs: 2000 }, allowExe: ['/usr/local/bin/some-agent'] },
        admin: { listen: `127.0.0.1:${ADMIN_PORT}` },
      }),
    );
    ns = createNetns('attr');
    ns.exec('ip', ['addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
    ns.exec('iptables', [
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-d',
      '169.254.169.254/32',
      '-p',
      'tcp',
      '--dport',
      '80',
      '-j',
      'REDIRECT',
      '--to-ports',
      String(GUARD_PORT),
    ]);
    const emu = ns.spawn(process.execPath, [MAIN, 'emulate', '--listen', `127.0.0.1:${EMU_PORT}`]);
    logOutput(emu);
    await waitForOutput(emu, 'listening on');
    guard = ns.spawn(process.execPath, [
      MAIN,
      'guard',
      '--config',
      configFile,
      '--mode',
      'monitor',
      '--listen',
      `127.0.0.1:${GUARD_PORT}`,
      '--listen',
      `[::1]:${GUARD_PORT}`,
      '--upstream',
      `http://127.0.0.1:${EMU_PORT}`,
      '--events',
      eventsFile,
    ]);
    logOutput(guard);
    await waitForOutput(guard, 'listening on');
    // The emulator must answer before clients run.
    await waitFor(
      () => ns.run(CURL, ['-sf', `http://127.0.0.1:${EMU_PORT}/latest/meta-data/`]).status === 0,
      'the emulator to answer',
      100,
    );
    expect(emu.exitCode).toBeNull();
  }, 60_000);

  afterAll(() => {
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('curl through the REDIRECT: pid, exe, uid and user in the event', async () => {
    const pid = await client(CURL, ['-sf', 'http://169.254.169.254/latest/meta-data/instance-id']);
    const e = await eventFor(pid);
    expect(e.request.version).toBe('v1');
    expect(e.caller).toMatchObject({
      resolved: 'full',
      pid,
      exe: realpathSync(CURL),
      uid: 65534,
      user: 'nobody',
      netns: 'host',
    });
    expect(e.caller?.cmdline).toContain('http://169.254.169.254/latest/meta-data/instance-id');
    expect(typeof e.attributionMs).toBe('number');
  });

  it('python through the REDIRECT, with an IMDSv2 token', async () => {
    // Token requests do not wait for attribution (the guard looks the caller up beside them), so the
    // client keeps its connection open for a moment, as SDKs with a connection pool do.
    const pid = await client(PY, [
      '-c',
      [
        'import http.client, time',
        "c = http.client.HTTPConnection('169.254.169.254', 80, timeout=5)",
        "c.request('PUT', '/latest/api/token', headers={'X-aws-ec2-metadata-token-ttl-seconds': '60'})",
        't = c.getresponse().read().decode()',
        "c.request('GET', '/latest/meta-data/ami-id', headers={'X-aws-ec2-metadata-token': t})",
        'c.getresponse().read()',
        'time.sleep(1)',
      ].join('\n'),
    ]);
    const e = await eventFor(pid);
    expect(e.caller).toMatchObject({
      resolved: 'full',
      pid,
      exe: realpathSync(PY),
      uid: 65534,
      user: 'nobody',
    });
    const mine = events().filter((x) => x.caller?.pid === pid);
    expect(mine.map((x) => x.request.version).sort()).toEqual(['token', 'v2']);
  });

  it('node through the REDIRECT', async () => {
    const pid = await client(process.execPath, [
      '-e',
      "require('http').get('http://169.254.169.254/latest/meta-data/', (r) => { r.resume(); r.on('end', () => process.exit(r.statusCode === 200 ? 0 : 1)); })",
    ]);
    const e = await eventFor(pid);
    expect(e.caller).toMatchObject({
      resolved: 'full',
      pid,
      exe: realpathSync(process.execPath),
      uid: 65534,
      user: 'nobody',
    });
  });

  it('an IPv6 client (python to [::1])', async () => {
    const pid = await client(PY, [
      '-c',
      `import urllib.request as u; u.urlopen('http://[::1]:${GUARD_PORT}/latest/meta-data/hostname').read()`,
    ]);
    const e = await eventFor(pid);
    expect(e.request.client.address).toBe('::1');
    expect(e.caller).toMatchObject({
      resolved: 'full',
      pid,
      exe: realpathSync(PY),
      uid: 65534,
      user: 'nobody',
    });
  });

  it.runIf(NATIVE || process.env.IMDSGUARD_SKIP_NATIVE !== '1')(
    'every client socket above was found by sock_diag, through the REDIRECT too, never by a /proc table walk',
    async () => {
      expect(NATIVE, 'the sock_diag addon is not built: npm run build:native').toBe(true);
      expect(guardLog).toContain('attribution: sockets by sock_diag');
      // The guard fetches its resolver's counters every 5 s.
      const metric = (text: string, name: string) =>
        Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
      let text = '';
      await waitFor(
        () => {
          text = ns.exec(CURL, ['-sf', `http://127.0.0.1:${ADMIN_PORT}/metrics`]);
          return metric(text, 'imdsguard_attribution_socket_lookups_total{via="sock_diag"}') >= 4;
        },
        '4 sock_diag lookups in the metrics',
        250,
      );
      expect(metric(text, 'imdsguard_attribution_sock_diag')).toBe(1);
      expect(metric(text, 'imdsguard_attribution_socket_lookups_total{via="proc_table"}')).toBe(0);
    },
  );

  it('imdsguard callers lists the IMDSv1 callers by executable and user', async () => {
    let out = '';
    let code = 0;
    try {
      out = execFileSync(process.execPath, [MAIN, 'callers', '--events', eventsFile, '--json'], {
        encoding: 'utf8',
      });
    } catch (err) {
      const e = err as { status?: number; stdout?: string };
      code = e.status ?? -1;
      out = e.stdout ?? '';
    }
    expect(code).toBe(1);
    const report = JSON.parse(out) as {
      callers: Array<{ exe?: string; user?: string; v1: number; v2: number }>;
    };
    const v1 = report.callers.filter((c) => c.v1 > 0);
    expect(v1.map((c) => c.exe).sort()).toEqual(
      [realpathSync(CURL), realpathSync(process.execPath), realpathSync(PY)].sort(),
    );
    expect(v1.every((c) => c.user === 'nobody')).toBe(true);
    const table = (() => {
      try {
        return execFileSync(process.execPath, [MAIN, 'callers', '--events', eventsFile], {
          encoding: 'utf8',
        });
      } catch (err) {
        return (err as { stdout?: string }).stdout ?? '';
      }
    })();
    expect(table).toContain('What breaks if you enforce IMDSv2 on this host:');
    expect(table).toMatch(/3 callers made \d+ IMDSv1/);
  });
});
