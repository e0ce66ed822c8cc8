import { execFile } from 'node:child_process';
import { errorMessage, ImdsguardError } from '../errors.js';

/**
 * How host commands run. The production runner uses execFile (argv, never a shell string); tests can
 * inject their own. Output is capped and every command has a timeout.
 */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  run(argv: readonly string[], opts?: { input?: string }): Promise<CommandResult>;
}

/** Per-command timeout (ms). */
export const COMMAND_TIMEOUT_MS = 20_000;
/** Largest stdout/stderr kept per command (bytes): an iptables-save of a busy host fits. */
export const COMMAND_MAX_BUFFER = 16 * 1024 * 1024;

export function execRunner(env?: NodeJS.ProcessEnv): CommandRunner {
  return {
    run(argv, opts = {}) {
      const [cmd, ...args] = argv;
      if (cmd === undefined) return Promise.resolve({ code: 127, stdout: '', stderr: 'empty command' });
      return new Promise((resolve) => {
        const child = execFile(
          cmd,
          args,
          { timeout: COMMAND_TIMEOUT_MS, maxBuffer: COMMAND_MAX_BUFFER, encoding: 'utf8', env },
          (err, stdout, stderr) => {
            if (!err) return resolve({ code: 0, stdout, stderr });
            const e = err as NodeJS.ErrnoException & { code?: unknown };
            const code = typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1;
            resolve({
              code,
              stdout: String(stdout ?? ''),
              stderr: String(stderr ?? '') || errorMessage(err),
            });
          },
        );
        if (opts.input !== undefined) child.stdin?.end(opts.input);
        else child.stdin?.end();
      });
    },
  };
}

/** Runs a command and throws IMDSGUARD_E_HOST_COMMAND (quoting argv and stderr) when it fails. */
export async function mustRun(
  runner: CommandRunner,
  argv: readonly string[],
  opts: { input?: string } = {},
): Promise<CommandResult> {
  const r = await runner.run(argv, opts);
  if (r.code !== 0) {
    throw new ImdsguardError(
      'IMDSGUARD_E_HOST_COMMAND',
      `${argv.join(' ')} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(0, 5).join(' | ')}`,
      {
        hint:
          r.code === 127
            ? `${argv[0]} is not installed (see docs/install.md)`
            : 'run as root; see docs/install.md',
        details: { argv: [...argv], exit: r.code },
      },
    );
  }
  return r;
}
