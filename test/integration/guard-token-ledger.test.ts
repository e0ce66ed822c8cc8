import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { LEDGER_FILE } from '../../src/guard/tokens/persist.js';
import { type WiredGuard, wireGuard } from '../../src/guard/wire.js';
import { waitFor } from '../support/wait.js';

/**
 * The token ledger on the request path, with a real guard (wireGuard, real
 * attribution), the emulator as the upstream and real clients: curl in a shell script, the AWS SDK
 * for JavaScript v3, Debian's botocore. Every token-bearing event says issued-here, unknown,
 * expired or other-caller; an unknown token gets guard.unknownToken; a token used by another
 * process or user than the one it was issued to raises an alert; the ledger survives a restart.
 */

const run = promisify(execFile);
const CURL = '/usr/bin/curl';
const PYTHON = '/usr/bin/python3';
const ROOT = join(import.meta.dirname, '..', '..');
const TOKEN_HEADER = 'X-aws-ec2-metadata-token';
const TTL_HEADER = 'X-aws-ec2-metadata-token-ttl-seconds';
const CREDS = '/latest/meta-data/iam/security-credentials/';
const hasBotocore =
  existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import botocore.session'], { timeout: 20_000 }).status === 0;
/** setpriv runs a command as another uid (root only): another user on the host. */
const canSwitchUser = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');

let dir: string;
let emulator: Emulator;
const guards: WiredGuard[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imdsg-ledger-it-'));
  emulator = createEmulator({ settings: { tokens: 'required' } });
  await emulator.start();
});
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
});
afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  wired: WiredGuard;
  url: string;
  events: GuardEvent[];
  logs: string[];
  clock: { now: number };
}

async function start(guard: Record<string, unknown> = {}, clock?: { now: number }): Promise<Started> {
  const events: GuardEvent[] = [];
  const logs: string[] = [];
  const config = parseConfig({
    guard: {
      listen: ['127.0.0.1:0'],
      upstream: emulator.url,
      attribution: { timeoutMs: 2000 },
      ...guard,
    },
    alerts: { quiet: true },
  });
  const c = clock ?? { now: 0 };
  const wired = await wireGuard({
    config,
    stdout: { write: () => true },
    log: (m) => logs.push(m),
    hostname: 'ledger-host',
    extraRecorders: [{ record: (e) => void events.push(e), close: async () => {} }],
    ...(clock ? { now: () => c.now } : {}),
  });
  guards.push(wired);
  await wired.guard.start();
  return { wired, url: wired.guard.url, events, logs, clock: c };
}

async function curl(args: string[]): Promise<string> {
  const { stdout } = await run(CURL, ['-sS', '--max-time', '10', ...args], { timeout: 20_000 });
  return stdout;
}

const putToken = (url: string, ttl = 21600) =>
  curl(['-X', 'PUT', '-H', `${TTL_HEADER}: ${ttl}`, `${url}/latest/api/token`]);
const getWith = (url: string, token: string, path = CREDS) =>
  curl(['-H', `${TOKEN_HEADER}: ${token}`, `${url}${path}`]);

async function eventsOf(s: Started, n: number): Promise<GuardEvent[]> {
  await waitFor(() => s.events.length >= n, `${n} events`);
  return s.events;
}

