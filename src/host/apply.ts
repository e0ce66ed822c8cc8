import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ImdsguardError } from '../errors.js';
import { type HealthTarget, waitHealthy } from './http-probe.js';
import {
  IPT_CHAINS,
  IPT_TOOLS,
  type IptDesired,
  isPristineTable,
  parseIptablesSave,
  reconcileIptables,
} from './iptables.js';
import { nftDeleteArgs, nftListArgs, nftUpToDate } from './nftables.js';
import type { InstallPlan } from './plan.js';
import { type CommandRunner, mustRun } from './runner.js';
import { FILE_MARK, routeLocalnetPath } from './systemd.js';
import { type Backend, type FileSpec, type GuardUser, PATHS, type RuleOptions, UNIT_NAME } from './types.js';

/**
 * The thin I/O layer: runs the commands the pure planners compute (iptables, ip6tables, nft,
 * useradd, systemctl) through a CommandRunner and writes files under the root prefix.
 */

/** What install recorded, so uninstall removes exactly that. Kept at PATHS.state under the root. */
export interface InstallState {
  version: 1;
  backend: Backend;
  port: number;
  user: string;
  userCreated: boolean;
  ipv6: boolean;
  bridges: string[];
  failMode: string;
  /** Tables the first install created (e.g. "ip nat" by iptables-nft); deleted again if left empty. */
  createdTables: string[];
  /** route_localnet switches install turned on, with the value they had before. */
  sysctl: Array<{ path: string; previous: string }>;
  /** Files install wrote, with the digest of what it wrote (a changed file is kept on uninstall). */
  files: Array<{ path: string; sha256: string }>;
  /** Directories install created (removed on uninstall when empty). */
  createdDirs: string[];
}

export interface ApplyReport {
  /** One line per change made ("added ...", "wrote ..."); empty when nothing changed. */
  changes: string[];
  /** Notes that are not changes ("kept existing ...", "systemd is not PID 1 ..."). */
  notes: string[];
}

