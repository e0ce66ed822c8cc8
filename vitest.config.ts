import { defineConfig } from 'vitest/config';
import { DEFAULT_HOOK_TIMEOUT_MS, DEFAULT_TEST_TIMEOUT_MS } from './test/support/timeouts.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Deletes the network namespaces (createNetns) a crashed worker left behind; see the file.
    globalSetup: ['test/support/global-netns.ts'],
    // Fails a test that starts a process under the default timeout; see the file.
    setupFiles: ['test/support/process-timeout.ts'],
    // e2e tests create network namespaces and run real binaries; keep them from racing each other.
    fileParallelism: true,
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    pool: 'forks',
    // In-process defaults; tests that start a process set their own (test/support/timeouts.ts).
    testTimeout: DEFAULT_TEST_TIMEOUT_MS,
    hookTimeout: DEFAULT_HOOK_TIMEOUT_MS,
    // suite-checks fails the run when a test was skipped, unless IMDSGUARD_ALLOW_SKIP=1; see the file.
    reporters: ['default', './test/support/suite-checks.ts'],
  },
});
