import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { capture, runInProcess } from '../support/cli.js';
import { type Reply, send } from '../support/guard-helpers.js';
import { waitFor } from '../support/wait.js';

/** `imdsguard guard` through the CLI table, in-process: flags, config errors, events on stdout. */

let emulator: Emulator;
const dir = mkdtempSync(join(tmpdir(), 'imdsg-guard-cli-'));

beforeAll(async () => {
  emulator = createEmulator({ settings: { tokens: 'required' }, listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
});
afterAll(() => emulator.close());

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('imdsguard guard', () => {
  it('runs until shutdown, writes JSON events to stdout and its status to stderr', async () => {
    const port = await freePort();
    let stop: (s: string) => void = () => {};
    const shutdown = new Promise<string>((r) => {
      stop = r;
    });
    const stdout = capture();
    const run = runInProcess(['guard', '--listen', `127.0.0.1:${port}`, '--upstream', emulator.url], {
      shutdown,
      env: { XHEADER: 'cli-secret-value' },
      stdout,
    });
    const url = `http://127.0.0.1:${port}`;
    let reply: Reply | undefined;
    // The guard listens once its modules are loaded: retry until it answers.
    await waitFor(
      async () => {
        reply = await send(url, 'PUT', '/latest/api/token', {
          'x-aws-ec2-metadata-token-ttl-seconds': '60',
        }).catch(() => undefined);
        return reply !== undefined;
      },
      'the guard to answer',
      50,
    );
    expect(reply?.status).toBe(200);
    const v1 = await send(url, 'GET', '/latest/meta-data/', { 'x-meta-auth': 'cli-secret-value' });
    expect(v1.status).toBe(401); // allowed by the secret; the emulator requires IMDSv2
    // Both events written (an event follows its response), then stop.
    await waitFor(() => stdout.text.trim().split('\n').length >= 2, 'two events on stdout');
    stop('SIGTERM');
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`listening on 127.0.0.1:${port}`);
    expect(r.stderr).toContain('SIGTERM: shutting down');
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { time: string; rule: string; request: { version: string } })
      // an event is written once its caller is known, so the stream is not in request order
      .sort((a, b) => a.time.localeCompare(b.time));
    expect(events.map((e) => e.rule)).toEqual(['imdsv2-token', 'auth-header']);
    expect(r.stdout).not.toContain('cli-secret-value');
  });

  it('a bad flag value is a usage error (exit 2)', async () => {
    const r = await runInProcess(['guard', '--mode', 'block']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--mode: expected one of enforce, monitor, trap');
  });

  it('a bad config names the key and exits 2', async () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(
      f,
      'guard:\n  rules:\n    - action: deny\n      path: /latest/user-data\n    - action: allow\n      exe: python3\n',
    );
    const r = await runInProcess(['guard', '--config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('guard.rules[1].exe: must be an absolute path');
    expect(r.stderr).toContain('IMDSGUARD_E_CONFIG');
  });

  it('a port in use is IMDSGUARD_E_LISTEN (exit 1)', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    try {
      const r = await runInProcess(['guard', '--listen', `127.0.0.1:${port}`, '--upstream', emulator.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
      expect(r.stderr).toContain('IMDSGUARD_E_LISTEN');
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it('listens on IPv6 loopback and accepts its own [::1]:PORT as Host', async (ctx) => {
    const { createGuard } = await import('../../src/guard/index.js');
    const { guardConfig } = await import('../support/guard-helpers.js');
    const g = createGuard({
      config: guardConfig({ listen: ['[::1]:0'], upstream: emulator.url }),
      hostname: 'h',
    });
    try {
      await g.start();
    } catch {
      ctx.skip('no IPv6 loopback on this host'); // suite-checks fails the run unless IMDSGUARD_ALLOW_SKIP=1
    }
    try {
      expect(g.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const r = await send(g.url, 'PUT', '/latest/api/token', {
        'x-aws-ec2-metadata-token-ttl-seconds': '60',
      });
      expect(r.status).toBe(200);
    } finally {
      await g.close();
    }
  });
});
