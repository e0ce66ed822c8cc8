import type { ChildProcess } from 'node:child_process';
import { getCurrentTest } from 'vitest/suite';

/**
 * Waiting for the event itself (a line, a file, a count, a port), never for a fixed time: tests hold
 * on a loaded machine. A wait has no deadline of its own: it lasts as long as the running test may
 * (its timeout, sized to what the test does), so a wait can never be the first thing to give up on a
 * slow machine. It fails just before the test's timeout, naming what it waited for.
 */

/** What is kept of the test's time for the failure to be reported: this share of its timeout... */
const MARGIN_SHARE = 0.05;
/** ...within these bounds, milliseconds. */
const MARGIN_MIN_MS = 250;
const MARGIN_MAX_MS = 1000;
/** Poll interval, milliseconds. */
const POLL_MS = 10;
/**
 * Outside a test (beforeAll, afterAll) the hook's own timeout fails first; this only ends the polling
 * of a wait whose hook has already failed, milliseconds.
 */
const OUTSIDE_TEST_MS = 300_000;

/**
 * Milliseconds the running test has left before its own timeout, less a margin for reporting a
 * failure; undefined outside a test (in beforeAll/afterAll the hook's timeout bounds a wait).
 */
export function testTimeLeft(): number | undefined {
  const test = getCurrentTest();
  const started = test?.result?.startTime;
  if (test === undefined || started === undefined || !(test.timeout > 0)) return undefined;
  const margin = Math.min(MARGIN_MAX_MS, Math.max(MARGIN_MIN_MS, test.timeout * MARGIN_SHARE));
  return Math.max(0, started + test.timeout - margin - Date.now());
}

/**
 * Waits until check() is true, polling every pollMs milliseconds, for as long as the running test may
 * (see testTimeLeft); then fails, saying what it waited for. A check that starts a process (curl)
 * polls less often.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what = 'condition',
  pollMs = POLL_MS,
): Promise<void> {
  const left = testTimeLeft();
  const deadline = Date.now() + (left ?? OUTSIDE_TEST_MS);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Resolves with the output so far once a child prints text matching `pattern` (stdout or stderr,
 * from now on); fails when the child exits first, or just before the running test's timeout.
 */
export function waitForOutput(child: ChildProcess, pattern: RegExp | string): Promise<string> {
  const left = testTimeLeft() ?? OUTSIDE_TEST_MS;
  return new Promise((resolve, reject) => {
    let buf = '';
    const matches = () => (typeof pattern === 'string' ? buf.includes(pattern) : pattern.test(buf));
    const finish = (err?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (c: Buffer | string) => {
      buf += c.toString();
      if (matches()) finish();
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`exited (${code ?? signal}) before printing ${pattern}: ${buf}`));
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern}: ${buf}`)), left);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
  });
}
