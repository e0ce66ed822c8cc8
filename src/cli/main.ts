#!/usr/bin/env node
import type { CliContext } from './context.js';
import { runCli } from './program.js';
import { reportError } from './report-error.js';

/**
 * The one exit point of imdsguard. Everything else throws or returns an exit code.
 * Exit codes: 0 ok, 1 findings or failed changes (or a runtime failure), 2 usage or configuration error.
 */
function realContext(): CliContext {
  const reloadHandlers = new Set<() => void>();
  process.on('SIGHUP', () => {
    for (const h of reloadHandlers) h();
  });
  const shutdown = new Promise<string>((resolve) => {
    const stop = (sig: string) => () => resolve(sig);
    process.once('SIGINT', stop('SIGINT'));
    process.once('SIGTERM', stop('SIGTERM'));
  });
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    shutdown,
    onReload(handler) {
      reloadHandlers.add(handler);
      return () => reloadHandlers.delete(handler);
    },
    async confirm(question) {
      if (!process.stdin.isTTY || !process.stderr.isTTY) return false;
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        const answer = await rl.question(`${question} [y/N] `);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
      }
    },
    exitCode: 0,
  };
}

async function main(): Promise<void> {
  const ctx = realContext();
  try {
    process.exitCode = await runCli(process.argv.slice(2), ctx);
  } catch (err) {
    process.exitCode = reportError(err, process.stderr, process.env['IMDSGUARD_DEBUG'] === '1');
  }
  // Long-running commands resolve after their servers closed; anything left (timers, sockets) is a bug,
  // but it must not keep a finished command alive.
  // Exit only once stdout and stderr have flushed, so large piped output is never cut short.
  if (process.env['IMDSGUARD_NO_FORCE_EXIT'] !== '1') {
    await Promise.all([drained(process.stdout), drained(process.stderr)]);
    process.exit();
  }
}

function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write('', () => resolve());
  });
}

// Not a top-level await: the release bundles this file as the script of a single executable
// (CommonJS). main() never rejects.
void main();