export function rooted(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Users

/** Looks a user up with getent (host NSS). uid/gid undefined when it does not exist. */
export async function lookupUser(
  runner: CommandRunner,
  name: string,
): Promise<{ uid: number; gid: number } | undefined> {
  const r = await runner.run(['getent', 'passwd', name]);
  if (r.code !== 0) return undefined;
  const f = r.stdout.trim().split(':');
  if (f.length < 4) return undefined;
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/**
 * Resolves the guard user. An explicit --user must exist; the default user is created on --apply
 * (never with a --root prefix other than /: a package's postinst creates it there).
 */
export async function resolveGuardUser(
  runner: CommandRunner,
  name: string,
  explicit: boolean,
  apply: boolean,
  root: string,
  report: ApplyReport,
  useradd: readonly string[] | undefined,
): Promise<GuardUser & { created: boolean }> {
  const found = await lookupUser(runner, name);
  if (found) return { name, uid: found.uid, gid: found.gid, create: false, created: false };
  if (explicit) {
    throw new ImdsguardError('IMDSGUARD_E_HOST_USER', `user "${name}" does not exist`, {
      hint: 'pass an existing user with --user, or leave --user out to create the imdsguard system user',
    });
  }
  if (!apply) return { name, uid: undefined, gid: undefined, create: true, created: false };
  if (root !== '/' || !useradd) {
    throw new ImdsguardError(
      'IMDSGUARD_E_HOST_USER',
      `user "${name}" does not exist and install does not create users under --root ${root}`,
      { hint: 'create it in the package (useradd --system) or pass an existing --user' },
    );
  }
  await mustRun(runner, useradd);
  report.changes.push(`created system user ${name}`);
  const made = await lookupUser(runner, name);
  if (!made) throw new ImdsguardError('IMDSGUARD_E_HOST_USER', `user "${name}" was not created`);
  return { name, uid: made.uid, gid: made.gid, create: false, created: true };
}

// ---------------------------------------------------------------------------------------------------
// Backend detection

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

// ---------------------------------------------------------------------------------------------------
// Rules

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
  plan: InstallPlan['rules'],
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

// ---------------------------------------------------------------------------------------------------
// Files and sysctl

/** mkdir -p that returns the directories it created, outermost first. */
async function mkdirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  let d = dir;
  while (!(await exists(d))) {
    missing.unshift(d);
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  if (missing.length > 0) await mkdir(dir, { recursive: true, mode: 0o755 });
  return missing;
}

export async function writeFiles(
  root: string,
  files: readonly FileSpec[],
  gid: number | undefined,
  state: InstallState,
  report: ApplyReport,
): Promise<void> {
  for (const f of files) {
    const path = rooted(root, f.path);
    for (const d of await mkdirs(dirname(path))) {
      if (!state.createdDirs.includes(d)) state.createdDirs.push(d);
    }
    const current = await readText(path);
    const recorded = state.files.find((x) => x.path === f.path);
    if (current !== undefined && f.keepExisting) {
      // A file the user may have edited: never overwrite; still ours if we wrote it.
      if (!recorded) report.notes.push(`kept existing ${path}`);
      continue;
    }
    if (current !== f.content) {
      const tmp = `${path}.imdsguard-tmp`;
      await writeFile(tmp, f.content, { mode: f.mode });
      await rename(tmp, path);
      report.changes.push(`${current === undefined ? 'wrote' : 'updated'} ${path}`);
    }
    await chmod(path, f.mode);
    if (f.group === 'guard' && gid !== undefined) await chown(path, 0, gid).catch(() => undefined);
    const digest = sha256(f.content);
    if (recorded) recorded.sha256 = digest;
    else state.files.push({ path: f.path, sha256: digest });
  }
}

/** Turns on route_localnet for bridges that exist now (the sysctl file covers later ones). */
export async function enableRouteLocalnet(
  bridges: readonly string[],
  state: InstallState,
  report: ApplyReport,
): Promise<void> {
  for (const b of bridges) {
    const path = routeLocalnetPath(b);
    const value = (await readText(path))?.trim();
    if (value === undefined) {
      report.notes.push(`bridge ${b} does not exist yet (the sysctl file applies when it appears)`);
      continue;
    }
    if (value === '1') continue;
    if (!state.sysctl.some((s) => s.path === path)) state.sysctl.push({ path, previous: value });
    await writeFile(path, '1\n');
    report.changes.push(`set ${path} = 1 (was ${value})`);
  }
}

// ---------------------------------------------------------------------------------------------------
// State

export function emptyState(opts: {
  backend: Backend;
  port: number;
  user: string;
  ipv6: boolean;
  bridges: readonly string[];
  failMode: string;
}): InstallState {
  return {
    version: 1,
    backend: opts.backend,
    port: opts.port,
    user: opts.user,
    userCreated: false,
    ipv6: opts.ipv6,
    bridges: [...opts.bridges],
    failMode: opts.failMode,
    createdTables: [],
    sysctl: [],
    files: [],
    createdDirs: [],
  };
}

export async function readState(root: string): Promise<InstallState | undefined> {
  const text = await readText(rooted(root, PATHS.state));
  if (text === undefined) return undefined;
  try {
    const s = JSON.parse(text) as InstallState;
    return s.version === 1 ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function writeState(root: string, state: InstallState): Promise<void> {
  const path = rooted(root, PATHS.state);
  for (const d of await mkdirs(dirname(path))) {
    if (!state.createdDirs.includes(d)) state.createdDirs.push(d);
  }
  const text = `${JSON.stringify(state, null, 2)}\n`;
  if ((await readText(path)) === text) return;
  await writeFile(path, text, { mode: 0o644 });
}

// ---------------------------------------------------------------------------------------------------
// systemd

/** True when systemd is the init system (the sd_booted() test). */
export async function systemdBooted(): Promise<boolean> {
  return exists('/run/systemd/system');
}

export async function runSystemd(
  runner: CommandRunner,
  commands: ReadonlyArray<{ argv: readonly string[] }>,
  root: string,
  report: ApplyReport,
): Promise<void> {
  if (commands.length === 0) return;
  if (root !== '/') {
    report.notes.push(`--root ${root}: not running systemctl (enable the unit on the target system)`);
    return;
  }
  if (!(await systemdBooted())) {
    report.notes.push('systemd is not PID 1: not running systemctl');
    return;
  }
  for (const c of commands) {
    await mustRun(runner, c.argv);
    report.changes.push(c.argv.join(' '));
  }
}

// ---------------------------------------------------------------------------------------------------
// Uninstall

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

  for (const s of state?.sysctl ?? []) {
    if (await exists(s.path)) {
      await writeFile(s.path, `${s.previous}\n`);
      report.changes.push(`restored ${s.path} = ${s.previous}`);
    }
  }
  const known = state?.files ?? [
    { path: PATHS.unit, sha256: '' },
    { path: PATHS.sysctl, sha256: '' },
    { path: PATHS.config, sha256: '' },
    { path: PATHS.env, sha256: '' },
  ];
  for (const f of known) {
    const path = rooted(opts.root, f.path);
    const text = await readText(path);
    if (text === undefined) continue;
    const ours = f.sha256 ? sha256(text) === f.sha256 : text.startsWith(FILE_MARK);
    if (!ours) {
      report.notes.push(`kept ${path} (changed since install)`);
      continue;
    }
    await rm(path);
    report.changes.push(`removed ${path}`);
  }
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
