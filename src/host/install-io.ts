import { enableRouteLocalnet, writeFiles } from './files-io.js';
import type { InstallPlan } from './plan.js';
import { applyRules, type RuleApplyOptions } from './rules-io.js';
import type { CommandRunner } from './runner.js';
import { emptyState, readState, writeState } from './state-io.js';
import { runSystemd } from './system-io.js';
import type { ApplyReport } from './types.js';

/**
 * Install: applies a plan in order (files, sysctl switches, the record, the rules behind the health
 * gate, systemd), recording what it created so that uninstall can undo exactly that. With rulesOnly
 * (the unit hooks) only the rules are brought to the plan.
 */

export interface InstallApplyOptions {
  rulesOnly: boolean;
  rules: RuleApplyOptions;
  /** True when this run created the guard user (uninstall then deletes it). */
  userCreated: boolean;
}

export async function installApply(
  runner: CommandRunner,
  plan: InstallPlan,
  o: InstallApplyOptions,
  report: ApplyReport,
): Promise<void> {
  const opts = plan.options;
  const { root, backend, port, ipv6, bridges, failMode } = opts;
  const user = opts.user.name;
  const state = o.rulesOnly ? undefined : ((await readState(root)) ?? emptyState({ ...opts, user }));
  if (state) {
    Object.assign(state, { backend, port, user, ipv6, bridges: [...bridges], failMode });
    if (o.userCreated) state.userCreated = true;
    await writeFiles(root, plan.files, opts.user.gid, state, report);
    await enableRouteLocalnet(bridges, state, report);
    // Recorded before the rules, so uninstall can undo the files even if the health gate refuses.
    await writeState(root, state);
  }
  const created = await applyRules(runner, opts, plan.rules, o.rules, report);
  if (state) {
    for (const t of created) if (!state.createdTables.includes(t)) state.createdTables.push(t);
    await writeState(root, state);
    await runSystemd(runner, plan.systemd, root, report);
  }
}
