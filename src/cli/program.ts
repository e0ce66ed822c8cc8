import { Command, CommanderError } from 'commander';
import { ImdsguardError } from '../errors.js';
import { COMMANDS, entriesFor } from './commands/index.js';
import { type CliContext, formatExamples } from './context.js';
import { VERSION } from './version.js';

const TOP_EXAMPLES = [
  ['imdsguard demo', 'start an emulator and a guard on loopback and replay real and attack requests'],
  ['imdsguard emulate --tokens required --listen 127.0.0.1:1338', 'serve a faithful IMDS for tests'],
  [
    'imdsguard guard --mode monitor --events /var/log/imdsguard/events.jsonl',
    'find the IMDSv1 callers first',
  ],
  ['imdsguard fleet discover --all-regions --format json', 'inventory IMDS settings across the account'],
] as const;

/**
 * Builds the commander program from the command table. It never exits the process: errors become
 * ImdsguardError (usage errors included) and main.ts turns them into exit codes.
 */
export async function buildProgram(ctx: CliContext, argv: readonly string[] = []): Promise<Command> {
  const program = new Command('imdsguard');
  program
    .description('Protect the cloud instance metadata service: guard, fleet hardening and emulator.')
    .version(VERSION, '-V, --version', 'print the version')
    // Program options only before the command, so a command may have its own --version (events).
    .enablePositionalOptions()
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `${formatExamples(TOP_EXAMPLES)}\n\nExit codes: 0 ok, 1 findings or failed changes, 2 usage or configuration error.\nDocs: docs/ in the package (errors.md lists every IMDSGUARD_E_ code).`,
    );
  configureTree(program, ctx);
  const wanted = entriesFor(argv);
  const specs = new Map(await Promise.all(wanted.map(async (e) => [e.name, await e.load()] as const)));
  for (const entry of COMMANDS) {
    const cmd = program.command(entry.name).description(entry.summary);
    configureTree(cmd, ctx);
    // The others stay a name and a summary: enough for the command list and "did you mean".
    const spec = specs.get(entry.name);
    if (!spec) continue;
    spec.configure(cmd, ctx);
    if (spec.examples.length > 0) cmd.addHelpText('after', formatExamples(spec.examples));
  }
  return program;
}

/** Applies the output routing and error behaviour to a command (subcommands inherit via copyInheritedSettings). */
function configureTree(cmd: Command, ctx: CliContext): void {
  cmd.exitOverride();
  cmd.configureOutput({
    writeOut: (s) => ctx.stdout.write(s),
    writeErr: (s) => ctx.stderr.write(s),
    outputError: (s, write) => write(s),
  });
}

/** The commander codes that are not errors: help and version output. */
const BENIGN = new Set(['commander.helpDisplayed', 'commander.version', 'commander.help']);

/**
 * Parses argv and runs the selected command. Resolves with the exit code. Throws ImdsguardError for
 * usage errors (already printed by commander) and for command failures.
 */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const program = await buildProgram(ctx, argv);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (BENIGN.has(err.code) || err.exitCode === 0) return 0;
      throw new ImdsguardError('IMDSGUARD_E_USAGE', err.message.replace(/^error: /, ''), {
        cause: err,
        details: { printed: true, commanderCode: err.code },
      });
    }
    throw err;
  }
  return ctx.exitCode;
}
