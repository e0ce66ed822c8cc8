/**
 * One CLI dialect outside fleet (test/unit/fleet-dialect.test.ts checks fleet): each command's --help
 * writes placeholders and defaults one way and ends with examples; --format is the one output switch
 * with --json as its alias; --output is always a file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { runInProcess } from '../support/cli.js';
import { writeSampleEvents } from '../support/event-store.js';

const NAMES = COMMANDS.map((c) => c.name).filter((n) => n !== 'fleet');

/** The formats each command prints (its --format choices), and whether it writes --output files. */
const OUTPUTS: Record<string, { formats: string[]; output: boolean }> = {
  demo: { formats: ['table', 'json'], output: true },
  emulate: { formats: ['text', 'json'], output: false },
  events: { formats: ['table', 'json', 'csv', 'ndjson'], output: true },
  callers: { formats: ['table', 'json', 'csv', 'ndjson'], output: true },
  report: { formats: ['html', 'json'], output: true },
  install: { formats: ['text', 'json'], output: false },
  uninstall: { formats: ['text', 'json'], output: false },
  doctor: { formats: ['table', 'json'], output: true },
};

const dir = mkdtempSync(join(tmpdir(), 'imdsguard-cli-dialect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('help texts outside fleet', () => {
  it('covers every command of the table but the daemon', () => {
    expect([...Object.keys(OUTPUTS), 'guard'].sort()).toEqual([...NAMES].sort());
  });

  it.each(NAMES)('%s --help: lower-case placeholders, "(default: X)", examples', async (name) => {
    const r = await runInProcess([name, '--help']);
    expect(r.code).toBe(0);
    const help = r.stdout;
    expect(help).toContain('Examples:');
    expect(help.match(/<[^>]*[A-Z][^>]*>/g) ?? []).toEqual([]);
    expect(help.match(/\b(?:FILE|PATH|HOST:PORT|DURATION|TIME|PREFIX|NAME|N)\b/g) ?? []).toEqual([]);
    // Defaults are written "(default: X)": never "(default X)", "; default", nor commander's quoted form.
    expect(help.match(/\(default [^:]|; default|default: "/g) ?? []).toEqual([]);
    const out = OUTPUTS[name];
    if (out === undefined) return;
    expect(help).toContain(`--format <format>`);
    expect(help).toContain(`output format: ${out.formats.join('|')} (default: ${out.formats[0]}`);
    expect(help).toContain('--json');
    expect(help.includes('--output <file>')).toBe(out.output);
  });
});

describe('--format, --json and --output on each command', () => {
  it.each(Object.keys(OUTPUTS))('%s: --json beside another --format is a usage error', async (name) => {
    const other = OUTPUTS[name]?.formats.find((f) => f !== 'json') as string;
    const r = await runInProcess([name, '--json', '--format', other]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--json and --format ${other} ask for different formats`);
  });

  it.each(Object.keys(OUTPUTS))('%s: a format it does not print is refused', async (name) => {
    const r = await runInProcess([name, '--format', 'yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--format: expected one of ${OUTPUTS[name]?.formats.join(', ')}, got "yaml"`);
  });

  it.each(Object.keys(OUTPUTS).filter((n) => OUTPUTS[n]?.output))(
    '%s --output <format name> exits 2 with the hint to use --format',
    async (name) => {
      for (const value of ['json', 'CSV', 'text']) {
        const r = await runInProcess([name, '--output', value]);
        expect(r.code, `${name} --output ${value}`).toBe(2);
        expect(r.stderr).toContain(`--output: "${value}" is a format name, not a file`);
        expect(r.stderr).toContain('hint: --output is always a file');
        expect(r.stdout).toBe('');
      }
    },
  );

  it('events writes the format it is asked for to the file it is given', async () => {
    const db = join(dir, 'events.db');
    const written = await writeSampleEvents(db);
    const r = await runInProcess(['events', '--db', db, '--json', '--output', 'events.json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const got = JSON.parse(readFileSync(join(dir, 'events.json'), 'utf8')) as Array<{ id: string }>;
    expect(got.map((e) => e.id).sort()).toEqual(written.map((e) => e.id).sort());
    const csv = await runInProcess(['events', '--db', db, '--format', 'csv', '--output', 'events.csv'], {
      cwd: dir,
    });
    expect(csv.code, csv.stderr).toBe(0);
    expect(readFileSync(join(dir, 'events.csv'), 'utf8').trimEnd().split('\n')).toHaveLength(
      written.length + 1,
    );
  });
});