describe('every token-bearing event says what the token is', { timeout: 60_000 }, () => {
  it('a shell script: TOKEN=$(curl -X PUT) then curl with it: issued-here, no alert, the token never written', async () => {
    const s = await start();
    const script = `T=$(${CURL} -sS -X PUT -H "${TTL_HEADER}: 600" ${s.url}/latest/api/token) && ${CURL} -sS -o /dev/null -w "%{http_code}" -H "${TOKEN_HEADER}: $T" ${s.url}${CREDS}`;
    const { stdout } = await run('/bin/sh', ['-c', script], { timeout: 20_000 });
    expect(stdout).toBe('200');
    const [put, get] = await eventsOf(s, 2);
    expect(put?.request.version).toBe('token');
    expect(put?.token).toEqual({ status: 'issued-here', issued: true, ttlSeconds: 600 });
    expect(get?.request.version).toBe('v2');
    expect(get?.token).toMatchObject({ status: 'issued-here' });
    expect(get?.alert).toBe(false);
    expect(get?.caller?.exe).toBe(CURL);
  });

  it.each([
    ['flag', 401, 'forwarded', true],
    ['allow', 401, 'forwarded', false],
    ['deny', 401, 'refused', true],
  ] as const)(
    'a bogus token with unknownToken=%s: status %i, %s, alert %s',
    async (mode, status, action, alert) => {
      const s = await start({ unknownToken: mode });
      const before = emulator.requests.length;
      const bogus = 'AQAEAForgedTokenThatThisGuardNeverIssued0000000000000000==';
      const code = await curl([
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-H',
        `${TOKEN_HEADER}: ${bogus}`,
        `${s.url}${CREDS}`,
      ]);
      expect(Number(code)).toBe(status);
      const [e] = await eventsOf(s, 1);
      expect(e?.token?.status).toBe('unknown');
      expect(e?.action).toBe(action);
      expect(e?.alert).toBe(alert);
      // flag keeps the policy's rule and says why in the reason; deny is the unknown-token rule
      expect(e?.rule).toBe(mode === 'deny' ? 'unknown-token' : 'imdsv2');
      if (mode === 'flag') expect(e?.reason).toMatch(/flagged: the token was not issued through this guard/);
      // deny: nothing reached the service; otherwise the service judged the token (401)
      expect(emulator.requests.length - before).toBe(mode === 'deny' ? 0 : 1);
      expect(JSON.stringify(e)).not.toContain(bogus.slice(5, 25));
    },
  );

  it('an unknown token in monitor mode with unknownToken=deny is flagged and forwarded', async () => {
    const s = await start({ mode: 'monitor', unknownToken: 'deny' });
    await curl([
      '-o',
      '/dev/null',
      '-H',
      `${TOKEN_HEADER}: AQAEAnotIssuedHere000000000000`,
      `${s.url}${CREDS}`,
    ]);
    const [e] = await eventsOf(s, 1);
    expect(e).toMatchObject({
      action: 'flagged',
      rule: 'unknown-token',
      alert: true,
      token: { status: 'unknown' },
    });
  });

  it('a token past the TTL the service answered is expired (the guard clock)', async () => {
    const clock = { now: Date.now() };
    const s = await start({}, clock);
    const token = await putToken(s.url, 60);
    clock.now += 61_000;
    await getWith(s.url, token);
    const [, e] = await eventsOf(s, 2);
    expect(e?.token?.status).toBe('expired');
    expect(e?.alert).toBe(false);
  });

  it('the AWS SDK for JavaScript v3 gets credentials: its token PUT and GETs are issued-here, no alert', async () => {
    const s = await start();
    const code = `import { fromInstanceMetadata } from '@aws-sdk/credential-providers';
const c = await fromInstanceMetadata({ timeout: 5000, maxRetries: 0 })();
console.log(c.accessKeyId.startsWith('ASIA') ? 'ok' : 'no');`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, AWS_EC2_METADATA_SERVICE_ENDPOINT: `${s.url}/` },
      timeout: 30_000,
    });
    expect(stdout.trim()).toBe('ok');
    const events = await eventsOf(s, 3);
    expect(events[0]?.token).toMatchObject({ status: 'issued-here', issued: true });
    for (const e of events.slice(1)) expect(e.token?.status, JSON.stringify(e)).toBe('issued-here');
    expect(events.filter((e) => e.alert)).toEqual([]);
  });

  it.skipIf(!hasBotocore)(
    'botocore gets credentials: its token PUT and GETs are issued-here, no alert',
    async () => {
      const s = await start();
      writeFileSync(join(dir, 'empty'), '');
      const { stdout } = await run(
        PYTHON,
        [
          '-c',
          'import botocore.session\nc = botocore.session.get_session().get_credentials()\nprint(c.method)',
        ],
        {
          env: {
            PATH: '/usr/bin:/bin',
            HOME: dir,
            AWS_CONFIG_FILE: join(dir, 'empty'),
            AWS_SHARED_CREDENTIALS_FILE: join(dir, 'empty'),
            AWS_EC2_METADATA_SERVICE_ENDPOINT: `${s.url}/`,
          },
          timeout: 30_000,
        },
      );
      expect(stdout.trim()).toBe('iam-role');
      const events = await eventsOf(s, 3);
      expect(events[0]?.token).toMatchObject({ status: 'issued-here', issued: true, ttlSeconds: 21600 });
      for (const e of events.slice(1)) expect(e.token?.status, JSON.stringify(e)).toBe('issued-here');
      expect(events.filter((e) => e.alert)).toEqual([]);
    },
  );
});

