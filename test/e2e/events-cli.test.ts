import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { SqliteEventStore } from '../../src/guard/store/index.js';
import { CLI_MAIN, type CliRun, requireBuild, runBin } from '../support/bin.js';
import { writeSampleEvents } from '../support/event-store.js';
import { waitFor } from '../support/wait.js';

/** The real binary: node dist/cli/main.js events ... (npm test builds it first). */

let dir: string;
beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-e2e-events-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runBin(args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, timeoutMs: 20_000 });
}

async function populated(): Promise<{ path: string; events: GuardEvent[] }> {
  const path = join(dir, 'populated.db');
  return { path, events: await writeSampleEvents(path) };
}

describe('imdsguard events (the real binary)', { timeout: 60_000 }, () => {
  it('on a fresh database prints that nothing matches, and [] as JSON', async () => {
    const path = join(dir, 'fresh.db');
    await new SqliteEventStore({ path }).close();
    const table = await cli(['events', '--db', path]);
    expect(table.code).toBe(0);
    expect(table.stdout).toBe(`no events in ${path} match\n`);
    const json = await cli(['events', '--db', path, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([]);
  });

  it('on a populated database shows a table, newest first, and filters', async () => {
    const { path, events } = await populated();
    const all = await cli(['events', '--db', path]);
    expect(all.code).toBe(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^TIME\s+DECISION\s+ACTION\s+VER\s+METHOD\s+PATH\s+EXE\s+USER\s+PID\s+STATUS\s+RULE$/,
    );
    expect(lines).toHaveLength(4);
    expect(lines[1]).toContain('/latest/api/token');
    expect(lines[3]).toContain('/usr/bin/curl');

    const json = async (args: string[]) => {
      const r = await cli(['events', '--db', path, '--json', ...args]);
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as GuardEvent[]).map((e) => e.id);
    };
    const [old, v2, token] = events.map((e) => e.id);
    // Every filter is covered in-process (test/integration/store-cli.test.ts); here, two through the binary.
    expect(await json(['--since', '1h', '--exe', '/usr/bin/python3'])).toEqual([token, v2]);
    expect(await json(['--decision', 'deny', '--version', 'v1'])).toEqual([old]);
    // A window: ISO-8601 times and durations, --since included, --until excluded.
    const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
    expect(await json(['--since', iso(2 * 3_600_000), '--until', iso(10 * 60_000)])).toEqual([v2]);
    expect(await json(['--since', '4h', '--until', '1h'])).toEqual([old]);
  }, 60_000);

  it('refuses --until not after --since, and an invalid time, with exit 2', async () => {
    const { path } = await populated();
    const backwards = await cli([
      'events',
      '--db',
      path,
      '--since',
      '2026-11-20T11:00:00Z',
      '--until',
      '2026-11-20T10:00:00Z',
    ]);
    expect(backwards.code).toBe(2);
    expect(backwards.stdout).toBe('');
    expect(backwards.stderr).toContain(
      'imdsguard: --until (2026-11-20T10:00:00.000Z) must be later than --since (2026-11-20T11:00:00.000Z) [IMDSGUARD_E_USAGE]',
    );
    const invalid = await cli(['events', '--db', path, '--until', '2026-11-20T10:00:00']);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('--until: "2026-11-20T10:00:00" has no time zone');
  });

  it('reads IMDSGUARD_DB when --db is not given', async () => {
    const { path } = await populated();
    const r = await cli(['events', '--json', '--limit', '2'], { IMDSGUARD_DB: path });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(2);
  });

  it('refuses bad options with exit 2, and a missing database with IMDSGUARD_E_STORE', async () => {
    const bad = await cli(['events', '--db', join(dir, 'x.db'), '--decision', 'maybe']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--decision');
    expect((await cli(['events', '--since', 'yesterday'])).code).toBe(2);
    expect((await cli(['events', '--version', 'v3'])).code).toBe(2);
    const missing = await cli(['events', '--db', join(dir, 'missing.db')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('IMDSGUARD_E_STORE');
  });
});

describe('imdsguard guard --db --admin --alert (the real binary)', { timeout: 60_000 }, () => {
  it('stores events, alerts a webhook, and serves /healthz and /metrics; events reads the store', async () => {
    const { createServer } = await import('node:http');
    const { spawn } = await import('node:child_process');
    const listen = async (s: import('node:http').Server) => {
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
      return (s.address() as import('node:net').AddressInfo).port;
    };
    const upstream = createServer((_q, r) => r.end('i-0123456789abcdef0'));
    const hookBodies: string[] = [];
    const hook = createServer((q, r) => {
      let b = '';
      q.on('data', (c: Buffer) => {
        b += c.toString('utf8');
      });
      q.on('end', () => {
        hookBodies.push(b);
        r.end('ok');
      });
    });
    const upstreamPort = await listen(upstream);
    const hookPort = await listen(hook);
    const db = join(dir, 'guard.db');
    const child = spawn(
      process.execPath,
      [
        CLI_MAIN,
        'guard',
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        `http://127.0.0.1:${upstreamPort}`,
        '--db',
        db,
        '--admin',
        '127.0.0.1:0',
        '--alert',
        `http://127.0.0.1:${hookPort}/hook`,
        '--events',
        join(dir, 'guard.jsonl'),
      ],
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let token = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    try {
      await waitFor(
        () =>
          child.exitCode !== null ||
          (/admin (http:\/\/127\.0\.0\.1:\d+)/.test(stderr) &&
            /listening on (127\.0\.0\.1:\d+)/.test(stderr)),
        'the guard to listen',
      );
      if (child.exitCode !== null) throw new Error(`guard did not start: ${stderr}`);
      const admin = (/admin (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr) as RegExpExecArray)[1] as string;
      const guardAddr = (/listening on (127\.0\.0\.1:\d+)/.exec(stderr) as RegExpExecArray)[1] as string;

      expect(await (await fetch(`${admin}/healthz`)).text()).toBe('ok\n');
      const refused = await fetch(`http://${guardAddr}/latest/meta-data/iam/security-credentials/`);
      expect(refused.status).toBe(401);
      token = await (
        await fetch(`http://${guardAddr}/latest/api/token`, {
          method: 'PUT',
          headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
        })
      ).text();
      expect(token.length).toBeGreaterThan(0);

      await waitFor(() => hookBodies.length > 0, 'the webhook alert');
      const alerts = hookBodies.flatMap(
        (b) => (JSON.parse(b) as { alerts: Array<{ request: { path: string }; decision: string }> }).alerts,
      );
      expect(alerts[0]).toMatchObject({
        decision: 'deny',
        request: { path: '/latest/meta-data/iam/security-credentials/' },
      });
      expect(hookBodies.join('')).not.toContain(token.slice(0, 16));

      const metrics = await (await fetch(`${admin}/metrics`)).text();
      expect(metrics).toMatch(
        /^imdsguard_requests_total\{action="refused",decision="deny",rule="[^"]+",version="v1"\} 1$/m,
      );
      expect(metrics).toMatch(/^imdsguard_alerts_delivered_total\{sink="webhook-[0-9a-f]{8}"\} 1$/m);
    } finally {
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
      upstream.close();
      hook.close();
    }
    const r = await cli(['events', '--db', db, '--json']);
    expect(r.code).toBe(0);
    const stored = JSON.parse(r.stdout) as GuardEvent[];
    expect(stored.map((e) => e.request.version).sort()).toEqual(['token', 'v1']);
    expect(token.length).toBeGreaterThan(0);
    expect(r.stdout).not.toContain(token);
  });
});
