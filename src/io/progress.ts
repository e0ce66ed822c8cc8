import type { Output } from './output.js';
/** A one-line progress bar for a terminal's stderr; does nothing when stderr is not a TTY. */

export interface Progress {
  update(p: { done: number; total: number; instances: number }): void;
  /** Clears the line. */
  done(): void;
}

/** Redraws at most this often, ms. */
export const PROGRESS_INTERVAL_MS = 100;
const WIDTH = 24;

export function createProgress(stderr: Output, label = 'scans', now: () => number = Date.now): Progress {
  if (stderr.isTTY !== true) return { update() {}, done() {} };
  let last = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    update(p) {
      const t = now();
      if (t - last < PROGRESS_INTERVAL_MS && p.done < p.total) return;
      last = t;
      const filled = p.total === 0 ? WIDTH : Math.round((p.done / p.total) * WIDTH);
      stderr.write(
        `\r\u001b[2K[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${p.done}/${p.total} ${label}, ${p.instances.toLocaleString('en-US')} instances`,
      );
      drawn = true;
    },
    done() {
      if (drawn) stderr.write('\r\u001b[2K');
    },
  };
}
