import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { CLI_MAIN, requireBuild } from '../support/bin.js';
import { waitFor } from '../support/wait.js';

/**
 * The guard as a daemon, the real binary: SIGHUP reopens the events file the way
 * logrotate's postrotate expects, a reload applies a changed events.file or names what needs a
 * restart, and the start-up line says where each setting came from.
 */

interface Daemon {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  /** Sends SIGHUP and waits for the reload's outcome line. */
  hup(): Promise<string>;
  stop(): Promise<number | null>;
}

async function startGuard(args: string[], env: Record<string, string> = {}): Promise<Daemon> {
  requireBuild();
  const child = spawn(process.execPath, [CLI_MAIN, 'guard', '--listen', '127.0.0.1:0', ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(() => /\nimdsguard: settings: .*\n/.test(stderr) || child.exitCode !== null, 'start-up');
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
  if (!port) throw new Error(`the guard did not start: ${stderr}`);
  const outcome = /imdsguard: (configuration reloaded|reload failed)[^\n]*\n/g;
  return {
    child,
    port,
    stderr: () => stderr,
    async hup() {
      const before = stderr.match(outcome)?.length ?? 0;
      child.kill('SIGHUP');
      await waitFor(() => (stderr.match(outcome)?.length ?? 0) > before, 'the reload');
      return (stderr.match(outcome) ?? [])[before] as string;
    },
    stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });
/** One IMDSv2 request (allowed, then 502: nothing listens upstream); the path names it. */
function call(port: number, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        path: `/latest/meta-data/n-${n}`,
        headers: { host: '169.254.169.254', 'x-aws-ec2-metadata-token': 'AQAEtoken==' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const paths = (file: string): number[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => Number((JSON.parse(l) as GuardEvent).request.path.split('n-')[1]))
    : [];

describe('the guard as a daemon', () => {
  it('names where each setting came from: a flag, the file, IMDSGUARD_* and a legacy name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-daemon-'));
    const config = join(dir, 'guard.yaml');
    writeFileSync(config, 'guard:\n  revealRule: true\n');
    const g = await startGuard(['--config', config, '--events', join(dir, 'e.jsonl')], {
      MODE: 'ALERT',
      IMDSGUARD_REQUIRE_V2: 'true',
    });
    try {
      expect(g.stderr()).toContain(
        `imdsguard: settings: flag --events: events.file; flag --listen: guard.listen; environment IMDSGUARD_REQUIRE_V2: guard.requireV2; environment MODE: guard.mode; config file ${config}: guard.revealRule; the rest are defaults\n`,
      );
      expect(g.stderr()).toContain('guard (trap, aws) listening'); // MODE=ALERT is metatrapd's trap
    } finally {
      expect(await g.stop()).toBe(0);
    }
  }, 60_000);

  it('SIGHUP after logrotate renamed the events file: new events at the old path, none lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-daemon-'));
    const file = join(dir, 'events.jsonl');
    const g = await startGuard(['--upstream', 'http://127.0.0.1:9', '--events', file]);
    try {
      let n = 0;
      // Traffic never stops: a client loop runs through the rename and the reopen.
      let stop = false;
      const traffic = (async () => {
        while (!stop) expect(await call(g.port, n++)).toBe(502);
      })();
      await waitFor(() => paths(file).length >= 50, 'events before the rotation');
      renameSync(file, `${file}.1`);
      const outcome = await g.hup();
      expect(outcome).toMatch(
        /^imdsguard: configuration reloaded \(mode enforce\), events to .*events\.jsonl\n$/,
      );
      const afterHup = n;
      await waitFor(() => paths(file).some((p) => p > afterHup + 20), 'events after the reopen');
      stop = true;
      await traffic;
      expect(await g.stop()).toBe(0);
      const rotated = paths(`${file}.1`);
      const current = paths(file);
      // Every request once, across the two files; nothing sent after the reload went to the rotated
      // file. (An event is written when it is complete: one whose caller lookup finished late may
      // follow a later request's, so the order within a file is not the request order.)
      expect([...rotated, ...current].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(current.length).toBeGreaterThan(0);
      expect(Math.min(...current)).toBeLessThanOrEqual(afterHup);
      expect(rotated.filter((p) => p >= afterHup)).toEqual([]);
    } finally {
      await g.stop();
    }
  }, 120_000);

  it('a reload applies a changed events.file and names the settings that need a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-daemon-'));
    const config = join(dir, 'guard.yaml');
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    const base = 'guard:\n  upstream: http://127.0.0.1:9\n';
    writeFileSync(config, `${base}events:\n  file: ${a}\n`);
    const g = await startGuard(['--config', config]);
    try {
      expect(await call(g.port, 1)).toBe(502);
      await waitFor(() => paths(a).length === 1, 'the first event');
      writeFileSync(
        config,
        `${base}  mode: monitor\nevents:\n  file: ${b}\nalerts:\n  webhooks:\n    - url: http://127.0.0.1:9/hook-secret\nadmin:\n  listen: 127.0.0.1:0\n`,
      );
      const outcome = await g.hup();
      expect(outcome).toBe(
        `imdsguard: configuration reloaded (mode monitor), events to ${b}; not applied until a restart: alerts.webhooks, admin.listen\n`,
      );
      expect(g.stderr()).not.toContain('hook-secret');
      expect(await call(g.port, 2)).toBe(502);
      await waitFor(() => paths(b).length === 1, 'the event in the new file');
      expect(paths(a)).toEqual([1]);
      expect(paths(b)).toEqual([2]);
      expect((JSON.parse(readFileSync(b, 'utf8')) as GuardEvent).mode).toBe('monitor');
    } finally {
      expect(await g.stop()).toBe(0);
    }
  }, 90_000);

  it('an invalid config on SIGHUP keeps the running one, and still reopens the events file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-daemon-'));
    const config = join(dir, 'guard.yaml');
    const file = join(dir, 'events.jsonl');
    writeFileSync(config, `guard:\n  upstream: http://127.0.0.1:9\nevents:\n  file: ${file}\n`);
    const g = await startGuard(['--config', config]);
    try {
      expect(await call(g.port, 1)).toBe(502);
      await waitFor(() => paths(file).length === 1, 'the first event');
      renameSync(file, `${file}.1`);
      writeFileSync(config, 'guard:\n  mode: sometimes\n');
      const outcome = await g.hup();
      expect(outcome).toMatch(
        /^imdsguard: reload failed, keeping the running configuration: .*guard\.mode: must be one of enforce, monitor, trap.*\[IMDSGUARD_E_CONFIG\]/,
      );
      await waitFor(() => g.stderr().includes(`events to ${file} (reopened)`), 'the reopen');
      expect(await call(g.port, 2)).toBe(502);
      await waitFor(() => paths(file).length === 1, 'the event in the new file');
      expect(paths(`${file}.1`)).toEqual([1]);
      expect(paths(file)).toEqual([2]);
    } finally {
      expect(await g.stop()).toBe(0);
    }
  }, 90_000);
});
