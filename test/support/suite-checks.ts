import type { Reporter, TestModule, Vitest } from 'vitest/node';

/**
 * vitest reporter (vitest.config.ts) with the suite's own rules:
 *
 * 1. A run that skipped a test fails, unless IMDSGUARD_ALLOW_SKIP=1. Every skip in this suite is a
 *    real-environment test whose environment is missing (root and `ip netns`, iptables/nftables,
 *    python3-botocore, awscli, curl, Chromium, IPv6, the sock_diag addon, the built binary): CI
 *    (`npm test`, `.ci/run`) must run them all, so a skip there is a failure, listed by name. A
 *    developer without root runs what they can with IMDSGUARD_ALLOW_SKIP=1: the skipped tests are
 *    then listed as a warning. A test skipped on purpose would be a test that cannot fail: the suite
 *    has none. Not checked: runs filtered by test name (-t), which vitest reports as skips, and files
 *    that use `.only` (CI refuses `.only` anyway).
 * 2. A test that used more than half of its timeout is listed as a warning (it would be the first to
 *    time out on a busier machine). test/support/process-timeout.ts records each test's timeout.
 */

/** The environment variable that lets a run pass with skipped tests. */
export const ALLOW_SKIP_ENV = 'IMDSGUARD_ALLOW_SKIP';

/** A test that used more than this share of its timeout is listed. */
const MARGIN_WARNING = 0.5;

export interface SkippedTest {
  file: string;
  name: string;
}

function relative(root: string, file: string): string {
  return file.startsWith(`${root}/`) ? file.slice(root.length + 1) : file;
}

/** The skipped tests of the modules, except in modules that use `.only`. */
export function skippedTests(modules: ReadonlyArray<TestModule>, root: string): SkippedTest[] {
  const out: SkippedTest[] = [];
  for (const m of modules) {
    const tests = [...m.children.allTests()];
    if (tests.some((t) => t.options.mode === 'only')) continue;
    for (const t of tests) {
      if (t.result().state === 'skipped') out.push({ file: relative(root, m.moduleId), name: t.fullName });
    }
  }
  return out;
}

/** Tests that passed using more than MARGIN_WARNING of their timeout, as display lines. */
function closeToTimeout(modules: ReadonlyArray<TestModule>, root: string): string[] {
  const out: string[] = [];
  for (const m of modules) {
    for (const t of m.children.allTests('passed')) {
      const timeout = t.meta().timeoutMs;
      const took = t.diagnostic()?.duration;
      if (timeout === undefined || took === undefined || took <= timeout * MARGIN_WARNING) continue;
      out.push(`  ${relative(root, m.moduleId)} > ${t.fullName}: ${Math.round(took)} ms of ${timeout} ms`);
    }
  }
  return out;
}

export default class SuiteChecks implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, _errors: unknown, reason: string): void {
    const vitest = this.vitest;
    if (vitest === undefined || reason === 'interrupted') return;
    const root = vitest.config.root;
    const slow = closeToTimeout(modules, root);
    if (slow.length > 0) {
      process.stderr.write(
        `\nwarning: ${slow.length} test(s) used more than half of their timeout:\n${slow.join('\n')}\n`,
      );
    }
    if (vitest.config.testNamePattern !== undefined) return;
    const skipped = skippedTests(modules, root);
    if (skipped.length === 0) return;
    const allowed = process.env[ALLOW_SKIP_ENV] === '1';
    const lines = [
      '',
      `${allowed ? 'warning' : 'error'}: ${skipped.length} test(s) skipped: a real environment they need is missing`,
      ...skipped.map((s) => `  ${s.file} > ${s.name}`),
      allowed
        ? `(allowed by ${ALLOW_SKIP_ENV}=1; CI runs them all)`
        : `Run as root after ./scripts/install-system-deps and npm run build, as CI does; or set ${ALLOW_SKIP_ENV}=1 to run only what this machine can.`,
      '',
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
    if (!allowed) process.exitCode = 1;
  }
}
