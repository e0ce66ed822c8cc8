/**
 * The flags every command that prints a document shares, defined once: `--format` (only the formats
 * the command has) and `--output <file>`.
 *
 *   addOutputOptions(cmd, spec)    adds them to a commander command
 *   readOutputOptions(raw, spec)   -> { format, output }, checked (IMDSGUARD_E_USAGE, exit 2)
 *
 * Help texts follow one convention: placeholders in angle brackets (`<file>`, `<n>`, `<list>`), choices
 * as `a|b|c`, and the default last, as `(default: X)`.
 */
import type { Command } from 'commander';
import { parseChoice } from './options.js';

/** Every output format a command may offer. */
export const FORMATS = ['table', 'json', 'csv', 'ndjson', 'html'] as const;
export type Format = (typeof FORMATS)[number];

export interface OutputSpec<F extends Format = Format> {
  /** The formats this command prints. */
  formats: readonly F[];
  /** The words of "(default: ...)", e.g. 'table on a terminal, json otherwise'. */
  defaultText: string;
}

export interface OutputArgs<F extends Format = Format> {
  /** undefined: the command's default. */
  format: F | undefined;
  /** The file to write (relative to the working directory); undefined or '-': stdout. */
  output: string | undefined;
}

/** Adds --format <format> and --output <file>. */
export function addOutputOptions<F extends Format>(cmd: Command, spec: OutputSpec<F>): Command {
  return cmd
    .option(
      '--format <format>',
      `output format: ${spec.formats.join('|')} (default: ${spec.defaultText})`,
      (v) => parseChoice(v, spec.formats, '--format'),
    )
    .option('--output <file>', 'write the output to <file> instead of stdout');
}

/** Reads --format and --output (commander has already checked the format's choices). */
export function readOutputOptions<F extends Format>(
  raw: Record<string, unknown>,
  _spec: OutputSpec<F>,
): OutputArgs<F> {
  return {
    format: raw['format'] as F | undefined,
    output: typeof raw['output'] === 'string' ? raw['output'] : undefined,
  };
}
