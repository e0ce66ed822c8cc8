import type { Command } from 'commander';
import type { Output } from '../io/output.js';

/**
 * Everything a command may touch of the outside world. main.ts builds it from the real process;
 * tests build their own. Commands never read process.* directly.
 */
export interface CliContext {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Resolves when the user asks a long-running command to stop (SIGINT or SIGTERM). */
  readonly shutdown: Promise<string>;
  /** Registers a reload handler (SIGHUP). Returns an unsubscribe function. */
  onReload(handler: () => void): () => void;
  /** Asks a yes/no question on a TTY; resolves false when there is no TTY. */
  confirm(question: string): Promise<boolean>;
  /** The exit code a command asks for without throwing (1 for findings or failed changes). */
  exitCode: number;
}

/** One row of the command table. Each command lives in its own module under cli/commands. */
export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  /** [command line, what it does] pairs shown under "Examples:" in --help. */
  readonly examples: ReadonlyArray<readonly [string, string]>;
  /** Adds options, subcommands and the action to the commander command created for this spec. */
  configure(cmd: Command, ctx: CliContext): void;
}

/** Formats an examples block for commander's addHelpText. */
export function formatExamples(examples: ReadonlyArray<readonly [string, string]>): string {
  if (examples.length === 0) return '';
  const lines = ['', 'Examples:'];
  for (const [line, what] of examples) {
    lines.push(`  $ ${line}`);
    lines.push(`      ${what}`);
  }
  return lines.join('\n');
}

/** Attaches the examples of a spec (or a subcommand) to its help. */
export function withExamples(cmd: Command, examples: ReadonlyArray<readonly [string, string]>): Command {
  if (examples.length > 0) cmd.addHelpText('after', formatExamples(examples));
  return cmd;
}
