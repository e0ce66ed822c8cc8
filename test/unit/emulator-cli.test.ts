import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture, type RunResult, runInProcess } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** Runs `imdsguard emulate ARGS --json` in-process until its listening line; stop() ends it. */
async function emulate(args: string[]): Promise<{
  listening: { urls: string[]; env: Record<string, string> } & Record<string, unknown>;
  stop: (signal: string) => Promise<RunResult>;
}> {
  let end!: (s: string) => void;
  const shutdown = new Promise<string>((resolve) => {
    end = resolve;
  });
  const stdout = capture();
  const pending = runInProcess(['emulate', '--listen', '127.0.0.1:0', '--json', ...args], {
    shutdown,
    stdout,
  });
  try {
    await waitFor(() => stdout.text.includes('"listening"'), 'the listening line');
  } catch (err) {
    end('test');
    await pending;
    throw err;
  }
  return {
    listening: JSON.parse(stdout.text.split('\n')[0] as string),
    stop: (signal) => {
      end(signal);
      return pending;
    },
  };
}

describe('emulate command (in-process)', () => {
  it('documents its options and examples in --help', async () => {
    const r = await runInProcess(['emulate', '--help']);
    expect(r.code).toBe(0);
    for (const opt of [
      '--listen',
      '--tokens',
      '--endpoint',
      '--hop-limit',
      '--instance',
      '--flavor',
      '--admin',
      '--json',
    ]) {
      expect(r.stdout).toContain(opt);
    }
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('imdsguard emulate --tokens required');
  });

  it('starts, reports its address as JSON, and stops on shutdown', async () => {
    const e = await emulate(['--flavor', 'gcp']);
    const r = await e.stop('test');
    expect(r.code).toBe(0);
    const [listening, stopped] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(listening).toMatchObject({ event: 'listening', flavor: 'gcp' });
    expect(listening.urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stopped).toMatchObject({ event: 'stopped', signal: 'test' });
    expect(r.stderr).not.toContain('AWS_EC2_METADATA_SERVICE_ENDPOINT');
  });

  // Each flavour names the variables its own clients read, and a request built from them the way
  // those clients build it reaches the emulator's instance id.
  it.each([
    ['aws', 'AWS_EC2_METADATA_SERVICE_ENDPOINT', (v: string) => `${v}latest/meta-data/instance-id`, {}],
    [
      'gcp',
      'GCE_METADATA_HOST',
      (v: string) => `http://${v}/computeMetadata/v1/instance/id`,
      { 'Metadata-Flavor': 'Google' },
    ],
    [
      'gcp',
      'GCE_METADATA_IP',
      (v: string) => `http://${v}/computeMetadata/v1/instance/id`,
      { 'Metadata-Flavor': 'Google' },
    ],
    [
      'azure',
      'AZURE_POD_IDENTITY_AUTHORITY_HOST',
      (v: string) => `${v}/metadata/instance/compute/vmId?api-version=2021-02-01&format=text`,
      { Metadata: 'true' },
    ],
    ['oci', 'OCI_METADATA_BASE_URL', (v: string) => `${v}/instance/id`, { Authorization: 'Bearer Oracle' }],
  ] as const)('%s prints %s, which leads its clients to the emulator', async (flavor, name, url, headers) => {
    const e = await emulate(['--flavor', flavor]);
    let r: RunResult;
    try {
      const value = e.listening.env[name] as string;
      expect(value).toContain(new URL(e.listening.urls[0] as string).host);
      const res = await fetch(url(value), { headers });
      expect(res.status).toBe(200);
      expect((await res.text()).length).toBeGreaterThan(0);
    } finally {
      r = await e.stop('test');
    }
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`export ${name}=`);
  });

  it.each(['digitalocean', 'alibaba'])('%s names no variable and says what to fetch', async (flavor) => {
    const e = await emulate(['--flavor', flavor]);
    const r = await e.stop('test');
    expect(e.listening.env).toEqual({});
    expect(r.stderr).toContain(`curl ${e.listening.urls[0]}/`);
    expect(r.stderr).not.toContain('export ');
  });

  it.each([
    [['--tokens', 'sometimes'], '--tokens: expected one of optional, required'],
    [['--endpoint', 'off'], '--endpoint: expected one of enabled, disabled'],
    [['--hop-limit', '65'], '--hop-limit: 65 is out of range 1..64'],
    [['--hop-limit', 'two'], '--hop-limit: expected an integer'],
    [['--flavor', 'ibm'], '--flavor: expected one of aws, gcp, azure, digitalocean, oci, alibaba'],
    [['--listen', 'localhost'], '--listen: expected HOST:PORT'],
    [['--admin', '0.0.0.0:0'], '--admin: 0.0.0.0 is not a loopback address'],
    [['--frobnicate'], "unknown option '--frobnicate'"],
  ])('refuses %j with a usage error (exit 2)', async (args, message) => {
    const r = await runInProcess(['emulate', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('IMDSGUARD_E_USAGE');
  });

  it('refuses a bad instance file naming the field (exit 2)', async () => {
    const r = await runInProcess([
      'emulate',
      '--listen',
      '127.0.0.1:0',
      '--instance',
      join(FIXTURES, 'instance-bad-role.json'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('iam.role: must be a string, got a number');
    expect(r.stderr).toContain('IMDSGUARD_E_INSTANCE_FILE');
  });
});
