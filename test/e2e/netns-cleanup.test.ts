import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { canUseNetns, createNetns, type Netns } from '../support/netns.js';
import { cleanupRunNamespaces, listNetns, RUN_TAG_KEY, RUN_TAG_RE } from '../support/netns-cleanup.js';
import { waitFor } from '../support/wait.js';

/**
 * The global teardown (test/support/global-netns.ts) against real namespaces. The test uses its own
 * run tag, never the real run's: tests running alongside keep their namespaces.
 */

function exists(name: string): boolean {
  return (listNetns() ?? []).includes(name);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('global netns teardown', () => {
  it('the run tag is provided to the workers and appended by createNetns', () => {
    const tag = inject(RUN_TAG_KEY);
    expect(tag).toMatch(RUN_TAG_RE);
  });

  it.skipIf(!canUseNetns())(
    'deletes the namespaces the run created and left behind, killing their processes; keeps the others',
    async () => {
      const tag = randomBytes(4).toString('hex');
      const created: Netns[] = [];
      const foreign = `imdsg-foreign-${randomBytes(3).toString('hex')}`;
      try {
        // Existed before the "run": same tag, yet must be kept.
        const pre = createNetns('pre', { runTag: tag });
        created.push(pre);
        expect(pre.name).toMatch(new RegExp(`^imdsg-pre-[0-9a-f]{6}-${tag}$`));
        const before = listNetns() ?? [];
        expect(before).toContain(pre.name);

        // Created during the run and leaked (not destroyed), with a process still inside.
        const leaked = createNetns('leak', { runTag: tag });
        created.push(leaked);
        const sleeper = leaked.spawn('sleep', ['300']);
        await new Promise<void>((resolve, reject) => {
          sleeper.once('spawn', () => resolve());
          sleeper.once('error', reject);
        });
        // `ip netns exec` execs sleep in place, so the child's pid is the process inside the namespace.
        const pid = sleeper.pid as number;
        await waitFor(
          () =>
            execFileSync('ip', ['netns', 'pids', leaked.name], { encoding: 'utf8' }).includes(String(pid)),
          'sleep to enter the namespace',
          20,
        );
        // Created during the run by someone else (a benchmark, another test run): no tag of ours.
        execFileSync('ip', ['netns', 'add', foreign]);
        const otherRun = createNetns('other', { runTag: 'ffffffff' === tag ? 'eeeeeeee' : 'ffffffff' });
        created.push(otherRun);

        const exited = new Promise<string | null>((resolve) => sleeper.once('exit', (_c, s) => resolve(s)));
        const r = cleanupRunNamespaces(before, tag);
        expect(r).toEqual({ deleted: [leaked.name], killed: 1, failed: [] });
        expect(await exited).toBe('SIGKILL');
        expect(alive(pid)).toBe(false);
        expect(exists(leaked.name)).toBe(false);
        expect(exists(pre.name)).toBe(true);
        expect(exists(foreign)).toBe(true);
        expect(exists(otherRun.name)).toBe(true);

        // A second teardown finds nothing more to do.
        expect(cleanupRunNamespaces(before, tag)).toEqual({ deleted: [], killed: 0, failed: [] });
      } finally {
        for (const ns of created) ns.destroy();
        spawnSync('ip', ['netns', 'del', foreign], { stdio: 'ignore' });
      }
      for (const ns of created) expect(exists(ns.name)).toBe(false);
      expect(exists(foreign)).toBe(false);
    },
    // Creates three namespaces, a process inside one, and runs the teardown: under 1 s when quiet.
    30_000,
  );
});
