import { ImdsguardError } from '../errors.js';
import {
  IPT_CHAINS,
  IPT_TOOLS,
  type IptDesired,
  isPristineTable,
  parseIptablesSave,
  reconcileIptables,
} from './iptables.js';
import { nftDeleteArgs, nftListArgs, nftUpToDate } from './nftables.js';
import type { RulePlan } from './plan.js';
import { type HealthTarget, waitHealthy } from './probe-io.js';
import { type CommandRunner, mustRun } from './runner.js';
import type { ApplyReport, Backend, RuleOptions } from './types.js';

/**
 * The redirect rules on the live system: which backend to use, bringing the rules to the plan (only
 * the difference, behind the health gate), and removing every rule of ours.
 */

async function iptablesVariant(runner: CommandRunner): Promise<'nft' | 'legacy' | undefined> {
  const v = await runner.run(['iptables', '--version']);
  if (v.code !== 0) return undefined;
  return /nf_tables/.test(v.stdout) ? 'nft' : 'legacy';
}

/** Which backends hold an imdsguard installation right now. */
export async function installedBackends(runner: CommandRunner): Promise<Backend[]> {
  const found: Backend[] = [];
  const nft = await runner.run(['nft', ...nftListArgs()]);
  if (nft.code === 0) found.push('nftables');
  for (const fam of ['ipv4', 'ipv6'] as const) {
    const save = await runner.run([IPT_TOOLS[fam].save]);
    if (save.code === 0 && new RegExp(`^:${IPT_CHAINS.output} `, 'm').test(save.stdout)) {
      if (!found.includes('iptables')) found.push('iptables');
    }
  }
  return found;
}

/**
 * The backend to use: an existing installation wins; else nftables when nft works and iptables is
 * absent or itself nf_tables-based; else iptables.
 */
export async function detectBackend(runner: CommandRunner): Promise<Backend> {
  const installed = await installedBackends(runner);
  if (installed[0]) return installed[0];
  const nft = await runner.run(['nft', '--version']);
  const ipt = await iptablesVariant(runner);
  if (nft.code === 0 && ipt !== 'legacy') return 'nftables';
  if (ipt) return 'iptables';
  throw new ImdsguardError('IMDSGUARD_E_HOST_BACKEND', 'neither nft nor iptables works on this host', {
    hint: 'install nftables or iptables (and run as root), or pass --backend',
  });
}

interface PendingRules {
  /** Commands to run, in order (empty: the rules are already exactly in place). */
  commands: Array<{ argv: string[]; input?: string; describe: string }>;
  createdTables: string[];
}

async function readSave(runner: CommandRunner, family: 'ipv4' | 'ipv6', needed: boolean) {
  const r = await runner.run([IPT_TOOLS[family].save]);
  if (r.code !== 0) {
    if (!needed) return undefined;
    throw new ImdsguardError(
      'IMDSGUARD_E_HOST_COMMAND',
      `${IPT_TOOLS[family].save} failed (exit ${r.code}): ${r.stderr.trim()}`,
      { hint: 'run as root; is iptables installed?' },
    );
  }
  return parseIptablesSave(r.stdout);
}

async function pendingIptables(
  runner: CommandRunner,
  desired: { ipv4: IptDesired; ipv6: IptDesired },
): Promise<PendingRules> {
  const out: PendingRules = { commands: [], createdTables: [] };
  for (const d of [desired.ipv4, desired.ipv6]) {
    const needed = d.chains.length > 0;
    const current = await readSave(runner, d.family, needed);
    if (!current) continue;
    const rec = reconcileIptables(current, d);
    const tool = IPT_TOOLS[d.family];
    if (rec.commands.length > 0) {
      for (const t of rec.createsTables) out.createdTables.push(`${tool.nftFamily} ${t}`);
    }
    for (const args of rec.commands) {
      out.commands.push({ argv: [tool.tool, ...args], describe: `${tool.tool} ${args.join(' ')}` });
    }
  }
  return out;
}

