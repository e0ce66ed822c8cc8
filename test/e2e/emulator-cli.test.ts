import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testTimeLeft } from '../support/wait.js';

/**
 * The real binary: node dist/cli/main.js emulate ... (npm test builds it first).
 */

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const PYTHON = '/usr/bin/python3';
const CURL = '/usr/bin/curl';

const hasBotocore =
  existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import botocore.session'], { timeout: 20_000 }).status === 0;
if (!hasBotocore) console.warn('skipping the botocore e2e test: python3-botocore is not installed');
const hasCurl = existsSync(CURL);
if (!hasCurl) console.warn('skipping the curl e2e test: curl is not installed');

interface Listening {
  event: 'listening';
  flavor: string;
  urls: string[];
  adminUrl: string | null;
  settings: { tokens: string; endpoint: string; hopLimit: number };
  instanceId: string;
}

interface Running {
  child: ChildProcess;
  info: Listening;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
let home: string;

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first`);
  home = mkdtempSync(join(tmpdir(), 'imdsguard-e2e-emulate-'));
  writeFileSync(join(home, 'config'), '');
  writeFileSync(join(home, 'credentials'), '');
});
afterAll(() => rmSync(home, { recursive: true, force: true }));
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

/** Starts `imdsguard emulate --json ...` and resolves once it printed where it listens. */
function startEmulate(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, 'emulate', '--json', ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`emulate did not start: ${err}`)),
      testTimeLeft() ?? 60_000,
    );
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) {
        clearTimeout(timer);
        resolve({ child, info: JSON.parse(line) as Listening, stderr: () => err, stdout: () => out, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`emulate exited with ${code}: ${err}`));
    });
  });
}

async function adminRequests(adminUrl: string): Promise<Array<Record<string, unknown>>> {
  const r = await fetch(`${adminUrl}/requests`);
  return ((await r.json()) as { requests: Array<Record<string, unknown>> }).requests;
}

// Each test starts the binary (up to 15 s allowed to listen) and may run a client (botocore: up to 30 s).
describe('imdsguard emulate (real binary)', { timeout: 60_000 }, () => {
  it('prints where it listens, serves IPv4 and IPv6, and stops cleanly on SIGTERM', async () => {
    const r = await startEmulate([
      '--listen',
      '127.0.0.1:0',
      '--listen',
      '[::1]:0',
      '--instance',
      join(FIXTURES, 'instance-valid.yaml'),
      '--hop-limit',
      '2',
    ]);
    expect(r.info.urls).toHaveLength(2);
    expect(r.info.urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(r.info.urls[1]).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect(r.info.settings).toEqual({ tokens: 'optional', endpoint: 'enabled', hopLimit: 2 });
    expect(r.stderr()).toContain(`listening on ${r.info.urls[0]}`);
    expect(r.stderr()).toContain(`export AWS_EC2_METADATA_SERVICE_ENDPOINT=${r.info.urls[0]}/`);
    for (const url of r.info.urls) {
      const res = await fetch(`${url}/latest/meta-data/instance-id`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('i-0123456789abcdef0');
    }
    r.child.kill('SIGTERM');
    expect(await r.exited).toBe(0);
    expect(r.stdout()).toContain('"event":"stopped"');
  });

  it.skipIf(!hasBotocore)(
    'with --tokens required serves botocore over IMDSv2 (token PUT, no tokenless GET)',
    async () => {
      const r = await startEmulate([
        '--listen',
        '127.0.0.1:0',
        '--tokens',
        'required',
        '--admin',
        '127.0.0.1:0',
      ]);
      const admin = r.info.adminUrl as string;
      const py =
        'import botocore.session, json\nc = botocore.session.get_session().get_credentials()\nprint(json.dumps({"method": c.method, "token": bool(c.get_frozen_credentials().token)}))';
      const { stdout } = await run(PYTHON, ['-c', py], {
        env: {
          PATH: '/usr/bin:/bin',
          HOME: home,
          AWS_CONFIG_FILE: join(home, 'config'),
          AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
          AWS_EC2_METADATA_SERVICE_ENDPOINT: `${r.info.urls[0]}/`,
        },
        timeout: 30_000,
      });
      expect(JSON.parse(stdout)).toEqual({ method: 'iam-role', token: true });
      const log = await adminRequests(admin);
      expect(log[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token', status: 200 });
      expect(log.filter((e) => e['method'] === 'GET' && e['withToken'] !== true)).toEqual([]);
      expect(
        log.some((e) => e['path'] === '/latest/meta-data/iam/security-credentials/imdsguard-demo-role'),
      ).toBe(true);
    },
  );

  it.skipIf(!hasCurl)('with --tokens required answers a tokenless curl with 401', async () => {
    const r = await startEmulate(['--listen', '127.0.0.1:0', '--tokens', 'required']);
    const { stdout } = await run(
      CURL,
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `${r.info.urls[0]}/latest/meta-data/iam/security-credentials/`,
      ],
      { timeout: 10_000 },
    );
    expect(stdout).toBe('401');
  });

  it('changes settings at runtime through --admin', async () => {
    const r = await startEmulate(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    const url = `${r.info.urls[0]}/latest/meta-data/`;
    expect((await fetch(url)).status).toBe(200);
    const put = await fetch(`${r.info.adminUrl}/settings`, {
      method: 'PUT',
      body: '{"endpoint":"disabled"}',
    });
    expect(put.status).toBe(200);
    expect((await fetch(url)).status).toBe(403);
  });
});

// Each test runs the binary once (killed after 15 s).
describe('imdsguard emulate bad input (real binary)', { timeout: 30_000 }, () => {
  let blocker: Server;
  let port: number;

  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  });

  async function fails(args: string[]): Promise<{ code: number; stderr: string }> {
    try {
      await run(process.execPath, [MAIN, 'emulate', ...args], { cwd: ROOT, timeout: 15_000 });
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, stderr: e.stderr };
    }
    throw new Error('expected emulate to fail');
  }

  it('a port in use: exit 1 with IMDSGUARD_E_LISTEN naming the address', async () => {
    const r = await fails(['--listen', `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}: address already in use`);
    expect(r.stderr).toContain('IMDSGUARD_E_LISTEN');
    expect(r.stderr).toContain('hint:');
  });

  it('a bad instance file: exit 2 with IMDSGUARD_E_INSTANCE_FILE naming the field', async () => {
    const file = join(FIXTURES, 'instance-bad-tag.yaml');
    const r = await fails(['--listen', '127.0.0.1:0', '--instance', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: tags[2].key: must be`);
    expect(r.stderr).toContain('IMDSGUARD_E_INSTANCE_FILE');
    const role = await fails([
      '--listen',
      '127.0.0.1:0',
      '--instance',
      join(FIXTURES, 'instance-bad-role.json'),
    ]);
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('iam.role: must be a string');
  });

  it('an unknown flag: exit 2 with a usage error and a suggestion', async () => {
    const r = await fails(['--listn', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--listn'");
    expect(r.stderr).toContain('--listen');
    expect(r.stderr).toContain('IMDSGUARD_E_USAGE');
  });
});
