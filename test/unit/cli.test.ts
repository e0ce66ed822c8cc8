import { describe, expect, it } from 'vitest';
import { COMMANDS, entriesFor } from '../../src/cli/commands/index.js';
import { parseDuration, parseIntInRange } from '../../src/cli/options.js';
import { isImdsguardError } from '../../src/errors.js';
import { parseListen } from '../../src/net/listen.js';
import { runInProcess } from '../support/cli.js';

describe('cli shell', () => {
  // In-process, but the first import of every command module (the AWS SDK among them): seconds when loaded.
  it('prints help with every command of the table', async () => {
    const r = await runInProcess(['--help']);
    expect(r.code).toBe(0);
    for (const entry of COMMANDS) expect(r.stdout).toContain(entry.name);
    expect(r.stdout).toContain('Exit codes:');
  }, 60_000);

  it('prints the package version', async () => {
    const r = await runInProcess(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('gives a usage error with a suggestion for an unknown command', async () => {
    const r = await runInProcess(['emulat']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'emulat'");
    expect(r.stderr).toContain('Did you mean emulate?');
    expect(r.stderr).toContain('IMDSGUARD_E_USAGE');
  });

  it('gives a usage error for an unknown flag', async () => {
    const r = await runInProcess(['--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--frobnicate'");
  });

  // In-process, but the first import of every command module (the AWS SDK among them): seconds when loaded.
  it('every command module loads, has a summary and is named as in the table', async () => {
    for (const entry of COMMANDS) {
      const spec = await entry.load();
      expect(spec.name).toBe(entry.name);
      expect(spec.summary.length).toBeGreaterThan(10);
      // --help lists the table's summary without loading the module: they must agree.
      expect(entry.summary).toBe(spec.summary);
    }
  }, 60_000);

  it('loads only the command a command line names', () => {
    expect(entriesFor(['guard', '--mode', 'monitor']).map((e) => e.name)).toEqual(['guard']);
    expect(entriesFor(['help', 'fleet']).map((e) => e.name)).toEqual(['fleet']);
    expect(entriesFor(['-h'])).toEqual([]);
    expect(entriesFor(['--version'])).toEqual([]);
    expect(entriesFor(['emulat'])).toEqual([]);
  });

  it('shows a command help with its examples', async () => {
    const r = await runInProcess(['emulate', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('--tokens');
  });
});

describe('option parsers', () => {
  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.1:80')).toEqual({ host: '127.0.0.1', port: 80 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':1338')).toEqual({ host: '127.0.0.1', port: 1338 });
  });

  it.each(['127.0.0.1', '1.2.3.4:99999', '[nothex]:80', 'host:port'])('refuses listen "%s"', (v) => {
    let err: unknown;
    try {
      parseListen(v);
    } catch (e) {
      err = e;
    }
    expect(isImdsguardError(err, 'IMDSGUARD_E_USAGE')).toBe(true);
  });

  it('parses durations and ranges', () => {
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(() => parseDuration('7 days')).toThrow(/duration/);
    expect(parseIntInRange('64', 1, 64, '--hop-limit')).toBe(64);
    expect(() => parseIntInRange('65', 1, 64, '--hop-limit')).toThrow(/out of range 1..64/);
  });
});