async function pendingNft(runner: CommandRunner, opts: RuleOptions, script: string): Promise<PendingRules> {
  const listing = await runner.run(['nft', ...nftListArgs()]);
  if (listing.code === 0 && nftUpToDate(listing.stdout, opts)) return { commands: [], createdTables: [] };
  return {
    commands: [
      {
        argv: ['nft', '-f', '-'],
        input: script,
        describe: `nft: ${listing.code === 0 ? 'replaced' : 'added'} table inet imdsguard`,
      },
    ],
    createdTables: [],
  };
}

export interface RuleApplyOptions {
  force: boolean;
  health: HealthTarget;
  /** How long to wait for the guard to become healthy (ms); 0 checks once. */
  healthWaitMs: number;
}

/**
 * Brings the rules to the plan. Refuses (IMDSGUARD_E_GUARD_UNHEALTHY) when a change is needed and the
 * guard is not healthy, unless forced. Returns the tables it created.
 */
export async function applyRules(
  runner: CommandRunner,
  opts: RuleOptions,
  plan: RulePlan,
  ra: RuleApplyOptions,
  report: ApplyReport,
): Promise<string[]> {
  // Switching backends: remove the other backend's rules first so both never redirect at once.
  const other: Backend = plan.backend === 'nftables' ? 'iptables' : 'nftables';
  const pending =
    plan.backend === 'nftables'
      ? await pendingNft(runner, opts, plan.nftScript ?? '')
      : await pendingIptables(runner, plan.iptables ?? { ipv4: emptyFam('ipv4'), ipv6: emptyFam('ipv6') });
  if (pending.commands.length === 0) {
    report.notes.push(`redirect rules (${plan.backend}) already in place`);
  } else {
    if (!ra.force) {
      const h = await waitHealthy(ra.health, ra.healthWaitMs);
      if (!h.healthy) {
        throw new ImdsguardError(
          'IMDSGUARD_E_GUARD_UNHEALTHY',
          `the guard is not healthy (${h.detail}); refusing to redirect IMDS to it`,
          {
            hint: 'start the guard first (systemctl start imdsguard, or imdsguard guard), point --health-url at its /healthz, or pass --force to redirect anyway (IMDS is then unreachable until the guard runs)',
          },
        );
      }
      report.notes.push(`guard healthy: ${h.detail}`);
    }
    for (const c of pending.commands) {
      await mustRun(runner, c.argv, c.input === undefined ? {} : { input: c.input });
      report.changes.push(c.describe);
    }
  }
  if ((await installedBackends(runner)).includes(other)) {
    await removeRules(runner, other, [], report);
  }
  return pending.createdTables;
}

function emptyFam(family: 'ipv4' | 'ipv6'): IptDesired {
  return { family, chains: [], jumps: [] };
}

/** Removes every imdsguard rule of a backend; then deletes tables install created that are now empty. */
export async function removeRules(
  runner: CommandRunner,
  backend: Backend,
  createdTables: readonly string[],
  report: ApplyReport,
): Promise<void> {
  if (backend === 'nftables') {
    const listing = await runner.run(['nft', ...nftListArgs()]);
    if (listing.code === 0) {
      await mustRun(runner, ['nft', ...nftDeleteArgs()]);
      report.changes.push('nft delete table inet imdsguard');
    }
    return;
  }
  const variant = await iptablesVariant(runner);
  for (const fam of ['ipv4', 'ipv6'] as const) {
    const current = await readSave(runner, fam, false);
    if (!current) continue;
    const tool = IPT_TOOLS[fam];
    for (const args of reconcileIptables(current, emptyFam(fam)).commands) {
      await mustRun(runner, [tool.tool, ...args]);
      report.changes.push(`${tool.tool} ${args.join(' ')}`);
    }
    if (variant !== 'nft') continue;
    const after = await readSave(runner, fam, false);
    for (const entry of createdTables) {
      const [nftFamily, table] = entry.split(' ');
      if (nftFamily !== tool.nftFamily || !table) continue;
      if (isPristineTable(after?.get(table))) {
        const del = await runner.run(['nft', 'delete', 'table', nftFamily, table]);
        if (del.code === 0)
          report.changes.push(`nft delete table ${nftFamily} ${table} (empty; created by install)`);
        else
          report.notes.push(
            `kept empty table ${nftFamily} ${table}: ${del.stderr.trim() || `exit ${del.code}`}`,
          );
      }
    }
  }
}
