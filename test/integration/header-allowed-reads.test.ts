import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { toAlert } from '../../src/guard/alerts/alert.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import type { HostReportDocument } from '../../src/report/html/host-data.js';
import { runInProcess } from '../support/cli.js';
import { guardConfig, MemoryRecorder } from '../support/guard-helpers.js';

/**
 * Tokenless (IMDSv1) reads of credentials or user-data allowed on a header alone (a User-Agent prefix
 * of guard.allowUserAgents, Metadata-Flavor: Amazon) raise an alert (severity warning) unless
 * guard.alertHeaderAllowedReads is off, and the host report lists them. Real clients (curl with a
 * spoofed User-Agent, botocore falling back to IMDSv1) through a real guard in front of the emulator.
 */

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const hasCurl = existsSync('/usr/bin/curl');
const hasBotocore =
  existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import botocore.session'], { timeout: 20_000 }).status === 0;

let emulator: Emulator;
let home: string;
const guards: Guard[] = [];

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'imdsg-header-reads-'));
  emulator = createEmulator({ settings: { tokens: 'optional' }, listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
});
afterAll(async () => {
  await emulator.close();
  rmSync(home, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
});

async function startGuard(guard: Record<string, unknown> = {}) {
  const recorder = new MemoryRecorder();
  const g = createGuard({
    config: guardConfig({ upstream: emulator.url, attribution: { enabled: false }, ...guard }),
    recorders: [recorder],
    hostname: 'test-host',
  });
  guards.push(g);
  await g.start();
  return { g, recorder };
}

const curl = (url: string, headers: string[]) =>
  run(
    '/usr/bin/curl',
    ['-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', ...headers.flatMap((h) => ['-H', h]), url],
    {
      timeout: 20_000,
    },
  ).then((r) => Number(r.stdout));

describe.skipIf(!hasCurl)('curl with a spoofed AWS CLI User-Agent', { timeout: 40_000 }, () => {
  it('reads the role credentials and user-data: forwarded, alert true, severity warning; instance-id stays quiet', async () => {
    const { g, recorder } = await startGuard();
    const ua = 'User-Agent: aws-cli/2.15.0 Python/3.11 (spoofed by curl)';
    const role = (
      await run(
        '/usr/bin/curl',
        ['-s', '-m', '10', '-H', ua, `${g.url}/latest/meta-data/iam/security-credentials/`],
        { timeout: 20_000 },
      )
    ).stdout.trim();
    expect(role.length).toBeGreaterThan(0);
    expect(await curl(`${g.url}/latest/meta-data/iam/security-credentials/${role}`, [ua])).toBe(200);
    expect(await curl(`${g.url}/latest/user-data`, ['Metadata-Flavor: Amazon'])).toBe(200);
    expect(await curl(`${g.url}/latest/meta-data/instance-id`, [ua])).toBe(200);
    const events = await recorder.waitFor(4);
    const [listing, creds, userData, instanceId] = events;
    for (const e of [listing, creds, userData]) {
      expect(e).toMatchObject({ decision: 'allow', action: 'forwarded', alert: true });
      expect(e?.reason).toContain('a credentials or user-data read allowed on a header any process can send');
      expect(toAlert(e!).severity).toBe('warning');
    }
    expect(creds?.rule).toBe('ua-allowlist');
    expect(userData?.rule).toBe('metadata-flavor');
    expect(instanceId).toMatchObject({ decision: 'allow', rule: 'ua-allowlist', alert: false });
    expect(toAlert(instanceId!).severity).toBe('info');

    // the host report lists the three reads, and not the instance-id read
    const file = join(home, 'events.jsonl');
    writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const r = await runInProcess(['report', '--events', file, '--format', 'json', '--since', '1h']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as HostReportDocument;
    expect(doc.totals.headerReads).toBe(3);
    expect(doc.headerReads.rows.map((x) => x.path).sort()).toEqual(
      [
        '/latest/meta-data/iam/security-credentials/',
        `/latest/meta-data/iam/security-credentials/${role}`,
        '/latest/user-data',
      ].sort(),
    );
  });

  it('guard.alertHeaderAllowedReads: false turns the alert off (still forwarded, still listed by the report)', async () => {
    const { g, recorder } = await startGuard({ alertHeaderAllowedReads: false });
    expect(
      await curl(`${g.url}/latest/meta-data/iam/security-credentials/`, ['User-Agent: aws-cli/2.15.0']),
    ).toBe(200);
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({ decision: 'allow', rule: 'ua-allowlist', alert: false });
  });

  it('the same read with the secret header is no header-allowed read (no alert)', async () => {
    const secret = 'Q7f2kP9xVw3mZr8T';
    const { g, recorder } = await startGuard({ authSecret: secret });
    expect(
      await curl(`${g.url}/latest/meta-data/iam/security-credentials/`, [
        'User-Agent: aws-cli/2.15.0',
        `X-Meta-Auth: ${secret}`,
      ]),
    ).toBe(200);
    const [e] = await recorder.waitFor(1);
    expect(e, JSON.stringify(e)).toMatchObject({ decision: 'allow', rule: 'auth-header', alert: false });
  });
});

const BOTOCORE = `
import botocore.session, json
c = botocore.session.get_session().get_credentials()
print(json.dumps({"method": c.method if c else None}))
`;

describe.skipIf(!hasBotocore)('botocore falling back to IMDSv1', { timeout: 60_000 }, () => {
  it('its tokenless credential reads, allowed by its Botocore/ User-Agent, alert', async () => {
    // the token PUT refused (as by an old proxy), so botocore falls back to IMDSv1
    const { g, recorder } = await startGuard({
      rules: [{ name: 'no-token-put', action: 'deny', version: 'token' }],
    });
    const { stdout } = await run(PYTHON, ['-c', BOTOCORE], {
      timeout: 40_000,
      env: {
        PATH: '/usr/bin:/bin',
        HOME: home,
        AWS_CONFIG_FILE: join(home, 'none'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
        AWS_EC2_METADATA_SERVICE_ENDPOINT: `${g.url}/`,
      },
    });
    expect(JSON.parse(stdout)).toEqual({ method: 'iam-role' });
    const credReads = recorder.events.filter(
      (e) => e.request.version === 'v1' && e.request.path.includes('/iam/security-credentials/'),
    );
    expect(credReads.length).toBeGreaterThanOrEqual(2);
    for (const e of credReads) {
      expect(e.request.userAgent).toMatch(/^Botocore\//);
      expect(e).toMatchObject({ decision: 'allow', rule: 'ua-allowlist', alert: true });
    }
  });
});
