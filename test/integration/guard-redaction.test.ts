import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { type WiredGuard, wireGuard } from '../../src/guard/wire.js';
import { leaks as leaksOf } from '../support/leaks.js';
import { waitFor } from '../support/wait.js';

/**
 * Redaction by value with real processes and real attribution: the guard's secret
 * and a token it issued, on command lines in several syntaxes (curl -H, a multi-line python3 -c
 * with a dict, PowerShell and Ruby hashes, Go, env-style assignments, a bare value, a neutral
 * variable name), never reach anything the guard writes: the JSON-lines file, stdout, the SQLite
 * store, the alert sink, its log lines. Checked as "no 12-character piece of either, anywhere".
 */

const run = promisify(execFile);
const CURL = '/usr/bin/curl';
const PYTHON = '/usr/bin/python3';
const SECRET = 'Wq7-guardPass-4c1e9b0d2f8a';
const SECRET_HEADER = 'X-Guard-Pass';
const TOKEN_HEADER = 'X-aws-ec2-metadata-token';

let dir: string;
let emulator: Emulator;
let wired: WiredGuard;
let url = '';
let token = '';
const events: GuardEvent[] = [];
const logs: string[] = [];
let stdout = '';
let files: Array<[string, string]> = [];

function leaks(text: string): string[] {
  return leaksOf(text, { secret: SECRET, token: token });
}

/** One python3 program holding the values in several languages' syntax; it sends both headers. */
const python = () => `import urllib.request
# PowerShell: Invoke-RestMethod -Headers @{"${TOKEN_HEADER}" = "${token}"; "${SECRET_HEADER}"="${SECRET}"}
# Ruby: h = {"${TOKEN_HEADER}" => "${token}", :"${SECRET_HEADER}" => '${SECRET}'}
# Go: req.Header.Set("${TOKEN_HEADER}", "${token}")
# shell: IMDS_T=${token} GP="${SECRET}"
h = {
    "${TOKEN_HEADER}": "${token}",
    "${SECRET_HEADER}": "${SECRET}",
}
r = urllib.request.urlopen(urllib.request.Request("${url}/latest/meta-data/", headers=h), timeout=10)
print(r.status)
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imdsg-redact-it-'));
  emulator = createEmulator({ settings: { tokens: 'optional' } });
  await emulator.start();
  const config = parseConfig({
    guard: {
      listen: ['127.0.0.1:0'],
      upstream: emulator.url,
      authHeader: SECRET_HEADER.toLowerCase(),
      authSecret: SECRET,
      // every request alerts: the alert sink sees every caller
      unknownToken: 'flag',
      attribution: { timeoutMs: 2000 },
      rules: [{ action: 'allow', path: '/*', alert: true, name: 'all-alert' }],
    },
    events: { file: join(dir, 'events.jsonl'), db: join(dir, 'events.db'), stdout: true },
    alerts: {
      quiet: false,
      sinks: [{ type: 'file', path: join(dir, 'alerts.jsonl') }],
      noise: { perKey: 10_000, globalLimit: 1_000_000 },
    },
  });
  wired = await wireGuard({
    config,
    stdout: {
      write: (s: string) => {
        stdout += s;
        return true;
      },
    },
    log: (m) => logs.push(m),
    hostname: 'redaction-it',
    extraRecorders: [{ record: (e) => void events.push(e), close: async () => {} }],
  });
  await wired.guard.start();
  url = wired.guard.url;
  token = (
    await run(
      CURL,
      ['-sS', '-X', 'PUT', '-H', `${TOKEN_HEADER}-ttl-seconds: 600`, `${url}/latest/api/token`],
      {
        timeout: 20_000,
      },
    )
  ).stdout;
  expect(token).toMatch(/^AQAEA/);

  const clients: Array<[string, string[], Record<string, string>?]> = [
    [
      CURL,
      [
        '-sS',
        '-o',
        '/dev/null',
        '-H',
        `${SECRET_HEADER}: ${SECRET}`,
        `${url}/latest/meta-data/?case=curl-secret`,
      ],
    ],
    [
      CURL,
      ['-sS', '-o', '/dev/null', `-H${SECRET_HEADER}:${SECRET}`, `${url}/latest/meta-data/?case=curl-joined`],
    ],
    [
      CURL,
      [
        '-sS',
        '-o',
        '/dev/null',
        '-H',
        `${TOKEN_HEADER}: ${token}`,
        `${url}/latest/meta-data/`,
        '--url-query',
        `v=${token}`,
      ],
    ],
    [PYTHON, ['-c', python()]],
    [
      process.execPath,
      [
        '-e',
        `fetch(process.argv[1] + '/latest/meta-data/', { headers: { '${TOKEN_HEADER}': process.argv[2] } }).then((r) => console.log(r.status))`,
        url,
        token,
        `--pass=${SECRET}`,
      ],
    ],
  ];
  for (const [cmd, args] of clients) await run(cmd, args, { timeout: 20_000 });
  await waitFor(() => events.length >= clients.length + 1, 'the events');
  await wired.close();
  files = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('latin1')]);
}, 90_000);

afterAll(async () => {
  await wired?.close();
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the secret and the tokens the guard issued are never written', () => {
  it('each client was attributed with its command line (the case means something)', () => {
    const exes = events.map((e) => e.caller?.exe ?? '');
    expect(exes).toEqual(expect.arrayContaining([CURL, process.execPath]));
    expect(exes.some((x) => x.startsWith(PYTHON))).toBe(true);
    expect(events.filter((e) => (e.caller?.cmdline?.length ?? 0) > 1).length).toBeGreaterThanOrEqual(5);
  });

  it('no event holds a piece of either', () => {
    for (const e of events) expect(leaks(JSON.stringify(e)), JSON.stringify(e.caller?.cmdline)).toEqual([]);
  });

  it('the JSON lines, the store, the alert sink, stdout and the logs hold neither', () => {
    expect(files.map(([f]) => f)).toEqual(
      expect.arrayContaining(['events.jsonl', 'events.db', 'alerts.jsonl']),
    );
    for (const [name, text] of files) expect(leaks(text), name).toEqual([]);
    expect(stdout.length).toBeGreaterThan(0);
    expect(leaks(stdout), 'stdout').toEqual([]);
    expect(leaks(logs.join('\n')), 'logs').toEqual([]);
  });

  it('what is not secret stays readable', () => {
    const py = events.find((e) => e.caller?.exe?.startsWith(PYTHON));
    const code = py?.caller?.cmdline?.[2] ?? '';
    expect(code).toContain('import urllib.request');
    expect(code).toContain('[redacted]');
    expect(code).toContain(`@{"${TOKEN_HEADER}" = "[redacted]"; "${SECRET_HEADER}"="[redacted]"}`);
  });
});
