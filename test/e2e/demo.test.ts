import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The README's first command: the real CLI binary, real clients, loopback only. */

const CLI = join(process.cwd(), 'dist', 'cli', 'main.js');

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { timeout: 90_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

describe('imdsguard demo', () => {
  it('every verdict matches, events are written and hold no secrets', { timeout: 120_000 }, async () => {
    expect(existsSync(CLI), 'run npm run build first').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-demo-e2e-'));
    const eventsFile = join(dir, 'events.jsonl');
    const r = await runCli(['demo', '--json', '--events', eventsFile]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as {
      ok: boolean;
      verdicts: Array<{
        id: string;
        ok: boolean;
        skipped?: string;
        decision: string;
        rule: string;
        status: number;
      }>;
      eventsFile: string;
      events: number;
    };
    expect(result.ok).toBe(true);
    const byId = Object.fromEntries(result.verdicts.map((v) => [v.id, v]));
    expect(byId['aws-sdk-v3']).toMatchObject({ ok: true, decision: 'allow', status: 200 });
    expect(byId['curl-v1']).toMatchObject({
      ok: true,
      decision: 'deny',
      rule: 'default-deny-v1',
      status: 401,
    });
    expect(byId['ssrf-xff']).toMatchObject({ ok: true, rule: 'forwarding-header', status: 403 });
    expect(byId['dns-rebinding']).toMatchObject({ ok: true, rule: 'host', status: 403 });
    expect(byId['encoded-path']).toMatchObject({ ok: true, rule: 'credentials-need-v2', status: 403 });
    // 1,020 padding lines before X-Forwarded-For get 431; a token the guard never issued is flagged
    expect(byId['header-padding']).toMatchObject({
      ok: true,
      decision: 'deny',
      rule: 'header-count',
      status: 431,
    });
    expect(byId['bogus-token']).toMatchObject({
      ok: true,
      decision: 'allow',
      rule: 'imdsv2',
      status: 401,
    });
    if (existsSync('/usr/bin/python3') && !byId['botocore']?.skipped) {
      expect(byId['botocore']).toMatchObject({ ok: true, decision: 'allow' });
    }
    expect(result.eventsFile).toBe(eventsFile);
    const lines = readFileSync(eventsFile, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(result.events);
    const events = lines.map((l) => JSON.parse(l) as { v: number; request: { version: string } });
    expect(events.every((e) => e.v === 1)).toBe(true);
    expect(events.map((e) => e.request.version)).toContain('token');
    const text = lines.join('\n');
    for (const secretish of ['SecretAccessKey', 'AccessKeyId', '"Token"', 'AQAEA'])
      expect(text).not.toContain(secretish);
  });

  it('prints a verdict table and where the events went', { timeout: 120_000 }, async () => {
    const r = await runCli(['demo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/scenario\s+expected\s+decision\s+rule\s+status\s+OK\?/);
    expect(r.stdout).toContain('all verdicts match');
    expect(r.stdout).toMatch(/events: \d+ JSON lines in \/.*events\.jsonl/);
  });
});
