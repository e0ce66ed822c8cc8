/**
 * The fleet CLI dialect, checked on every fleet subcommand: one --format switch with --json as its
 * alias, --output always a file (a format name is refused with exit 2 and a hint), -r/--region,
 * -p/--profile, --instance-ids, and help texts that write placeholders and defaults one way.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FLEET_SUBCOMMANDS } from '../../src/cli/commands/fleet/index.js';
import { parseOutputFile, readOutputOptions } from '../../src/cli/common-options.js';
import type { CliContext } from '../../src/cli/context.js';
import { readFleetOptions, readSelectionOptions } from '../../src/cli/fleet-options.js';
import { isImdsguardError } from '../../src/errors.js';
import { capture, runInProcess } from '../support/cli.js';

const NAMES = FLEET_SUBCOMMANDS.map((s) => s.name);
/** The arguments a subcommand needs before its options. */
const ARGS: Record<string, string[]> = { 'hop-limit': ['2'] };
/** Formats each subcommand prints (the rest print table, json, csv and ndjson). */
const FORMATS: Record<string, string[]> = { report: ['html', 'json'], guardrails: ['json'] };

const dir = mkdtempSync(join(tmpdir(), 'imdsguard-dialect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fleet(name: string, ...rest: string[]): string[] {
  return ['fleet', name, ...(ARGS[name] ?? []), ...rest];
}

function usageError(fn: () => unknown): { message: string; hint: string | undefined } {
  try {
    fn();
  } catch (err) {
    if (isImdsguardError(err, 'IMDSGUARD_E_USAGE')) return { message: err.message, hint: err.hint };
    throw err;
  }
  throw new Error('no usage error');
}

const ctx = { cwd: dir } as CliContext;

describe('--output is always a file', () => {
  it.each(NAMES)('fleet %s --output <format name> exits 2 with the hint to use --format', async (name) => {
    for (const value of ['json', 'CSV', 'html']) {
      const r = await runInProcess(fleet(name, '--output', value));
      expect(r.code, `${name} --output ${value}`).toBe(2);
      expect(r.stderr).toContain(`--output: "${value}" is a format name, not a file`);
      expect(r.stderr).toContain(
        `hint: --output is always a file; choose the format with --format ${value.toLowerCase()}`,
      );
      expect(r.stdout).toBe('');
    }
  });

  it('accepts a file whose name only contains a format name, and - for stdout', () => {
    expect(parseOutputFile('json.out')).toBe('json.out');
    expect(parseOutputFile('./json')).toBe('./json');
    expect(parseOutputFile('-')).toBe('-');
    expect(usageError(() => parseOutputFile(' ndjson ')).message).toContain('is a format name');
    expect(usageError(() => parseOutputFile('')).message).toContain('expected a file name');
  });

  it('writes the file it is given (guardrails needs no AWS)', async () => {
    const r = await runInProcess(['fleet', 'guardrails', '--json', '--output', 'policies.json'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(JSON.parse(readFileSync(join(dir, 'policies.json'), 'utf8'))).toHaveProperty('scp');
  });
});

describe('--format and its --json alias', () => {
  it.each(NAMES)('fleet %s: --json together with another --format exits 2', async (name) => {
    const other = (FORMATS[name] ?? ['table', 'json', 'csv', 'ndjson']).find((f) => f !== 'json');
    if (other === undefined) {
      // guardrails prints json only: any other format is refused by --format itself.
      const r = await runInProcess(fleet(name, '--format', 'csv'));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--format: expected one of json, got "csv"');
      return;
    }
    const r = await runInProcess(fleet(name, '--json', '--format', other));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--json and --format ${other} ask for different formats`);
  });

  it('--json means --format json; --format alone keeps its value; a format the command lacks is refused', () => {
    const spec = { formats: ['table', 'json', 'csv', 'ndjson'] as const, defaultText: 'x' };
    expect(readOutputOptions({ json: true }, spec)).toEqual({ format: 'json', output: undefined });
    expect(readOutputOptions({ json: true, format: 'json' }, spec).format).toBe('json');
    expect(readOutputOptions({ format: 'csv', output: 'a.csv' }, spec)).toEqual({
      format: 'csv',
      output: 'a.csv',
    });
    expect(readOutputOptions({}, spec).format).toBeUndefined();
    const html = { formats: ['html', 'json'] as const, defaultText: 'html' };
    expect(usageError(() => readOutputOptions({ format: 'csv' }, html)).message).toContain(
      'expected one of html, json',
    );
  });

  it('prints JSON with --json where a terminal would get a table', async () => {
    // A terminal's default is a table; --json must win. guardrails needs no AWS: its default is json,
    // so check through `fleet rollback --list` of an empty journal instead.
    const stdout = capture(true);
    const stderr = capture();
    const { runCli } = await import('../../src/cli/program.js');
    const base = {
      stderr,
      env: {},
      cwd: dir,
      shutdown: new Promise<string>(() => {}),
      onReload: () => () => {},
      confirm: async () => false,
      exitCode: 0,
    };
    const { Journal } = await import('../../src/fleet/journal/store.js');
    Journal.open(join(dir, 'j.db')).close();
    const table = await runCli(['fleet', 'rollback', '--list', '--journal', 'j.db'], { ...base, stdout });
    expect(table, stderr.text).toBe(0);
    expect(stdout.text).toContain('The journal holds no change set.');
    const json = capture(true);
    expect(
      await runCli(['fleet', 'rollback', '--list', '--journal', 'j.db', '--json'], { ...base, stdout: json }),
    ).toBe(0);
    expect(JSON.parse(json.text)).toEqual({ journal: join(dir, 'j.db'), changeSets: [] });
  });
});

describe('familiar flags', () => {
  it('-r/--region is one region, added to --regions; a bad one names --region', () => {
    expect(readFleetOptions({ region: 'eu-west-1' }).regions).toEqual(['eu-west-1']);
    expect(readFleetOptions({ region: 'eu-west-1', regions: ['us-east-1'] }).regions).toEqual([
      'us-east-1',
      'eu-west-1',
    ]);
    expect(usageError(() => readFleetOptions({ region: 'nowhere' })).message).toBe(
      '--region: "nowhere" is not a region name such as us-east-1',
    );
    expect(usageError(() => readFleetOptions({ region: 'eu-west-1', allRegions: true })).message).toContain(
      '--all-regions',
    );
  });

  it('--instance-ids is an alias of --instances (both may be given)', () => {
    const sel = readSelectionOptions(
      { instances: ['i-0123456789abcdef0'], instanceIds: ['i-0123456789abcdef1,i-0123456789abcdef0'] },
      ctx,
    );
    expect(sel.instanceIds).toEqual(['i-0123456789abcdef0', 'i-0123456789abcdef1']);
    expect(usageError(() => readSelectionOptions({ instanceIds: ['nope'] }, ctx)).message).toContain(
      '"nope" is not an instance id',
    );
  });

  it('the command line accepts -r, -p, --region and --instance-ids', async () => {
    // A bad region stops before any AWS call, so the flags are parsed and read without a network.
    const r = await runInProcess([
      'fleet',
      'harden',
      '-p',
      'audit',
      '-r',
      'moon-1',
      '--instance-ids',
      'i-0123456789abcdef0',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--region: "moon-1"');
  });
});

describe('help texts', () => {
  it.each(NAMES)(
    'fleet %s --help: one placeholder style, "(default: X)", --json, and examples',
    async (name) => {
      const r = await runInProcess(['fleet', name, '--help']);
      expect(r.code).toBe(0);
      const help = r.stdout;
      expect(help).toContain('Examples:');
      expect(help).toContain('--json');
      expect(help).toMatch(/--format <format>/);
      expect(help).toContain('--output <file>');
      // Placeholders are lower-case in angle brackets; no FILE, N or LIST in capitals.
      expect(help.match(/<[A-Z][A-Za-z]*>/g) ?? []).toEqual([]);
      expect(help.match(/\b(?:FILE|PATH|IDS|LIST)\b/g) ?? []).toEqual([]);
      // Defaults are written "(default: X)".
      expect(help.match(/\(default [^:]/g) ?? []).toEqual([]);
      if (name !== 'guardrails') {
        expect(help).toContain('-r, --region <region>');
        expect(help).toContain('-p, --profile <name>');
      }
      if (['harden', 'disable', 'hop-limit'].includes(name)) expect(help).toContain('--instance-ids <ids>');
    },
  );
});
