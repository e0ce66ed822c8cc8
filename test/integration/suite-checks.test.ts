import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TEST_TIMEOUT_MS } from '../support/timeouts.js';

/**
 * The suite's own rules, run by a real vitest over the fixtures in test/fixtures/suite-checks: a
 * skipped test fails the run unless IMDSGUARD_ALLOW_SKIP=1 (test/support/suite-checks.ts), and a test
 * that starts a process under the default timeout fails (test/support/process-timeout.ts).
 */

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'suite-checks');
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
/** One vitest run of a fixture or two, on a loaded 2-core machine. */
const RUN_TIMEOUT_MS = 90_000;

interface Run {
  code: number;
  output: string;
}

function vitest(fixtures: string[], opts: { allowSkip?: boolean; args?: string[] } = {}): Promise<Run> {
  // The environment of this run, without vitest's own variables and without IMDSGUARD_ALLOW_SKIP.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('VITEST') && k !== 'IMDSGUARD_ALLOW_SKIP' && k !== 'NODE_OPTIONS')
      env[k] = v;
  }
  env['FIXTURES'] = fixtures.join(',');
  env['NO_COLOR'] = '1';
  if (opts.allowSkip) env['IMDSGUARD_ALLOW_SKIP'] = '1';
  return new Promise((done) => {
    execFile(
      process.execPath,
      [
        VITEST,
        'run',
        '--root',
        FIXTURES,
        '--config',
        join(FIXTURES, 'vitest.config.ts'),
        ...(opts.args ?? []),
      ],
      { env, cwd: FIXTURES, timeout: RUN_TIMEOUT_MS - 5_000, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

// Three vitest runs, each a few seconds on a quiet machine (vitest starts, collects and runs a fixture or two).
describe('the suite checks its own rules', () => {
  it(
    'fails a skipped test (listed) and a test that starts a process under the default timeout (named)',
    async () => {
      const r = await vitest(['skipped.fixture.ts', 'spawn-default.fixture.ts', 'spawn-own.fixture.ts']);
      expect(r.code, r.output).toBe(1);
      expect(r.output).toContain('error: 1 test(s) skipped');
      expect(r.output).toContain('skipped.fixture.ts > needs something this machine lacks > is skipped');
      expect(r.output).toContain('IMDSGUARD_ALLOW_SKIP=1');
      expect(r.output).toMatch(/this test starts a process \(execFileSync\(\S*node\S* -e /);
      expect(r.output).toContain(`runs under the default timeout of ${DEFAULT_TEST_TIMEOUT_MS} ms`);
      // exactly one test failed: a process under a timeout of its own, or none, is fine
      expect(r.output).toMatch(/Tests\s+1 failed \| 3 passed \| 1 skipped/);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'passes with IMDSGUARD_ALLOW_SKIP=1, still listing the skip as a warning',
    async () => {
      const r = await vitest(['skipped.fixture.ts', 'spawn-own.fixture.ts'], { allowSkip: true });
      expect(r.code, r.output).toBe(0);
      expect(r.output).toContain('warning: 1 test(s) skipped');
      expect(r.output).toContain('> is skipped');
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'does not count the tests a name filter (-t) left out',
    async () => {
      const r = await vitest(['skipped.fixture.ts'], { args: ['-t', '^runs$'] });
      expect(r.code, r.output).toBe(0);
      expect(r.output).not.toContain('test(s) skipped');
    },
    RUN_TIMEOUT_MS,
  );
});
