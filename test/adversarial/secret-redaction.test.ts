import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { type WiredGuard, wireGuard } from '../../src/guard/wire.js';
import { tokenPut } from '../support/imds-requests.js';
import { leaks as leaksOf } from '../support/leaks.js';
import { parseResponses, RawConnection } from '../support/raw-http.js';

/**
 * Secrets written to disk through the command line. Real processes (curl,
 * python3, node) call the guard with its secret header or a token it issued; their command lines
 * carry those values in the syntax of several languages (a curl -H, a multi-line python dict, a
 * PowerShell @{...}, a Ruby hash, Go and Node code, shell assignments, bare values, a value cut by
 * the argument-length bound). Real attribution reads their command lines. Whatever the guard writes
 * (JSON-lines events, the SQLite store and its alert spool, the alert sink, its log lines) must
 * never hold the secret or the token, nor a long piece of either.
 */

const SECRET = 'Gu4rdP4ss-7e1c9a5b3d8f0e2a';
const SECRET_HEADER = 'X-Guard-Pass';
const dir = mkdtempSync(join(tmpdir(), 'imdsg-adv-redact-'));
let emulator: Emulator;
let wired: WiredGuard;
let guardUrl = '';
let TOKEN = '';
const logs: string[] = [];
let stdoutText = '';
/** Holds curl on a second URL so it is still alive while attribution reads it. */
let hold: Server;
let holdUrl = '';
const held: Array<() => void> = [];
let holding = true;

/** A node program that makes the request described in IMDS_REQ, then waits for stdin to close. */
const NODE_CLIENT = [
  "const http = require('http');",
  'const r = JSON.parse(process.env.IMDS_REQ);',
  'const q = http.request(r.url, { method: r.method, headers: r.headers }, (res) => { res.resume(); res.on("end", () => console.log("done " + res.statusCode)); });',
  'q.on("error", (e) => console.log("error " + e.message));',
  'q.end();',
  'process.stdin.resume();',
  'process.stdin.on("end", () => process.exit(0));',
].join('\n');

interface Case {
  name: string;
  /** A string only this case's command line contains. */
  marker: string;
  command: () => string;
  args: () => string[];
  env?: () => Record<string, string>;
  /** The case's process waits on stdin (closed once its event is recorded). */
  stdin: boolean;
}

const nodeCase = (
  name: string,
  marker: string,
  extra: () => string[],
  headers: () => Record<string, string>,
): Case => ({
  name,
  marker,
  command: () => process.execPath,
  args: () => ['-e', NODE_CLIENT, '--', `--case=${marker}`, ...extra()],
  env: () => ({
    IMDS_REQ: JSON.stringify({ url: `${guardUrl}/latest/meta-data/`, method: 'GET', headers: headers() }),
  }),
  stdin: true,
});

/** Cases the guard passes today. */
const cases: Case[] = [
  {
    name: 'curl -H with the token (on its next URL) and X-Forwarded-For (refused, alerted)',
    marker: 'c03',
    command: () => 'curl',
    // --next: the token goes to the hold URL only, so the guard sees a tokenless (held) refusal
    args: () => [
      '-sS',
      '-o',
      '/dev/null',
      '-H',
      'X-Forwarded-For: 9.9.9.9',
      `${guardUrl}/latest/meta-data/?c03`,
      '--next',
      '-H',
      `X-aws-ec2-metadata-token: ${TOKEN}`,
      holdUrl,
    ],
    stdin: false,
  },
  {
    name: 'curl --header token:VALUE (no space)',
    marker: 'c04',
    command: () => 'curl',
    args: () => [
      '-sS',
      '-o',
      '/dev/null',
      '--header',
      `X-aws-ec2-metadata-token:${TOKEN}`,
      `${guardUrl}/latest/meta-data/?c04`,
      holdUrl,
    ],
    stdin: false,
  },
  nodeCase(
    'node -e with a headers object in the code',
    'c07',
    () => [
      `fetch(u, { headers: { 'x-aws-ec2-metadata-token': '${TOKEN}', '${SECRET_HEADER.toLowerCase()}': '${SECRET}' } })`,
    ],
    () => ({ 'x-aws-ec2-metadata-token': TOKEN }),
  ),
];
/** Every case the processes run (the open ones are added at the end of the file). */
const ALL: Case[] = [...cases];

const children: ChildProcess[] = [];
let events: GuardEvent[] = [];
let files: Array<[string, Buffer]> = [];