describe('a token used by another caller raises an alert (token theft inside the host)', {
  timeout: 60_000,
}, () => {
  it('another process, unrelated to the one it was issued to (reparented to init), is other-caller', async () => {
    const s = await start();
    const token = await putToken(s.url);
    await eventsOf(s, 1);
    // a process whose parent left (as a dropper's is): reparented, unrelated to this test's curl
    const out = join(dir, 'orphan.out');
    await run(
      '/bin/sh',
      [
        '-c',
        `(${CURL} -sS -o /dev/null -w "%{http_code}" -H "${TOKEN_HEADER}: $T" ${s.url}${CREDS} > ${out} &)`,
      ],
      { env: { T: token }, timeout: 20_000 },
    );
    const [, e] = await eventsOf(s, 2);
    expect(readFileSync(out, 'utf8')).toBe('200'); // alert, not refusal: the service answered
    expect(e?.token?.status, JSON.stringify(e?.caller)).toBe('other-caller');
    expect(e?.alert).toBe(true);
    expect(e?.rule).toBe('token-other-caller');
    expect(e?.reason).toMatch(/token theft/);
    expect(e?.token?.issuedTo?.exe).toBe(CURL);
    expect(JSON.stringify(e)).not.toContain(token.slice(0, 12));
  });

  it.skipIf(!canSwitchUser)('another user (uid 65534) using root’s token is other-caller', async () => {
    const s = await start();
    const token = await putToken(s.url);
    await run(
      '/usr/bin/setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        CURL,
        '-sS',
        '-o',
        '/dev/null',
        '-H',
        `${TOKEN_HEADER}: ${token}`,
        `${s.url}${CREDS}`,
      ],
      { timeout: 20_000 },
    );
    const [, e] = await eventsOf(s, 2);
    expect(e?.caller?.uid).toBe(65534);
    expect(e?.token).toMatchObject({ status: 'other-caller', issuedTo: { uid: 0 } });
    expect(e?.token?.why).toMatch(/uid 65534 used a token issued to uid 0/);
    expect(e?.alert).toBe(true);
  });

  it('the process that asked uses it again: issued-here (the control)', async () => {
    const s = await start();
    const code = `const u = process.argv[1];
const t = await (await fetch(u + '/latest/api/token', { method: 'PUT', headers: { '${TTL_HEADER}': '600' } })).text();
const r = await fetch(u + '${CREDS}', { headers: { '${TOKEN_HEADER}': t } });
console.log(r.status);`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code, s.url], {
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe('200');
    const [, e] = await eventsOf(s, 2);
    expect(e?.token?.status).toBe('issued-here');
    expect(e?.alert).toBe(false);
  });
});

describe('the ledger survives a restart', { timeout: 60_000 }, () => {
  it('a token issued before the restart is issued-here after it; one issued to another process still alerts', async () => {
    const stateDir = join(dir, 'state-restart');
    const first = await start({ stateDir });
    const token = await putToken(first.url);
    await eventsOf(first, 1);
    await first.wired.close();
    guards.splice(guards.indexOf(first.wired), 1);
    expect(readFileSync(join(stateDir, LEDGER_FILE), 'utf8')).not.toContain(token.slice(0, 12));

    const second = await start({ stateDir });
    // the same token from a shell that is no relative of the curl that asked: still known, and theft
    await run(
      '/bin/sh',
      ['-c', `(${CURL} -sS -o /dev/null -H "${TOKEN_HEADER}: $T" ${second.url}${CREDS} &)`],
      {
        env: { T: token },
        timeout: 20_000,
      },
    );
    const [e] = await eventsOf(second, 1);
    expect(e?.token?.status).toBe('other-caller');
    expect(second.logs.filter((l) => l.includes('token ledger'))).toEqual([]);

    // and without the state directory, the same token is unknown (the control)
    const third = await start({});
    await getWith(third.url, token);
    const [u] = await eventsOf(third, 1);
    expect(u?.token?.status).toBe('unknown');
  });

  it('a corrupt ledger file: a clear warning, an empty ledger, and the guard serves', async () => {
    const stateDir = join(dir, 'state-corrupt');
    const first = await start({ stateDir });
    await putToken(first.url);
    await eventsOf(first, 1);
    await first.wired.close();
    guards.splice(guards.indexOf(first.wired), 1);
    writeFileSync(join(stateDir, LEDGER_FILE), '{"v":1,"keyId":"x","entr');
    const s = await start({ stateDir });
    expect(s.logs.join('\n')).toMatch(
      /token ledger: .*token-ledger\.json is unusable: not JSON .*starting empty/,
    );
    const token = await putToken(s.url);
    await getWith(s.url, token);
    const [, e] = await eventsOf(s, 2);
    expect(e?.token?.status).toBe('issued-here');
  });
});
