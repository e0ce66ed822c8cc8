import type { CliContext } from '../../src/cli/context.js';
import { runCli } from '../../src/cli/program.js';
import { reportError } from '../../src/cli/report-error.js';
import type { Output } from '../../src/io/output.js';

export interface Captured extends Output {
  text: string;
}

export function capture(isTTY = false): Captured {
  const out: Captured = {
    text: '',
    isTTY,
    write(chunk: string) {
      out.text += chunk;
      return true;
    },
  };
  return out;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in-process with captured output, the way main.ts would, and returns the exit code.
 * `shutdown` lets a test stop a long-running command; `stdout`/`stderr` let it watch the output while
 * the command runs.
 */
export async function runInProcess(
  argv: string[],
  opts: {
    env?: Record<string, string>;
    shutdown?: Promise<string>;
    cwd?: string;
    stdout?: Captured;
    stderr?: Captured;
  } = {},
): Promise<RunResult> {
  const stdout = opts.stdout ?? capture();
  const stderr = opts.stderr ?? capture();
  const ctx: CliContext = {
    stdout,
    stderr,
    env: opts.env ?? {},
    cwd: opts.cwd ?? process.cwd(),
    shutdown: opts.shutdown ?? Promise.resolve('test'),
    onReload: () => () => {},
    confirm: async () => false,
    exitCode: 0,
  };
  let code: number;
  try {
    code = await runCli(argv, ctx);
  } catch (err) {
    code = reportError(err, stderr, true);
  }
  return { code, stdout: stdout.text, stderr: stderr.text };
}
