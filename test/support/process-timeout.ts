import { createRequire, syncBuiltinESMExports } from 'node:module';
import { promisify } from 'node:util';
import { afterEach } from 'vitest';
import { getCurrentTest } from 'vitest/suite';
import { DEFAULT_TEST_TIMEOUT_MS } from './timeouts.js';

/**
 * vitest setup file (vitest.config.ts): a test that starts a process must carry a timeout of its
 * own. Every child_process entry point is wrapped; when one is called while a test runs under the
 * default timeout (DEFAULT_TEST_TIMEOUT_MS, sized for in-process work), that test fails once it ends,
 * naming the command. The check is deterministic: a forgotten timeout shows on a quiet machine too,
 * not only as a flaky timeout under load.
 *
 * Processes started outside a test (module scope, beforeAll/afterAll) are not seen here; hooks that
 * start one pass their own timeout too (the hook default is DEFAULT_HOOK_TIMEOUT_MS).
 */

type Fn = (...args: unknown[]) => unknown;

const ENTRY_POINTS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;

/** The command of the first process each offending test started. */
const offenders = new Map<object, string>();

function note(name: string, args: unknown[]): void {
  const test = getCurrentTest();
  if (test === undefined || test.timeout !== DEFAULT_TEST_TIMEOUT_MS || offenders.has(test)) return;
  const file = typeof args[0] === 'string' ? args[0] : '?';
  const argv = Array.isArray(args[1]) ? (args[1] as unknown[]).slice(0, 3).map(String) : [];
  offenders.set(test, `${name}(${[file, ...argv].join(' ')})`);
}

// The CommonJS module object: its properties are what `import { spawn } from 'node:child_process'` binds to.
const cp = createRequire(import.meta.url)('node:child_process') as Record<string, Fn>;
function wrap(name: string, original: Fn): Fn {
  return function (this: unknown, ...args: unknown[]) {
    note(name, args);
    return original.apply(this, args);
  };
}

const WRAPPED = Symbol.for('imdsguard.process-timeout');
for (const name of ENTRY_POINTS) {
  const original = cp[name] as Fn & { [WRAPPED]?: true; [promisify.custom]?: Fn };
  if (original[WRAPPED]) continue;
  const wrapped = wrap(name, original) as Fn & Record<symbol, unknown>;
  wrapped[WRAPPED] = true;
  // util.promisify(exec/execFile) uses the custom form, which resolves { stdout, stderr }.
  const custom = original[promisify.custom];
  if (custom !== undefined) wrapped[promisify.custom] = wrap(name, custom);
  cp[name] = wrapped;
}
// ESM imports of node:child_process (`import { spawn } from ...`) see the wrapped functions too.
syncBuiltinESMExports();

declare module 'vitest' {
  interface TaskMeta {
    /** The test's timeout, milliseconds (for the margin warning of test/support/suite-checks.ts). */
    timeoutMs?: number;
  }
}

afterEach((ctx) => {
  ctx.task.meta.timeoutMs = ctx.task.timeout;
  const command = offenders.get(ctx.task);
  if (command === undefined) return;
  offenders.delete(ctx.task);
  throw new Error(
    `this test starts a process (${command}) but runs under the default timeout of ` +
      `${DEFAULT_TEST_TIMEOUT_MS} ms: give it a timeout of its own, sized to what it does on a loaded ` +
      `2-core machine (it('...', fn, ms)); see test/support/timeouts.ts`,
  );
});
