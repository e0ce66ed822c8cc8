/**
 * The suite's timeout budget (vitest.config.ts reads it; test/support/process-timeout.ts enforces it).
 *
 * The defaults fit in-process tests and hooks only. A test that starts a process (the CLI binary, a
 * real client, `ip netns exec`, Chromium) states its own timeout, sized to what it does on a loaded
 * 2-core machine: test/support/process-timeout.ts fails a test that starts one under the default.
 */

/** Default per-test timeout, milliseconds: for tests that run in-process only. */
export const DEFAULT_TEST_TIMEOUT_MS = 15_000;
/** Default per-hook timeout, milliseconds: for hooks that start servers in-process. */
export const DEFAULT_HOOK_TIMEOUT_MS = 20_000;
