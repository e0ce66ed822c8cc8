import type { CommandSpec } from '../context.js';

/**
 * The command table, in the order --help lists them. The name and one-line summary live here, so
 * the top-level --help and --version load no command module; each command's module (its options and
 * examples) is loaded only when a command line names it, and the module imports its implementation
 * only when it runs. The guard daemon never loads the AWS SDK, and short commands start fast
 * (bench/startup measures it). A test checks that every summary matches its module's.
 */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<CommandSpec>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'demo',
    summary:
      'Start an emulator and a guard on loopback, replay real-client and attack requests, print verdicts.',
    load: async () => (await import('./demo.js')).demoCommand,
  },
  {
    name: 'emulate',
    summary:
      'Run a faithful IMDSv1/v2 emulator (AWS, or another cloud flavour) for tests and readiness checks.',
    load: async () => (await import('./emulate.js')).emulateCommand,
  },
  {
    name: 'guard',
    summary: 'Run the guard: a policy-enforcing reverse proxy in front of the metadata service.',
    load: async () => (await import('./guard.js')).guardCommand,
  },
  {
    name: 'events',
    summary:
      "Query the guard's events (its SQLite store or JSON-lines file): every request, who made it, and what the guard did.",
    load: async () => (await import('./events.js')).eventsCommand,
  },
  {
    name: 'callers',
    summary:
      'Per process: IMDSv1 and IMDSv2 calls, token requests, last seen (what breaks if v2 is enforced).',
    load: async () => (await import('./callers.js')).callersCommand,
  },
  {
    name: 'report',
    summary: 'Write a self-contained HTML (or JSON) report of the guard events on this host.',
    load: async () => (await import('./report.js')).reportCommand,
  },
  {
    name: 'install',
    summary:
      'Print or apply the redirect rules, service user and systemd unit that put the guard in front of IMDS.',
    load: async () => (await import('./install.js')).installCommand,
  },
  {
    name: 'uninstall',
    summary: 'Print or apply the removal of exactly what install added.',
    load: async () => (await import('./uninstall.js')).uninstallCommand,
  },
  {
    name: 'doctor',
    summary:
      'Check the redirect (and the container interfaces), the guard, its exemption, IMDS reachability, capabilities and the attribution addon on this host.',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  {
    name: 'fleet',
    summary: 'Inventory, measure, harden and roll back IMDS settings across an AWS fleet.',
    load: async () => (await import('./fleet/index.js')).fleetCommand,
  },
];

/**
 * The entries a command line runs: the one it names (also after `help`), else none. The other
 * commands are listed from the table alone (top-level help, "did you mean" suggestions).
 */
export function entriesFor(argv: readonly string[]): readonly CommandEntry[] {
  const positionals = argv.filter((a) => !a.startsWith('-'));
  const named = positionals[0] === 'help' ? positionals[1] : positionals[0];
  const entry = COMMANDS.find((c) => c.name === named);
  return entry ? [entry] : [];
}
