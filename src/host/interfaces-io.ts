import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { routeLocalnetPath } from './files.js';
import { mkdirs, readText, rooted } from './state-io.js';
import { type ApplyReport, interfaceMatches, PATHS } from './types.js';

/**
 * route_localnet on container interfaces (bridges and pod interface patterns). The DNAT to the guard
 * on 127.0.0.1 is dropped as a martian unless the interface the packet arrived on has
 * route_localnet=1, and pod interfaces (one veth per pod) appear after install. A sweep turns it on
 * for every interface that matches, and records which ones it changed (PATHS.routeLocalnet), so that
 * uninstall puts exactly those back; the watcher runs the sweep whenever a link appears
 * (`ip -o monitor link`) and every WATCH_RESYNC_MS in any case.
 *
 * route_localnet=1 without the rule that drops the interface's other traffic to 127.0.0.0/8 would
 * let pods reach the host's loopback services (CVE-2020-8558): install sweeps only after the rules
 * are in place, uninstall restores before it removes them, and the watcher sweeps only while the
 * drop rule covers every pattern.
 *
 * Why not net.ipv4.conf.default.route_localnet=1: every interface created afterwards would inherit
 * it, the node's own ENIs (eth1...) included, letting the VPC reach those loopback services too, and
 * uninstall could not tell which interfaces to put back.
 */

/** Full re-sweep interval of the watcher (ms), a backstop for a missed or failed link monitor. */
export const WATCH_RESYNC_MS = 10_000;
/** Wait before restarting a link monitor that exited (ms), doubled up to WATCH_MONITOR_MAX_BACKOFF_MS. */
export const WATCH_MONITOR_BACKOFF_MS = 1_000;
export const WATCH_MONITOR_MAX_BACKOFF_MS = 30_000;
/** Most interfaces one sweep looks at (a node has a few hundred). */
export const MAX_INTERFACES = 65_536;

export interface RouteLocalnetRecord {
  version: 1;
  /** Interfaces whose route_localnet a sweep turned on, with the value they had. */
  changed: Array<{ name: string; previous: string }>;
}

/** The interfaces the kernel has IPv4 settings for (not lo, all or default). */
export async function listInterfaces(sysctlRoot: string): Promise<string[]> {
  const names = await readdir(`${sysctlRoot}/net/ipv4/conf`).catch(() => [] as string[]);
  return names.filter((n) => n !== 'all' && n !== 'default' && n !== 'lo').slice(0, MAX_INTERFACES);
}

/** route_localnet of each existing interface that matches a pattern (true when on). */
export async function routeLocalnetStates(
  patterns: readonly string[],
  sysctlRoot: string,
): Promise<Record<string, boolean>> {
  const out: Record<string, boolean> = {};
  for (const name of await listInterfaces(sysctlRoot)) {
    if (!patterns.some((p) => interfaceMatches(p, name))) continue;
    const v = await readFile(routeLocalnetPath(name, sysctlRoot), 'utf8').catch(() => undefined);
    if (v !== undefined) out[name] = v.trim() === '1';
  }
  return out;
}

async function readRecord(stateRoot: string): Promise<RouteLocalnetRecord> {
  const text = await readText(rooted(stateRoot, PATHS.routeLocalnet));
  try {
    const r = JSON.parse(text ?? '') as RouteLocalnetRecord;
    if (r.version === 1 && Array.isArray(r.changed)) return r;
  } catch {
    // absent or unreadable: nothing recorded
  }
  return { version: 1, changed: [] };
}

