import { describe, expect, it } from 'vitest';
import { testTimeLeft, waitFor } from '../support/wait.js';

/**
 * test/support/wait.ts: a wait has no deadline of its own; it lasts as long as the running test may,
 * and fails just before the test's timeout, naming what it waited for.
 */
describe('waitFor', () => {
  it('has the time the test has: its own timeout, less a margin for the failure', () => {
    const left = testTimeLeft() as number;
    expect(left).toBeGreaterThan(30_000);
    expect(left).toBeLessThan(60_000);
  }, 60_000);

  // Waits 9.5 s: the margin (5% of the timeout) must cover a loaded machine's event-loop lag.
  it('fails before the test times out, saying what it waited for', async () => {
    await expect(waitFor(() => false, 'the impossible')).rejects.toThrow(
      'timed out waiting for the impossible',
    );
  }, 10_000);

  it('returns once the check holds, also for an asynchronous check', async () => {
    let n = 0;
    await waitFor(async () => ++n >= 3, 'three polls', 1);
    expect(n).toBe(3);
  });
});
