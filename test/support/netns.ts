import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { RUN_TAG_KEY, RUN_TAG_RE } from './netns-cleanup.js';

/**
 * Network namespaces for end-to-end tests. Every namespace is created by the test, named with the
 * prefix "imdsg-", and deleted in cleanup even when the test fails. Nothing here touches the host's
 * own firewall or interfaces.
 */

export function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Netns {
  readonly name: string;
  /** Runs a command inside the namespace and returns its stdout (throws on a non-zero exit). */
  exec(cmd: string, args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): string;
  /** Like exec, but returns the exit status and output instead of throwing. */
  run(
    cmd: string,
    args: string[],
    opts?: { input?: string; env?: NodeJS.ProcessEnv },
  ): {
    status: number;
    stdout: string;
    stderr: string;
  };
  /** Starts a long-running process inside the namespace (killed by destroy()). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  destroy(): void;
}

/** This test run's netns tag (test/support/global-netns.ts), or undefined outside such a run. */
function runTag(): string | undefined {
  try {
    const tag = inject(RUN_TAG_KEY);
    return typeof tag === 'string' && RUN_TAG_RE.test(tag) ? tag : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates "imdsg-<label>-<random>-<run tag>". The run tag lets the global teardown remove the
 * namespaces of a worker that died before its afterAll; `opts.runTag` overrides it (tests of that
 * teardown use their own tag, so they cannot touch the namespaces of tests running alongside).
 */
export function createNetns(label: string, opts: { runTag?: string } = {}): Netns {
  const tag = opts.runTag ?? runTag();
  const name = `imdsg-${label}-${randomBytes(3).toString('hex')}${tag ? `-${tag}` : ''}`;
  execFileSync('ip', ['netns', 'add', name]);
  const children: ChildProcess[] = [];
  try {
    execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    throw err;
  }
  const prefix = (cmd: string, args: string[]) => ['netns', 'exec', name, cmd, ...args];
  const ns: Netns = {
    name,
    exec(cmd, args, opts = {}) {
      return execFileSync('ip', prefix(cmd, args), {
        encoding: 'utf8',
        input: opts.input,
        env: opts.env ?? process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    },
    run(cmd, args, opts = {}) {
      try {
        const stdout = ns.exec(cmd, args, opts);
        return { status: 0, stdout, stderr: '' };
      } catch (err) {
        const e = err as { status?: number; stdout?: string; stderr?: string };
        return { status: e.status ?? 1, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? '') };
      }
    },
    spawn(cmd, args, opts = {}) {
      const child = spawn('ip', prefix(cmd, args), { stdio: 'pipe', ...opts });
      children.push(child);
      return child;
    },
    destroy() {
      for (const c of children) {
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
      // Kill anything else still running inside the namespace, then delete it.
      try {
        const pids = execFileSync('ip', ['netns', 'pids', name], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        })
          .split(/\s+/)
          .filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // already gone
          }
        }
      } catch {
        // namespace already gone
      }
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        // already deleted
      }
    },
  };
  return ns;
}
