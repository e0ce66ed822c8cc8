import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { cleanupRunNamespaces, listNetns, RUN_TAG_KEY } from './netns-cleanup.js';

/**
 * vitest globalSetup (registered in vitest.config.ts). Setup draws this run's random tag, hands it to
 * the workers (createNetns() appends it to every namespace name) and records the namespaces that
 * already exist. Teardown, after every worker is done, deletes the tagged namespaces that a worker
 * left behind (an aborted worker never runs its afterAll) and kills the processes still in them.
 * Nothing happens when not root or when `ip` is missing.
 *
 * The teardown also runs on the main process's 'exit' event (it is synchronous): when a worker is
 * killed, vitest 3 can meet an unhandled "Channel closed" rejection and call process.exit() without
 * running globalSetup teardowns; its SIGINT/SIGTERM handlers exit the same way. It runs once.
 * (A SIGKILL of the vitest main process itself cannot be handled: those namespaces stay.)
 */
export default function setup(project: TestProject): () => void {
  const tag = randomBytes(4).toString('hex');
  project.provide(RUN_TAG_KEY, tag);
  const before = listNetns();
  if (before === undefined) return () => {};
  let done = false;
  const teardown = (): void => {
    if (done) return;
    done = true;
    process.off('exit', teardown);
    const r = cleanupRunNamespaces(before, tag);
    if (r.deleted.length > 0 || r.failed.length > 0) {
      process.stderr.write(
        `imdsguard tests: removed ${r.deleted.length} leaked network namespace(s)` +
          `${r.deleted.length ? ` (${r.deleted.join(', ')})` : ''}, killed ${r.killed} process(es)` +
          `${r.failed.length ? `; could not remove ${r.failed.map((f) => f.name).join(', ')}` : ''}\n`,
      );
    }
  };
  // First in line: vitest's own 'exit' listener calls process.exit() again, which ends the process
  // before any later listener runs.
  process.prependListener('exit', teardown);
  return teardown;
}
