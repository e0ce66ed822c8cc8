/** Output format choice and writing to stdout or --output FILE. */
import { createWriteStream, type WriteStream } from 'node:fs';
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

/**
 * Writes to stdout and resolves once it can take more. A pipe may take less than we wrote: waiting
 * until it drained means an exit right after cannot cut the document short (main.ts exits as soon as
 * the command resolves), and a streamed document never piles up in memory behind a slow reader.
 */
async function writeStdout(stdout: Output, text: string): Promise<void> {
  const accepted = stdout.write(text);
  const stream = stdout as Output & { once?: (event: string, fn: () => void) => unknown };
  if (accepted === false && typeof stream.once === 'function') {
    await new Promise<void>((done) => stream.once?.('drain', done));
  }
}

/** Writes the rendered text to `file` (relative to cwd) or to stdout. */
export async function writeOutput(
  stdout: Output,
  text: string,
  file: string | undefined,
  cwd: string,
): Promise<void> {
  if (file === undefined || file === '-') return writeStdout(stdout, text);
  const path = resolve(cwd, file);
  try {
    await writeFile(path, text, { mode: 0o644 });
  } catch (err) {
    throw outputError(path, err);
  }
}

/** A document written piece by piece: each write resolves once the output can take more. */
export interface StreamedOutput {
  write(text: string): Promise<void>;
  /** Flushes and closes a file (stdout stays open). */
  close(): Promise<void>;
}

function outputError(path: string, err: unknown): ImdsguardError {
  return new ImdsguardError('IMDSGUARD_E_OUTPUT', `cannot write ${path}: ${(err as Error).message}`, {
    cause: err,
  });
}

/**
 * Writes to `file` (relative to cwd; created or truncated at the first write) or to stdout, with
 * backpressure: a write waits for 'drain' when the output's buffer is full, so a slow reader slows
 * the producer instead of filling memory.
 */
export function openStreamedOutput(stdout: Output, file: string | undefined, cwd: string): StreamedOutput {
  if (file === undefined || file === '-') {
    return { write: (text) => writeStdout(stdout, text), close: async () => {} };
  }
  const path = resolve(cwd, file);
  // Opened on the first write: a run that fails before writing anything leaves no file behind.
  let opening: Promise<WriteStream> | undefined;
  let out: WriteStream | undefined;
  let failed: unknown;
  const open = () =>
    new Promise<WriteStream>((ready, fail) => {
      const stream = createWriteStream(path, { mode: 0o644 });
      stream.on('error', (err) => {
        failed ??= err;
      });
      stream.once('open', () => ready(stream));
      stream.once('error', (err) => fail(outputError(path, err)));
    });
  return {
    async write(text) {
      opening ??= open();
      const stream = await opening;
      out = stream;
      if (failed !== undefined) throw outputError(path, failed);
      if (!stream.write(text)) {
        await new Promise<void>((done, fail) => {
          const onError = (err: unknown) => fail(outputError(path, err));
          stream.once('error', onError);
          stream.once('drain', () => {
            stream.off('error', onError);
            done();
          });
        });
      }
    },
    close() {
      const stream = out;
      if (stream === undefined) return Promise.resolve();
      return new Promise<void>((done, fail) => {
        stream.end((err?: Error | null) => (err || failed ? fail(outputError(path, err ?? failed)) : done()));
      });
    },
  };
}
