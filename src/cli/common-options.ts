/**
 * The flags every command that prints a document shares, defined once:
 *
 *   --format <format>   the formats this command has (table|text|json|csv|ndjson|html)
 *   --json              alias of --format json (on every command that prints JSON)
 *   --output <file>     always a file: a format name ("json", "csv", ...) is refused with a hint
 *
 *   addOutputOptions(cmd, spec)    adds them to a commander command
 *   readOutputOptions(raw, spec)   -> { format, output }, checked (IMDSGUARD_E_USAGE, exit 2)
 *
 * Help texts follow one convention (docs/usage.md, "Conventions"): placeholders in angle brackets
 * (`<file>`, `<n>`, `<list>`, `<host:port>`), choices as `a|b|c`, the default last as `(default: X)`.
 */
import type { Command } from 'commander';
import { ImdsguardError } from '../errors.js';
import { parseChoice } from './options.js';

/** Every output format a command may offer (text: human output that is not a table, such as a plan). */
export const FORMATS = ['table', 'text', 'json', 'csv', 'ndjson', 'html'] as const;
export type Format = (typeof FORMATS)[number];

export interface OutputSpec<F extends Format = Format> {
  /** The formats this command prints. */
  formats: readonly F[];
  /** The words of "(default: ...)", e.g. 'table on a terminal, json otherwise'. */
  defaultText: string;
  /** Adds --output <file> (default true); false for a command that only prints. */
  output?: boolean;
}

export interface OutputArgs<F extends Format = Format> {
  /** undefined: the command's default. */
  format: F | undefined;
  /** The file to write (relative to the working directory); undefined or '-': stdout. */
  output: string | undefined;
}

/** --output's parser: a file name, never a format name. Throws IMDSGUARD_E_USAGE (exit 2). */
export function parseOutputFile(value: string): string {
  const v = value.trim();
  const format = v.toLowerCase();
  if ((FORMATS as readonly string[]).includes(format)) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `--output: "${value}" is a format name, not a file`, {
      hint: `--output is always a file; choose the format with --format ${format} (for example --format ${format} --output report.${format === 'table' ? 'txt' : format})`,
    });
  }
  if (v === '') throw new ImdsguardError('IMDSGUARD_E_USAGE', '--output: expected a file name, got ""');
  return value;
}

/** Adds --format <format>, --json (when the command prints JSON) and --output <file>. */
export function addOutputOptions<F extends Format>(cmd: Command, spec: OutputSpec<F>): Command {
  cmd.option(
    '--format <format>',
    `output format: ${spec.formats.join('|')} (default: ${spec.defaultText})`,
    (v) => parseChoice(v, spec.formats, '--format'),
  );
  if ((spec.formats as readonly string[]).includes('json')) cmd.option('--json', 'alias of --format json');
  if (spec.output !== false) {
    cmd.option(
      '--output <file>',
      'write the output to <file> instead of stdout (- is stdout)',
      parseOutputFile,
    );
  }
  return cmd;
}

/** Reads --format, --json and --output. Throws IMDSGUARD_E_USAGE when --json and --format disagree. */
export function readOutputOptions<F extends Format>(
  raw: Record<string, unknown>,
  spec: OutputSpec<F>,
): OutputArgs<F> {
  let format = raw['format'] as F | undefined;
  if (raw['json'] === true) {
    if (format !== undefined && format !== 'json') {
      throw new ImdsguardError(
        'IMDSGUARD_E_USAGE',
        `--json and --format ${format} ask for different formats`,
        { hint: '--json is --format json: give one of them' },
      );
    }
    format = 'json' as F;
  }
  if (format !== undefined && !(spec.formats as readonly string[]).includes(format)) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--format: expected one of ${spec.formats.join(', ')}, got "${format}"`,
    );
  }
  const output = typeof raw['output'] === 'string' ? raw['output'] : undefined;
  return { format, output };
}
