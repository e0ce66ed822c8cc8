/**
 * Waiting for the event itself (a line, a file, a count, a port), never for a fixed time: tests hold
 * on a loaded machine. The deadline only bounds a failing test.
 */

/** Waits until check() is true, polling every few milliseconds; fails after timeoutMs. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
