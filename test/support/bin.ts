/**
 * The real CLI binary (dist/cli/main.js, built by `npm run build`) for e2e tests, and the environment
 * that points it at fake AWS credentials and empty AWS config files (the machine's AWS configuration
 * is never read).
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fakeCredentialsEnv } from './fake-aws/index.js';

export const CLI_MAIN = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

/** Throws (fails the suite) when the binary is not built. */
export function requireBuild(): void {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run npm run build first`);
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunBinOptions {
  env: Record<string, string>;
  cwd?: string;
  /** Milliseconds before the child is killed (code -1). */
  timeoutMs?: number;
}

/** node dist/cli/main.js ARGS with exactly `env`; resolves with the exit code and output (64 MiB max). */
export function runBin(args: readonly string[], opts: RunBinOptions): Promise<CliRun> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [CLI_MAIN, ...args],
      {
        env: opts.env,
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/**
 * PATH, HOME=home, fake credentials, region us-east-1, no instance metadata, and the given AWS config
 * and credentials files (default: home/config and home/credentials).
 */
export function fakeAwsEnv(
  home: string,
  files: { config?: string; credentials?: string } = {},
): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: home,
    ...fakeCredentialsEnv(),
    AWS_CONFIG_FILE: files.config ?? join(home, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: files.credentials ?? join(home, 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/** Writes empty `config` and `credentials` files in dir and returns fakeAwsEnv(dir). */
export function emptyAwsConfig(dir: string): Record<string, string> {
  writeFileSync(join(dir, 'config'), '');
  writeFileSync(join(dir, 'credentials'), '');
  return fakeAwsEnv(dir);
}
