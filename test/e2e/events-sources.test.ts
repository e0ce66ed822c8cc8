import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { CLI_MAIN, type CliRun, requireBuild, runBin } from '../support/bin.js';

/**
 * `imdsguard events`, `callers` and `report` read the guard's JSON-lines file (--events) and its
 * store (--db) alike. A real guard binary writes both while real requests go through it; every
 * query must then answer the same from either source.
 */

let dir: string;
let emulator: Emulator;
let jsonl: string;
let db: string;

/** Runs the binary with a bare environment; each run is bounded (runBin kills it after 30 s). */
function cli(args: string[]): Promise<CliRun> {
  return runBin(args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, timeoutMs: 30_000 });
}

function send(port: number, method: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Starts `imdsguard guard --events FILE --db FILE` and resolves with its port once it listens. */
function startGuard(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [CLI_MAIN, 'guard', '--listen', '127.0.0.1:0', '--upstream', emulator.url, '--events', jsonl, '--db', db],
    { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`the guard exited (${code}) before listening: ${stderr}`)));
  });
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-e2e-sources-'));
  jsonl = join(dir, 'events.jsonl');
  db = join(dir, 'events.db');
  emulator = createEmulator({ listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
  const { child, port } = await startGuard();
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ttl = { 'x-aws-ec2-metadata-token-ttl-seconds': '60' };
  expect(await send(port, 'PUT', '/latest/api/token', ttl)).toBe(200);
  // Tokenless calls: refused for curl, allowed for the AWS CLI's User-Agent (an IMDSv1 caller).
  expect(await send(port, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'curl/8.5' })).toBe(401);
  expect(
    await send(port, 'GET', '/latest/meta-data/iam/security-credentials/', { 'user-agent': 'curl/8.5' }),
  ).toBe(401);
  expect(await send(port, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'aws-cli/2.15.0' })).toBe(
    200,
  );
  expect(await send(port, 'GET', '/latest/meta-data/ami-id', { 'user-agent': 'aws-cli/2.15.0' })).toBe(200);
  // The guard writes its events (both outputs) before it exits on SIGTERM.
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  // A line that is not an event (a truncated write, a foreign line): skipped, counted, said.
  appendFileSync(jsonl, '{"not": "an event"\n');
  // The guard, five requests through it and the first CLI runs: about 3 s when quiet.
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function both(args: string[]): Promise<{ file: CliRun; store: CliRun }> {
  const [file, store] = await Promise.all([cli([...args, '--events', jsonl]), cli([...args, '--db', db])]);
  return { file, store };
}

// Each test runs the binary two to six times: 1-2 s a run when quiet.
describe('events, callers and report read --events <file> as they read --db <file>', {
  timeout: 120_000,
}, () => {
  it('events: the same events, newest first, for each filter; the bad line is skipped and said', async () => {
    const all = await both(['events', '--json']);
    expect(all.file.code, all.file.stderr).toBe(0);
    expect(all.store.code, all.store.stderr).toBe(0);
    const fromFile = JSON.parse(all.file.stdout) as GuardEvent[];
    expect(fromFile).toHaveLength(5);
    expect(fromFile).toEqual(JSON.parse(all.store.stdout));
    const times = fromFile.map((e) => Date.parse(e.time));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(all.file.stderr).toContain(`warning: skipped 1 bad line in ${jsonl} (first at line 6)`);
    expect(all.store.stderr).toBe('');

    for (const filter of [
      ['--decision', 'deny'],
      ['--version', 'v1', '--limit', '2'],
      ['--path', '/latest/meta-data/iam/'],
      ['--until', '1970-01-02T00:00:00Z'],
    ]) {
      const r = await both(['events', ...filter, '--format', 'ndjson']);
      expect(r.file.code, r.file.stderr).toBe(0);
      expect(r.file.stdout, filter.join(' ')).toBe(r.store.stdout);
      const lines = r.file.stdout.split('\n').filter((l) => l !== '');
      const expected = { '--decision': 2, '--version': 2, '--path': 1, '--until': 0 }[filter[0] as string];
      expect(lines, filter.join(' ')).toHaveLength(expected as number);
    }
  });

  it('events --format csv and table from the file', async () => {
    const csv = await cli(['events', '--events', jsonl, '--format', 'csv', '--decision', 'deny']);
    expect(csv.code, csv.stderr).toBe(0);
    const rows = csv.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^time,id,host,mode,decision,action,rule,/);
    expect(rows).toHaveLength(3);
    expect(rows.slice(1).every((r) => r.includes(',deny,'))).toBe(true);
    const table = await cli(['events', '--events', jsonl, '--version', 'token']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain('/latest/api/token');
    expect(table.stdout.trimEnd().split('\n')).toHaveLength(2);
  });

  it('callers: the same callers from either source, exit 1 for the IMDSv1 caller', async () => {
    const r = await both(['callers', '--json']);
    expect(r.file.code, r.file.stderr).toBe(1);
    expect(r.store.code, r.store.stderr).toBe(1);
    const file = JSON.parse(r.file.stdout) as { callers: unknown[]; badLines: number; v1Requests: number };
    const store = JSON.parse(r.store.stdout) as typeof file;
    expect(file.callers).toEqual(store.callers);
    expect(file.v1Requests).toBe(4);
    expect([file.badLines, store.badLines]).toEqual([1, 0]);
  });

  it('report: the same numbers from either source', async () => {
    const r = await both(['report', '--json', '--since', '2000-01-01T00:00:00Z']);
    expect(r.file.code, r.file.stderr).toBe(0);
    expect(r.store.code, r.store.stderr).toBe(0);
    const pick = (text: string) => {
      const d = JSON.parse(text) as Record<string, unknown>;
      return [d['hosts'], d['totals'], d['topCallers'], d['v1Callers'], d['requests']];
    };
    expect(pick(r.file.stdout)).toEqual(pick(r.store.stdout));
    expect(
      (JSON.parse(r.file.stdout) as { totals: { events: number; denied: number } }).totals,
    ).toMatchObject({
      events: 5,
      denied: 2,
    });
  });

  it('refuses --events with --db (exit 2), and names a file it cannot read (exit 2)', async () => {
    const twice = await cli(['events', '--events', jsonl, '--db', db]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('events: give --events or --db, not both');
    const missing = join(dir, 'missing.jsonl');
    const r = await cli(['report', '--events', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`report: cannot read ${missing}`);
    expect(r.stderr).toContain('IMDSGUARD_E_CONFIG_READ');
    expect(r.stdout).toBe('');
  });
});
