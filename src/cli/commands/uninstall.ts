import { installedBackends } from '../../host/rules-io.js';
import { execRunner } from '../../host/runner.js';
import { readState } from '../../host/state-io.js';
import { type ApplyReport, PATHS } from '../../host/types.js';
import { uninstallApply } from '../../host/uninstall-io.js';
import { addOutputOptions, readOutputOptions } from '../common-options.js';
import type { CliContext, CommandSpec } from '../context.js';
import { parseBackend, parseRoot, parseSysctlRoot } from '../host-options.js';
import { HOST_OUTPUT, writeReport } from './install.js';

interface UninstallFlags {
  apply?: boolean;
  backend?: string;
  root?: string;
  rulesOnly?: boolean;
  sysctlRoot?: string;
  json?: boolean;
}

async function run(flags: UninstallFlags, ctx: CliContext): Promise<void> {
  const runner = execRunner({ ...ctx.env } as NodeJS.ProcessEnv);
  const root = parseRoot(flags.root, ctx.cwd);
  const backend = parseBackend(flags.backend);
  if (!flags.apply) {
    const state = await readState(root);
    const backends = backend ? [backend] : await installedBackends(runner);
    const lines = [
      '# imdsguard uninstall plan. Nothing was changed; re-run with --apply.',
      `# rules: remove every imdsguard rule and chain (${backends.length > 0 ? backends.join(', ') : 'none found'})`,
    ];
    if (!flags.rulesOnly) {
      for (const f of state?.files ?? []) lines.push(`# file: remove ${f.path} (if unchanged since install)`);
      for (const s of state?.sysctl ?? []) lines.push(`# sysctl: restore ${s.path} = ${s.previous}`);
      lines.push(`# route_localnet: restore the interfaces recorded in ${PATHS.routeLocalnet}, if any`);
      for (const t of state?.createdTables ?? []) lines.push(`# table: delete ${t} if left empty`);
      if (state?.userCreated) lines.push(`# user: delete ${state.user}`);
      if (!state)
        lines.push(`# no install record at ${PATHS.state}: files are removed only if they carry our header`);
    }
    if (flags.json)
      ctx.stdout.write(`${JSON.stringify({ applied: false, backends, state: state ?? null })}\n`);
    else ctx.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  const report: ApplyReport = { changes: [], notes: [] };
  await uninstallApply(
    runner,
    { root, backend, rulesOnly: flags.rulesOnly === true, sysctlRoot: parseSysctlRoot(flags.sysctlRoot) },
    report,
  );
  writeReport(ctx, report, flags.json === true, { applied: true });
}

export const uninstallCommand: CommandSpec = {
  name: 'uninstall',
  summary: 'Print or apply the removal of exactly what install added.',
  examples: [
    ['imdsguard uninstall', 'print what would be removed'],
    ['sudo imdsguard uninstall --apply', 'remove the rules, files, unit (and the user install created)'],
    ['sudo imdsguard uninstall --apply --json', 'the same, with what was removed as JSON'],
  ],
  configure(cmd, ctx) {
    cmd
      .option('--apply', 'apply the removal (default: print it)')
      .option('--backend <backend>', 'iptables|nftables (default: every backend holding imdsguard rules)')
      .option('--root <dir>', 'the prefix install wrote its files under (default: /)')
      .option(
        '--rules-only',
        'only remove the redirect rules and the route_localnet switches (used by the unit hooks)',
      )
      .option(
        '--sysctl-root <dir>',
        "where the host's /proc/sys is mounted, in a container (default: /proc/sys)",
      );
    addOutputOptions(cmd, HOST_OUTPUT).action((flags: UninstallFlags & Record<string, unknown>) =>
      run({ ...flags, json: readOutputOptions(flags, HOST_OUTPUT).format === 'json' }, ctx),
    );
  },
};
