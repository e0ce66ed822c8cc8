import { execFileSync } from 'node:child_process';

/**
 * Removes the network namespaces a test run leaked (a vitest worker that aborts never runs its
 * afterAll hooks, so createNetns() namespaces outlive it). Used by the vitest globalSetup
 * test/support/global-netns.ts.
 *
 * Safety: a namespace is deleted only when ALL of these hold:
 *  - its name matches NETNS_NAME_RE (the "imdsg-" prefix, plain characters, bounded length);
 *  - it ends with "-<run tag>", the random tag of this run that createNetns() appends (so namespaces
 *    of a concurrent test run or of a benchmark, also named "imdsg-...", are never touched);
 *  - it was not listed when the run started.
 * Nothing else on the host is changed: the only commands run are `ip netns list`, `ip netns pids`,
 * kill of the pids inside such a namespace, and `ip netns del`.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** This run's netns tag (RUN_TAG_RE), appended to every namespace createNetns() makes. */
    imdsgNetnsRunTag: string;
  }
}

/** The key under which global-netns.ts provides the run tag to the test workers (vitest inject()). */
export const RUN_TAG_KEY = 'imdsgNetnsRunTag' as const;
/** A run tag: 8 lowercase hex digits (32 random bits). */
export const RUN_TAG_RE = /^[0-9a-f]{8}$/;
/** Names createNetns() may produce, and the only names cleanup may delete. At most 200 characters. */
export const NETNS_NAME_RE = /^imdsg-[A-Za-z0-9_.-]{1,194}$/;
/** Most namespaces one cleanup deletes (a bound; a run creates a handful). */
export const MAX_CLEANUP = 1000;
/** Timeout of each `ip` command, milliseconds. */
export const IP_TIMEOUT_MS = 10_000;

/** Names from `ip netns list` output ("name" or "name (id: 3)" per line). */
export function parseNetnsList(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split('\n')) {
    const name = line.trim().split(/\s+/)[0];
    if (name) names.push(name);
  }
  return names;
}

/**
 * The namespaces to delete at the end of a run: in `after`, named like createNetns() names with this
 * run's tag, and not in `before`. Returns [] for a malformed tag. Sorted, without duplicates, at most
 * MAX_CLEANUP.
 */
export function namespacesToDelete(
  before: readonly string[],
  after: readonly string[],
  tag: string,
): string[] {
  if (!RUN_TAG_RE.test(tag)) return [];
  const existed = new Set(before);
  const suffix = `-${tag}`;
  return [...new Set(after)]
    .filter((n) => NETNS_NAME_RE.test(n) && n.endsWith(suffix) && n.length > 'imdsg-'.length + suffix.length)
    .filter((n) => !existed.has(n))
    .sort()
    .slice(0, MAX_CLEANUP);
}

/** Pids from `ip netns pids` output, one per line; anything that is not a pid > 1 is dropped. */
export function parsePids(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((s) => /^\d{1,10}$/.test(s))
    .map(Number)
    .filter((n) => n > 1 && n !== process.pid);
}

/** The namespaces on the host, or undefined when not root or `ip` is missing or fails. */
export function listNetns(): string[] | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    return parseNetnsList(
      execFileSync('ip', ['netns', 'list'], {
        encoding: 'utf8',
        timeout: IP_TIMEOUT_MS,
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
  } catch {
    return undefined;
  }
}

export interface CleanupResult {
  /** Namespaces deleted. */
  deleted: string[];
  /** Processes killed inside them. */
  killed: number;
  /** Namespaces that could not be deleted, with the reason. */
  failed: Array<{ name: string; error: string }>;
}

/**
 * Deletes this run's leaked namespaces (see namespacesToDelete), first killing (SIGKILL) the
 * processes still inside each. Does nothing when not root or `ip` is missing.
 */
export function cleanupRunNamespaces(before: readonly string[], tag: string): CleanupResult {
  const result: CleanupResult = { deleted: [], killed: 0, failed: [] };
  const after = listNetns();
  if (after === undefined) return result;
  for (const name of namespacesToDelete(before, after, tag)) {
    try {
      const pids = parsePids(
        execFileSync('ip', ['netns', 'pids', name], {
          encoding: 'utf8',
          timeout: IP_TIMEOUT_MS,
          stdio: ['ignore', 'pipe', 'ignore'],
        }),
      );
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
          result.killed += 1;
        } catch {
          // already gone
        }
      }
    } catch {
      // no pids to list: delete anyway
    }
    try {
      execFileSync('ip', ['netns', 'del', name], { timeout: IP_TIMEOUT_MS, stdio: 'ignore' });
      result.deleted.push(name);
    } catch (err) {
      result.failed.push({ name, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return result;
}
