import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator, type EmulatorSettings } from '../../src/emulator/index.js';
import { getToken, raw, TOKEN } from '../support/emulator-http.js';

/**
 * Real clients against the emulator: the AWS SDK for JavaScript v3, Debian's botocore and awscli,
 * and curl. They run as child processes (asynchronously: the emulator shares this event loop).
 * Credentials are compared by hash and never printed.
 */

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const AWS = '/usr/bin/aws';
const CURL = '/usr/bin/curl';
const ROOT = join(import.meta.dirname, '..', '..');

function available(what: string, check: () => boolean): boolean {
  const ok = check();
  if (!ok) console.warn(`skipping ${what} tests: not installed (run ./scripts/install-system-deps)`);
  return ok;
}
const hasBotocore = available(
  'botocore',
  () =>
    existsSync(PYTHON) &&
    spawnSync(PYTHON, ['-c', 'import botocore.session'], { timeout: 20_000 }).status === 0,
);
const hasAwsCli = available('awscli', () => existsSync(AWS));
const hasCurl = available('curl', () => existsSync(CURL));

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let home: string;
let emulator: Emulator | undefined;

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'imdsguard-clients-'));
  writeFileSync(join(home, 'config'), '');
  writeFileSync(join(home, 'credentials'), '');
});
afterAll(() => rmSync(home, { recursive: true, force: true }));
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function start(settings: Partial<EmulatorSettings>): Promise<Emulator> {
  emulator = createEmulator({ settings });
  await emulator.start();
  return emulator;
}

/** An environment with no AWS credentials or config of the host: only the emulator can answer. */
function isolatedEnv(e: Emulator, path = '/usr/bin:/bin'): Record<string, string> {
  return {
    PATH: path,
    HOME: home,
    AWS_CONFIG_FILE: join(home, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
    AWS_EC2_METADATA_SERVICE_ENDPOINT: `${e.url}/`,
    AWS_PAGER: '',
  };
}

/** sha256 of the access key id the emulator serves right now (read over IMDSv2). */
async function servedKeyHash(e: Emulator): Promise<string> {
  const token = await getToken(e.url, 60);
  const r = await raw(`${e.url}/latest/meta-data/iam/security-credentials/imdsguard-demo-role`, {
    headers: { [TOKEN]: token },
  });
  return sha((JSON.parse(r.body) as { AccessKeyId: string }).AccessKeyId);
}

/** Every request a client made went over IMDSv2: one token PUT first, then only token-bearing GETs. */
function expectOnlyImdsv2(e: Emulator, userAgentPrefix?: string): void {
  const log = e.requests.filter(
    (r) => userAgentPrefix === undefined || r.userAgent?.startsWith(userAgentPrefix),
  );
  expect(log.length).toBeGreaterThanOrEqual(3);
  expect(log[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token', status: 200, tokenPut: true });
  const gets = log.filter((r) => !r.tokenPut);
  expect(gets.length).toBeGreaterThanOrEqual(2);
  expect(gets.filter((r) => !r.withToken)).toEqual([]);
  expect(gets.every((r) => r.status === 200)).toBe(true);
  expect(gets.map((r) => r.path)).toContain('/latest/meta-data/iam/security-credentials/imdsguard-demo-role');
}

const JS_SDK = `
import { createHash } from 'node:crypto';
import { fromInstanceMetadata } from '@aws-sdk/credential-providers';
const c = await fromInstanceMetadata({ timeout: 3000, maxRetries: 0 })();
console.log(JSON.stringify({
  keyHash: createHash('sha256').update(c.accessKeyId).digest('hex'),
  keyShape: /^ASIA[A-Z2-7]{16}$/.test(c.accessKeyId),
  hasSecret: typeof c.secretAccessKey === 'string' && c.secretAccessKey.length === 40,
  hasSession: typeof c.sessionToken === 'string' && c.sessionToken.length > 100,
  expiresInMs: new Date(c.expiration).getTime() - Date.now(),
}));
`;

// Each test runs a client process, each run bounded below this timeout.
describe('AWS SDK for JavaScript v3 (fromInstanceMetadata)', { timeout: 45_000 }, () => {
  it.each(['optional', 'required'] as const)(
    'gets credentials with tokens=%s, over IMDSv2',
    async (tokens) => {
      const e = await start({ tokens });
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', JS_SDK], {
        cwd: ROOT,
        env: isolatedEnv(e, process.env['PATH']),
        timeout: 20_000,
      });
      const out = JSON.parse(stdout) as Record<string, unknown>;
      expect(out).toMatchObject({ keyShape: true, hasSecret: true, hasSession: true });
      expect(out['expiresInMs']).toBeGreaterThan(5 * 3600 * 1000);
      expect(out['keyHash']).toBe(await servedKeyHash(e));
      expectOnlyImdsv2(e);
    },
  );
});

const BOTOCORE = `
import botocore.session, hashlib, json
c = botocore.session.get_session().get_credentials()
f = c.get_frozen_credentials()
print(json.dumps({"method": c.method, "keyHash": hashlib.sha256(f.access_key.encode()).hexdigest(), "hasToken": bool(f.token)}))
`;

describe.skipIf(!hasBotocore)('Debian python3-botocore', { timeout: 45_000 }, () => {
  it.each(['required', 'optional'] as const)(
    'gets instance-role credentials over IMDSv2 with tokens=%s (token PUT, no v1 fallback)',
    async (tokens) => {
      const e = await start({ tokens });
      const { stdout } = await run(PYTHON, ['-c', BOTOCORE], { env: isolatedEnv(e), timeout: 30_000 });
      const out = JSON.parse(stdout) as Record<string, unknown>;
      expect(out).toMatchObject({ method: 'iam-role', hasToken: true });
      expect(out['keyHash']).toBe(await servedKeyHash(e));
      expectOnlyImdsv2(e, 'Botocore/');
    },
  );
});

describe.skipIf(!hasAwsCli)('Debian awscli', { timeout: 90_000 }, () => {
  it('aws configure list shows the instance-role credentials', async () => {
    const e = await start({ tokens: 'required' });
    const { stdout } = await run(AWS, ['configure', 'list'], { env: isolatedEnv(e), timeout: 60_000 });
    // Only the masked last four characters are shown; do not print the output itself.
    expect(/access_key\s+\*+[A-Z2-7]{4}\s+iam-role/.test(stdout)).toBe(true);
    expect(/secret_key\s+\*+\S{4}\s+iam-role/.test(stdout)).toBe(true);
    expectOnlyImdsv2(e, 'aws-cli/');
  });
});

describe.skipIf(!hasCurl)('curl', { timeout: 45_000 }, () => {
  it('a tokenless request gets 401 with tokens=required; with a token it gets 200', async () => {
    const e = await start({ tokens: 'required' });
    const code = async (args: string[]) =>
      (await run(CURL, ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args], { timeout: 10_000 })).stdout;
    expect(await code([`${e.url}/latest/meta-data/`])).toBe('401');
    const { stdout: token } = await run(
      CURL,
      ['-s', '-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60', `${e.url}/latest/api/token`],
      { timeout: 10_000 },
    );
    expect(await code(['-H', `X-aws-ec2-metadata-token: ${token}`, `${e.url}/latest/meta-data/`])).toBe(
      '200',
    );
    expect(e.requests.map((r) => [r.status, r.userAgent?.split('/')[0]])).toEqual([
      [401, 'curl'],
      [200, 'curl'],
      [200, 'curl'],
    ]);
  });
});
