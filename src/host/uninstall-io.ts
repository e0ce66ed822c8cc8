import { rm, rmdir } from 'node:fs/promises';
import { removeFiles, restoreSysctl } from './files-io.js';
import { restoreRouteLocalnet } from './interfaces-io.js';
import { installedBackends, removeRules } from './rules-io.js';
import { type CommandRunner, mustRun } from './runner.js';
import { exists, readState, rooted } from './state-io.js';
import { systemdBooted } from './system-io.js';
import { type ApplyReport, type Backend, INTERFACES_UNIT_NAME, PATHS, UNIT_NAME } from './types.js';

/** Uninstall: removes exactly what install recorded, in the reverse order of install. */

export interface UninstallOptions {
  root: string;
  /** undefined: every backend that holds our rules. */
  backend: Backend | undefined;
  rulesOnly: boolean;
  /** Where the kernel's sysctl tree is (DEFAULT_SYSCTL_ROOT unless a container mounts it elsewhere). */
  sysctlRoot: string;
}

export async function uninstallApply(
  runner: CommandRunner,
  opts: UninstallOptions,
  report: ApplyReport,
): Promise<void> {
  const state = opts.rulesOnly ? undefined : await readState(opts.root);
  if (!opts.rulesOnly && opts.root === '/' && (await systemdBooted())) {
    // Stop first: in fail-open mode its ExecStopPost removes the rules too (harmless twice); the
    // interface watcher must not turn route_localnet on again once the drop rule is gone.
    for (const [unit, name] of [
      [PATHS.interfacesUnit, INTERFACES_UNIT_NAME],
      [PATHS.unit, UNIT_NAME],
    ] as const) {
      if (!(await exists(rooted(opts.root, unit)))) continue;
      await mustRun(runner, ['systemctl', 'disable', '--now', name]);
      report.changes.push(`systemctl disable --now ${name}`);
    }
  }
  // route_localnet goes back before the rules that drop other traffic to 127.0.0.0/8 go.
  await restoreRouteLocalnet(opts.sysctlRoot, opts.root, report);
  await restoreSysctl(state, report);
  const backends = opts.backend ? [opts.backend] : await installedBackends(runner);
  // Tables install created go even when the rules are gone already (a fail-open stop hook removed
  // them): removeRules deletes them once they are empty.
  if (!opts.backend && (state?.createdTables.length ?? 0) > 0 && !backends.includes('iptables'))
    backends.push('iptables');
  for (const b of backends) await removeRules(runner, b, state?.createdTables ?? [], report);
  if (opts.rulesOnly) return;

  await removeFiles(opts.root, state, report);
  const units = [PATHS.unit, PATHS.interfacesUnit] as string[];
  if (state?.files.some((f) => units.includes(f.path)) && opts.root === '/' && (await systemdBooted())) {
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
