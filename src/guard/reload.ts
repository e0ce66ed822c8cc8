import type { ImdsguardConfig } from '../config/schema.js';

/**
 * PURE: what a reload (SIGHUP) does with a changed setting. The guard's policy, mode, rules, trap,
 * upstream and limits are applied at once (Guard.reload); events.file is reopened at its new path;
 * everything else a running guard cannot swap safely is named, so that a changed setting is never
 * silently ignored. No values are compared in messages: some are secrets (sink URLs, tokens).
 */

export interface ReloadPlan {
  /** events.file to reopen (the current one when unchanged); undefined when events go to stdout. */
  eventsFile: string | undefined;
  /** Settings that changed and take effect only after a restart, as dotted paths. */
  needRestart: string[];
}

/** Settings the running guard keeps until it restarts (guard.listen is named by Guard.reload). */
const RESTART_ONLY: ReadonlyArray<readonly [section: 'guard' | 'events' | 'alerts' | 'admin', key?: string]> =
  [
    ['guard', 'attribution'],
    ['events', 'stdout'],
    ['events', 'db'],
    ['events', 'retention'],
    ['events', 'bufferSize'],
    ['alerts'],
    ['admin'],
  ];

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The keys of two objects whose values differ. */
function changedKeys(a: object, b: object): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * `started` is the configuration the guard started with (what restart-only settings still are),
 * `eventsFile` the file its JSON lines go to now (undefined: the stream it started with).
 */
export function planReload(
  started: ImdsguardConfig,
  next: ImdsguardConfig,
  eventsFile: string | undefined,
): ReloadPlan {
  const running = started;
  const needRestart: string[] = [];
  for (const [section, key] of RESTART_ONLY) {
    if (key === undefined) {
      for (const k of changedKeys(running[section], next[section])) needRestart.push(`${section}.${k}`);
      continue;
    }
    const a = (running[section] as Record<string, unknown>)[key];
    const b = (next[section] as Record<string, unknown>)[key];
    if (!same(a, b)) needRestart.push(`${section}.${key}`);
  }
  // A file can be swapped for another; going back to stdout needs the stream the guard started with.
  if (eventsFile !== undefined && next.events.file === undefined) {
    needRestart.push('events.file');
    return { eventsFile, needRestart };
  }
  return { eventsFile: next.events.file, needRestart };
}