async function eventsFor(marker: string, deadline: number): Promise<GuardEvent[]> {
  for (;;) {
    const found = wiredEvents().filter((e) => (e.caller?.cmdline ?? []).join(' ').includes(marker));
    if (found.length > 0 || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const recorded: GuardEvent[] = [];
function wiredEvents(): GuardEvent[] {
  return recorded;
}

beforeAll(async () => {
  emulator = createEmulator({ settings: { tokens: 'optional' } });
  await emulator.start();
  hold = createServer((_req, res) => {
    if (holding) held.push(() => res.end('ok'));
    else res.end('ok');
  });
  await new Promise<void>((r) => hold.listen(0, '127.0.0.1', r));
  holdUrl = `http://127.0.0.1:${(hold.address() as AddressInfo).port}/hold`;
  const config = parseConfig({
    guard: {
      listen: ['127.0.0.1:0'],
      upstream: emulator.url,
      authHeader: SECRET_HEADER.toLowerCase(),
      authSecret: SECRET,
      attribution: { timeoutMs: 2000 },
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
        stdoutText += s;
        return true;
      },
    },
    log: (m) => logs.push(m),
    hostname: 'redaction-host',
    extraRecorders: [{ record: (e) => void recorded.push(e), close: async () => {} }],
  });
  await wired.guard.start();
  guardUrl = wired.guard.url;
  const u = new URL(guardUrl);
  const c = await RawConnection.open(u.hostname, Number(u.port));
  await c.write(tokenPut());
  await c.until((b) => parseResponses(b).some((r) => r.complete), 10_000, 'a token');
  c.destroy();
  TOKEN = parseResponses(c.received())[0]?.body.toString('latin1') ?? '';
  expect(TOKEN).toMatch(/^AQAEA/);

  // one process at a time, each kept alive until the guard recorded its event
  for (const k of ALL) {
    const child = spawn(k.command(), k.args(), {
      env: { ...process.env, ...(k.env?.() ?? {}) },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.on('error', () => {});
    children.push(child);
    const exited = new Promise((r) => child.on('exit', r));
    await eventsFor(k.marker, Date.now() + 15_000);
    holding = false;
    for (const release of held.splice(0)) release();
    child.stdin?.end();
    await exited;
    holding = true;
  }
  await wired.close();
  events = recorded.slice();
  files = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]);
}, 90_000);

afterAll(async () => {
  for (const ch of children) if (ch.exitCode === null) ch.kill('SIGKILL');
  await wired?.close();
  await emulator?.close();
  await new Promise<void>((r) => (hold ? hold.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

/** The secret, the token, and every piece of either at least 12 characters long. */
function leaks(text: string): string[] {
  return leaksOf(text, { secret: SECRET, token: TOKEN });
}

/** This case's process was attributed, and nothing written about it holds a piece of a secret. */
function expectNoLeak(k: Case): void {
  const mine = events.filter((e) => (e.caller?.cmdline ?? []).join(' ').includes(k.marker));
  // the case is only meaningful if attribution read this process's command line
  expect(
    mine.length,
    `no event named the ${k.marker} process: ${JSON.stringify(events.map((e) => e.caller?.cmdline?.slice(0, 4)))}`,
  ).toBeGreaterThan(0);
  for (const e of mine) expect(leaks(JSON.stringify(e)), JSON.stringify(e.caller?.cmdline)).toEqual([]);
  for (const [name, bytes] of files.filter(([f]) => f.endsWith('.jsonl'))) {
    const text = bytes.toString('latin1');
    for (const line of text.split('\n').filter((l) => l.includes(k.marker))) {
      expect(leaks(line), `${name}: ${line.slice(0, 600)}`).toEqual([]);
    }
  }
}

describe('no secret or token value is written anywhere, whatever the command line syntax', () => {
  it.each(cases.map((k) => [k.name, k] as const))('%s', (_n, k) => {
    expectNoLeak(k);
  });

  it('the store, its alert spool, the alert sink, the JSON lines, stdout and the logs hold neither', () => {
    expect(files.map(([f]) => f)).toEqual(
      expect.arrayContaining(['events.jsonl', 'events.db', 'alerts.jsonl']),
    );
    for (const [name, bytes] of files) expect(leaks(bytes.toString('latin1')), name).toEqual([]);
    expect(leaks(stdoutText), 'stdout').toEqual([]);
    expect(leaks(logs.join('\n')), 'logs').toEqual([]);
  });

  it('a command line is bounded in the event whatever its length', () => {
    for (const e of events) {
      const argv = e.caller?.cmdline ?? [];
      expect(argv.join(' ').length).toBeLessThanOrEqual(16_384);
    }
  });
});

/** Values the name-based redaction misses: redaction by value catches them. */
const OPEN: Case[] = [
  {
    name: 'curl -H "X-Guard-Pass: SECRET" (a custom secret header name)',
    marker: 'c01',
    command: () => 'curl',
    args: () => [
      '-sS',
      '-o',
      '/dev/null',
      '-H',
      `${SECRET_HEADER}: ${SECRET}`,
      `${guardUrl}/latest/meta-data/?c01`,
      holdUrl,
    ],
    stdin: false,
  },
  {
    name: 'curl -HX-Guard-Pass:SECRET (attached option)',
    marker: 'c02',
    command: () => 'curl',
    args: () => [
      '-sS',
      '-o',
      '/dev/null',
      `-H${SECRET_HEADER}:${SECRET}`,
      `${guardUrl}/latest/meta-data/?c02`,
      holdUrl,
    ],
    stdin: false,
  },
  {
    name: 'python3 -c, multi-line, with a dict',
    marker: 'c05',
    command: () => 'python3',
    args: () => [
      '-c',
      [
        'import sys, urllib.request  # c05',
        'saved = {',
        `    'X-aws-ec2-metadata-token': '${TOKEN}',`,
        `    "${SECRET_HEADER}": "${SECRET}",`,
        '}',
        'h = {"X-Forwarded-For": "9.9.9.9"}',
        'try:',
        `    urllib.request.urlopen(urllib.request.Request('${guardUrl}/latest/meta-data/', headers=h))`,
        'except Exception as e:',
        '    print(e)',
        'sys.stdin.read()',
      ].join('\n'),
    ],
    stdin: true,
  },
  {
    name: 'python3 -c, one line, headers=dict(...)',
    marker: 'c06',
    command: () => 'python3',
    args: () => [
      '-c',
      `import sys,urllib.request as u; r=u.Request('${guardUrl}/latest/meta-data/?c06', headers=dict(Auth="x", **{"${SECRET_HEADER}":"${SECRET}"}));\ntry: u.urlopen(r)\nexcept Exception as e: print(e)\nsys.stdin.read()`,
    ],
    stdin: true,
  },
  nodeCase(
    'PowerShell @{...}',
    'c08',
    () => [
      'pwsh',
      '-Command',
      `Invoke-RestMethod -Uri http://169.254.169.254/latest/meta-data/ -Headers @{"X-aws-ec2-metadata-token" = "${TOKEN}"; "${SECRET_HEADER}"="${SECRET}"}`,
    ],
    () => ({}),
  ),
  nodeCase(
    'Ruby hash',
    'c09',
    () => [
      'ruby',
      '-e',
      `require "net/http"; Net::HTTP.get(URI("http://169.254.169.254/latest/meta-data/"), {"X-aws-ec2-metadata-token" => "${TOKEN}", :"${SECRET_HEADER}" => '${SECRET}'})`,
    ],
    () => ({}),
  ),
  nodeCase(
    'Go code in a one-liner',
    'c10',
    () => [
      'go',
      'run',
      `package main; func main() { req.Header.Set("X-aws-ec2-metadata-token", "${TOKEN}"); req.Header.Add("${SECRET_HEADER}", \`${SECRET}\`) }`,
    ],
    () => ({}),
  ),
  nodeCase(
    'shell assignments and exports',
    'c11',
    () => [`IMDS_T=${TOKEN}`, `export GP="${SECRET}"`, `set -- ${SECRET}`, `T='${TOKEN}' curl`],
    () => ({}),
  ),
  nodeCase(
    'bare values as arguments',
    'c12',
    () => [SECRET, TOKEN, `${SECRET},${TOKEN}`],
    () => ({}),
  ),
  nodeCase(
    'JSON in an argument',
    'c13',
    () => [JSON.stringify({ headers: { [SECRET_HEADER]: SECRET, 'X-aws-ec2-metadata-token': TOKEN } })],
    () => ({}),
  ),
  nodeCase(
    'the header name and value as two arguments',
    'c14',
    () => [`${SECRET_HEADER}:`, SECRET, 'X-aws-ec2-metadata-token:', TOKEN],
    () => ({}),
  ),
  nodeCase(
    'a value cut by the argument-length bound',
    'c15',
    () => [`${'a'.repeat(236)}${SECRET}`, `${'b'.repeat(230)}${TOKEN}`],
    () => ({}),
  ),
  nodeCase(
    'the secret sent in its header by a node client (allowed by it)',
    'c16',
    () => [`--pass=${SECRET}`, `--token ${TOKEN}`],
    () => ({ [SECRET_HEADER]: SECRET }),
  ),
];
ALL.push(...OPEN);

describe('redaction by value, whatever the syntax', () => {
  it.each(OPEN.map((k) => [k.name, k] as const))('%s', (_n, k) => {
    expectNoLeak(k);
  });
});
