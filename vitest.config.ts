import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Deletes the network namespaces (createNetns) a crashed worker left behind; see the file.
    globalSetup: ['test/support/global-netns.ts'],
    // e2e tests create network namespaces and run real binaries; keep them from racing each other.
    fileParallelism: true,
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