async function writeRecord(stateRoot: string, record: RouteLocalnetRecord): Promise<void> {
  const path = rooted(stateRoot, PATHS.routeLocalnet);
  await mkdirs(dirname(path));
  const tmp = `${path}.imdsguard-tmp`;
  await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

/**
 * Turns route_localnet on for every existing interface that matches a pattern (or name), recording
 * the ones it changed; forgets recorded interfaces that are gone (their pod ended).
 */
export async function sweepRouteLocalnet(
  patterns: readonly string[],
  sysctlRoot: string,
  stateRoot: string,
  report: ApplyReport,
): Promise<void> {
  const names = await listInterfaces(sysctlRoot);
  const record = await readRecord(stateRoot);
  const present = new Set(names);
  const changed = record.changed.filter((c) => present.has(c.name));
  const turnOn: Array<{ path: string; value: string }> = [];
  for (const name of names) {
    if (!patterns.some((p) => interfaceMatches(p, name))) continue;
    const path = routeLocalnetPath(name, sysctlRoot);
    const value = (await readText(path))?.trim();
    if (value === undefined || value === '1') continue; // gone meanwhile, or already on
    turnOn.push({ path, value });
    if (!changed.some((c) => c.name === name)) changed.push({ name, previous: value });
  }
  // Recorded before any write: a crash in between leaves a record that restores what was there.
  if (JSON.stringify(changed) !== JSON.stringify(record.changed)) {
    await writeRecord(stateRoot, { version: 1, changed });
  }
  for (const { path, value } of turnOn) {
    try {
      await writeFile(path, '1\n');
      report.changes.push(`set ${path} = 1 (was ${value})`);
    } catch (err) {
      // The interface went away between the read and the write: the next sweep forgets it.
      if ((await readText(path)) !== undefined) throw err;
    }
  }
}

/** Puts back route_localnet on the interfaces a sweep changed, and removes the record. */
export async function restoreRouteLocalnet(
  sysctlRoot: string,
  stateRoot: string,
  report: ApplyReport,
): Promise<void> {
  const path = rooted(stateRoot, PATHS.routeLocalnet);
  if ((await readText(path)) === undefined) return;
  for (const c of (await readRecord(stateRoot)).changed) {
    const sw = routeLocalnetPath(c.name, sysctlRoot);
    const value = (await readText(sw))?.trim();
    if (value !== '1') continue; // gone, or someone set it back already
    await writeFile(sw, `${c.previous}\n`);
    report.changes.push(`restored ${sw} = ${c.previous}`);
  }
  await rm(path);
  report.changes.push(`removed ${path}`);
}

export interface WatchOptions {
  patterns: readonly string[];
  sysctlRoot: string;
  stateRoot: string;
  /** Resolves when the watcher must stop. */
  stop: Promise<unknown>;
  /** Whether the rule dropping other traffic to 127.0.0.0/8 covers every pattern (checked each sweep). */
  guarded(): Promise<boolean>;
  /** Called with the changes and notes of each sweep that made or noted any. */
  onReport(report: ApplyReport): void;
  resyncMs?: number;
  /** The link monitor's argv (default `ip -o monitor link`). */
  monitor?: readonly string[];
}

/**
 * Sweeps now, then again whenever the link monitor prints a line and every resyncMs, until stop
 * resolves. Sweeps never overlap: an event during a sweep schedules one more. A sweep that fails is
 * reported and retried at the next event or resync.
 */
export async function watchPodInterfaces(o: WatchOptions): Promise<void> {
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  const sweep = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = sweepLoop().finally(() => {
      running = undefined;
    });
    return running;
  };
  const sweepLoop = async (): Promise<void> => {
    do {
      again = false;
      const report: ApplyReport = { changes: [], notes: [] };
      try {
        if (await o.guarded()) await sweepRouteLocalnet(o.patterns, o.sysctlRoot, o.stateRoot, report);
        else
          report.notes.push(
            'the loopback drop rule is not in place for every pattern: route_localnet left alone',
          );
      } catch (err) {
        report.notes.push(`sweep failed: ${(err as Error).message}`);
      }
      if (report.changes.length > 0 || report.notes.length > 0) o.onReport(report);
    } while (again && !stopped);
  };

  let child: ChildProcess | undefined;
  let backoff = WATCH_MONITOR_BACKOFF_MS;
  let restart: NodeJS.Timeout | undefined;
  const startMonitor = () => {
    if (stopped) return;
    const [cmd, ...args] = o.monitor ?? ['ip', '-o', 'monitor', 'link'];
    const c = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    child = c;
    c.stdout?.setEncoding('utf8');
    c.stdout?.on('data', () => {
      backoff = WATCH_MONITOR_BACKOFF_MS;
      void sweep();
    });
    const retry = (why: string) => {
      if (stopped || child !== c) return;
      child = undefined;
      o.onReport({ changes: [], notes: [`link monitor ${why}; restarting in ${backoff} ms`] });
      restart = setTimeout(startMonitor, backoff);
      backoff = Math.min(backoff * 2, WATCH_MONITOR_MAX_BACKOFF_MS);
    };
    c.on('error', (e) => retry(`failed: ${e.message}`));
    c.on('exit', (code, signal) => retry(`exited (${signal ?? code})`));
  };

  startMonitor();
  await sweep();
  const timer = setInterval(() => void sweep(), o.resyncMs ?? WATCH_RESYNC_MS);
  await o.stop;
  stopped = true;
  clearInterval(timer);
  if (restart) clearTimeout(restart);
  child?.kill();
  await running;
}
