import type { CommandSpec } from '../context.js';

/**
 * The command table, in the order --help lists them. Each command lives in its own module and is
 * loaded only when it runs (or when help lists every command), so the guard daemon never loads the
 * AWS SDK and short commands start fast.
 */
export interface CommandEntry {
  readonly name: string;
  load(): Promise<CommandSpec>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'demo', load: async () => (await import('./demo.js')).demoCommand },
  { name: 'emulate', load: async () => (await import('./emulate.js')).emulateCommand },
  { name: 'guard', load: async () => (await import('./guard.js')).guardCommand },
  { name: 'events', load: async () => (await import('./events.js')).eventsCommand },
  { name: 'callers', load: async () => (await import('./callers.js')).callersCommand },
  { name: 'report', load: async () => (await import('./report.js')).reportCommand },
  { name: 'install', load: async () => (await import('./install.js')).installCommand },
  { name: 'uninstall', load: async () => (await import('./uninstall.js')).uninstallCommand },
  { name: 'doctor', load: async () => (await import('./doctor.js')).doctorCommand },
  { name: 'fleet', load: async () => (await import('./fleet/index.js')).fleetCommand },
];

/**
 * The entries a command line needs: the one it names (also after `help`), none for --version, or
 * every entry when it names none or an unknown one (top-level help, and "did you mean" suggestions).
 */
export function entriesFor(argv: readonly string[]): readonly CommandEntry[] {
  const positionals = argv.filter((a) => !a.startsWith('-'));
  if (positionals.length === 0 && argv.some((a) => a === '-V' || a === '--version')) return [];
  const named = positionals[0] === 'help' ? positionals[1] : positionals[0];
  const entry = COMMANDS.find((c) => c.name === named);
  return entry ? [entry] : COMMANDS;
}
