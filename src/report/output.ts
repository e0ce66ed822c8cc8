/** Output format choice and writing to stdout or --output FILE. */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ImdsguardError } from '../errors.js';
import type { Output } from '../io/output.js';

export const OUTPUT_FORMATS = ['table', 'json', 'csv', 'ndjson'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * The format to use: the one asked for, else a table when the output is a terminal, else JSON (so a
 * pipe or a file always gets a machine-readable document).
 */
export function resolveFormat(requested: OutputFormat | undefined, toTerminal: boolean): OutputFormat {
  return requested ?? (toTerminal ? 'table' : 'json');
}

/** Writes the rendered text to `file` (relative to cwd) or to stdout. */
export async function writeOutput(
  stdout: Output,
  text: string,
  file: string | undefined,
  cwd: string,
): Promise<void> {
  if (file === undefined || file === '-') {
    // A pipe may take less than we wrote: wait until it drained, so an exit right after cannot cut
    // the document short (main.ts exits as soon as the command resolves).
    const accepted = stdout.write(text);
    const stream = stdout as Output & { once?: (event: string, fn: () => void) => unknown };
    if (accepted === false && typeof stream.once === 'function') {
      await new Promise<void>((done) => stream.once?.('drain', done));
    }
    return;
  }
  const path = resolve(cwd, file);
  try {
    await writeFile(path, text, { mode: 0o644 });
  } catch (err) {
    throw new ImdsguardError('IMDSGUARD_E_OUTPUT', `cannot write ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
