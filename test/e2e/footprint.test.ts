import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_MAIN, requireBuild } from '../support/bin.js';

/**
 * What the real binary loads (start fast, load little): every module it resolves is
 * recorded by a --import hook (test/support/module-trace.mjs). The guard loads neither the AWS SDK,
 * the reports nor SQLite unless its configuration asks for them; --help and --version load no
 * command module. bench/startup measures what this saves.
 */
const HOOK = join(import.meta.dirname, '..', 'support', 'module-trace.mjs');

interface Traced {
  modules: string[];
  stderr: string;
}

/** Runs the CLI until it exits, or (with `untilLine`) until that stderr line, then SIGTERM. */
function traced(args: string[], untilLine?: RegExp): Promise<Traced> {
  const dir = mkdtempSync(join(tmpdir(), 'imdsg-footprint-'));
  const trace = join(dir, 'modules.txt');
  writeFileSync(trace, '');
  const child = spawn(process.execPath, ['--import', HOOK, CLI_MAIN, ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', IMDSGUARD_TRACE_MODULES: trace },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let stopped = false;
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // One SIGTERM: a second one, while the guard shuts down, would end it before its exit hooks run.
      if (!stopped && untilLine?.test(stderr)) {
        stopped = true;
        child.kill('SIGTERM');
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (untilLine && !untilLine.test(stderr)) return reject(new Error(`exited ${code} early: ${stderr}`));
      if (!untilLine && code !== 0) return reject(new Error(`exited ${code}: ${stderr}`));
      const modules = [...new Set(readFileSync(trace, 'utf8').split('\n').filter(Boolean))];
      resolve({ modules, stderr });
    });
  });
}

const HEAVY = [/@aws-sdk\//, /@smithy\//, /^node:sqlite$/, /\/report\//, /\/fleet\//];
const heavy = (modules: string[]) => modules.filter((m) => HEAVY.some((re) => re.test(m)));
const commandModules = (modules: string[]) =>
  modules.filter((m) => /\/cli\/commands\/(?!index\.js$)[^/]+$/.test(m)).map((m) => m.split('/').pop());

describe('what the binary loads', () => {
  it('the guard, listening with a default configuration: no AWS SDK, SQLite, reports or fleet code', async () => {
    requireBuild();
    const t = await traced(
      ['guard', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--events', '/dev/null'],
      /listening on/,
    );
    // The hook saw the guard itself: a test of a hook that sees nothing would pass anyway.
    expect(t.modules.some((m) => m.endsWith('/guard/wire.js'))).toBe(true);
    expect(heavy(t.modules)).toEqual([]);
    expect(commandModules(t.modules)).toEqual(['guard.js']);
    // Node's own HTTPS, HTTP/2 and compression stacks: an ESM import of node:http pulls them all in.
    expect(t.modules.some((m) => m === 'node-internal:http')).toBe(true);
    expect(t.modules.filter((m) => /^node-internal:(tls|http2|zlib|https)$/.test(m))).toEqual([]);
    // The trap's emulator loads in trap mode only, the alert sinks when one is configured.
    expect(
      t.modules.filter((m) => /\/emulator\/|\/guard\/trap\/index\.js$|\/alerts\/sinks\//.test(m)),
    ).toEqual([]);
  }, 60_000);

  it('trap mode loads the emulator; a configured alert sink loads the sinks', async () => {
    requireBuild();
    const t = await traced(
      [
        'guard',
        '--mode',
        'trap',
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        'http://127.0.0.1:9',
        '--events',
        '/dev/null',
        '--alert',
        'http://127.0.0.1:9/hook',
      ],
      /listening on/,
    );
    expect(t.modules.some((m) => m.endsWith('/emulator/flavors/index.js'))).toBe(true);
    expect(t.modules.some((m) => m.endsWith('/alerts/sinks/webhook.js'))).toBe(true);
  }, 60_000);

  it('loads SQLite once the configuration asks for an event store (--db)', async () => {
    requireBuild();
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-footprint-db-'));
    const t = await traced(
      ['guard', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--db', join(dir, 'e.db')],
      /listening on/,
    );
    expect(t.modules).toContain('node:sqlite');
    expect(heavy(t.modules)).toEqual(['node:sqlite']);
  }, 60_000);

  it('--help and --version load no command module', async () => {
    requireBuild();
    for (const args of [['--help'], ['--version']]) {
      const t = await traced(args);
      expect(t.modules.some((m) => m.endsWith('/cli/commands/index.js'))).toBe(true);
      expect(commandModules(t.modules)).toEqual([]);
      expect(heavy(t.modules)).toEqual([]);
    }
  }, 60_000);

  it("a command's --help loads that command alone, not its implementation", async () => {
    requireBuild();
    const t = await traced(['guard', '--help']);
    expect(commandModules(t.modules)).toEqual(['guard.js']);
    expect(t.modules.some((m) => m.endsWith('/guard/wire.js'))).toBe(false);
  }, 60_000);
});
