import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_MAIN, requireBuild } from '../support/bin.js';

/**
 * The real guard binary with its defaults (attribution in a worker thread, events to a file) stops
 * with exit code 0 on SIGTERM after it has served requests.
 */
describe('guard shutdown', () => {
  it('exits 0 on SIGTERM with attribution on, after attributing a request', async () => {
    requireBuild();
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-shutdown-'));
    const child = spawn(
      process.execPath,
      [
        CLI_MAIN,
        'guard',
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        'http://127.0.0.1:9',
        '--events',
        join(dir, 'ev.jsonl'),
      ],
      // a clean environment: vitest sets MODE, which is metatrapd's alias for the guard mode
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      void exited.then(() => reject(new Error(`guard exited early: ${stderr}`)));
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/latest/meta-data/', headers: { host: '169.254.169.254' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(401);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('SIGTERM: shutting down');
    // The binary starts (up to 15 s allowed), serves one request and stops: about 1 s when quiet.
  }, 45_000);
});
