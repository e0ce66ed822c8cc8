import { writeFiles } from './files-io.js';
import { sweepRouteLocalnet } from './interfaces-io.js';
import type { InstallPlan } from './plan.js';
import { applyRules, type RuleApplyOptions } from './rules-io.js';
import type { CommandRunner } from './runner.js';
import { emptyState, readState, writeState } from './state-io.js';
import { runSystemd } from './system-io.js';
import { type ApplyReport, containerInterfaces } from './types.js';

/**
 * Install: applies a plan in order (files, the record, the rules behind the health gate, route_localnet
 * on the container interfaces, systemd), recording what it created so that uninstall can undo exactly
 * that. With rulesOnly (the unit hooks, the Kubernetes init container) only the rules and
 * route_localnet. route_localnet comes after the rules: never without the rule that drops the
 * interfaces' other traffic to 127.0.0.0/8.
 */

export interface InstallApplyOptions {
  rulesOnly: boolean;
  rules: RuleApplyOptions;
  /** True when this run created the guard user (uninstall then deletes it). */
  userCreated: boolean;
  /** Where the kernel's sysctl tree is (DEFAULT_SYSCTL_ROOT unless a container mounts it elsewhere). */
  sysctlRoot: string;
}

export async function installApply(
  runner: CommandRunner,
  plan: InstallPlan,
  o: InstallApplyOptions,
  report: ApplyReport,
): Promise<void> {
  const opts = plan.options;
  const { root, backend, port, ipv6, bridges, podInterfaces, failMode } = opts;
  const user = opts.user.name;
  const state = o.rulesOnly ? undefined : ((await readState(root)) ?? emptyState({ ...opts, user }));
  if (state) {
    Object.assign(state, {
      backend,
      port,
      user,
      ipv6,
      bridges: [...bridges],
      podInterfaces: [...podInterfaces],
      failMode,
    });
    if (o.userCreated) state.userCreated = true;
    await writeFiles(root, plan.files, opts.user.gid, state, report);
    // Recorded before the rules, so uninstall can undo the files even if the health gate refuses.
    await writeState(root, state);
  }
  const created = await applyRules(runner, opts, plan.rules, o.rules, report);
  const ifaces = containerInterfaces(opts);
  if (ifaces.length > 0) await sweepRouteLocalnet(ifaces, o.sysctlRoot, root, report);
  if (state) {
    for (const t of created) if (!state.createdTables.includes(t)) state.createdTables.push(t);
    await writeState(root, state);
    await runSystemd(runner, plan.systemd, root, report);
  }
}
