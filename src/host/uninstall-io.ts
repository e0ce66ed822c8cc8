import { rm, rmdir } from 'node:fs/promises';
import { removeFiles, restoreSysctl } from './files-io.js';
import { installedBackends, removeRules } from './rules-io.js';
import { type CommandRunner, mustRun } from './runner.js';
import { exists, readState, rooted } from './state-io.js';
import { systemdBooted } from './system-io.js';
import { type ApplyReport, type Backend, PATHS, UNIT_NAME } from './types.js';

/** Uninstall: removes exactly what install recorded, in the reverse order of install. */

export interface UninstallOptions {
  root: string;
  /** undefined: every backend that holds our rules. */
  backend: Backend | undefined;
  rulesOnly: boolean;
}

export async function uninstallApply(
  runner: CommandRunner,
  opts: UninstallOptions,
  report: ApplyReport,
): Promise<void> {
  const state = opts.rulesOnly ? undefined : await readState(opts.root);
  const unitPath = rooted(opts.root, PATHS.unit);
  if (!opts.rulesOnly && opts.root === '/' && (await exists(unitPath)) && (await systemdBooted())) {
    // Stop first: in fail-open mode its ExecStopPost removes the rules too (harmless twice).
    await mustRun(runner, ['systemctl', 'disable', '--now', UNIT_NAME]);
    report.changes.push(`systemctl disable --now ${UNIT_NAME}`);
  }
  const backends = opts.backend ? [opts.backend] : await installedBackends(runner);
  for (const b of backends) await removeRules(runner, b, state?.createdTables ?? [], report);
  if (opts.rulesOnly) return;

  await restoreSysctl(state, report);
  await removeFiles(opts.root, state, report);
  if (state?.files.some((f) => f.path === PATHS.unit) && opts.root === '/' && (await systemdBooted())) {
    await mustRun(runner, ['systemctl', 'daemon-reload']);
    report.changes.push('systemctl daemon-reload');
  }
  if (state?.userCreated && opts.root === '/') {
    const r = await runner.run(['userdel', state.user]);
    if (r.code === 0) report.changes.push(`deleted system user ${state.user}`);
    else report.notes.push(`could not delete user ${state.user}: ${r.stderr.trim()}`);
  }
  const statePath = rooted(opts.root, PATHS.state);
  if (await exists(statePath)) {
    await rm(statePath);
    report.changes.push(`removed ${statePath}`);
  }
  for (const d of [...(state?.createdDirs ?? [])].sort((a, b) => b.length - a.length)) {
    try {
      await rmdir(d);
      report.changes.push(`removed directory ${d}`);
    } catch {
      if (await exists(d)) report.notes.push(`kept ${d} (not empty)`);
    }
  }
}
