import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/io/progress.js';
import { capture } from '../support/cli.js';

describe('progress bar', () => {
  it('draws on a TTY, throttled, and clears its line when done', () => {
    const err = capture(true);
    let now = 0;
    const p = createProgress(err, 'scans', () => now);
    p.update({ done: 0, total: 4, instances: 0 });
    now += 10;
    p.update({ done: 1, total: 4, instances: 1500 }); // within the interval: skipped
    now += 200;
    p.update({ done: 2, total: 4, instances: 2500 });
    p.update({ done: 4, total: 4, instances: 5000 }); // the last one always draws
    p.done();
    const frames = err.text.split('\r\u001b[2K').filter((s) => s.length > 0);
    expect(frames).toEqual([
      '[------------------------] 0/4 scans, 0 instances',
      '[############------------] 2/4 scans, 2,500 instances',
      '[########################] 4/4 scans, 5,000 instances',
    ]);
    expect(err.text.endsWith('\r\u001b[2K')).toBe(true);
  });

  it('writes nothing when stderr is not a TTY', () => {
    const err = capture(false);
    const p = createProgress(err);
    p.update({ done: 1, total: 2, instances: 3 });
    p.done();
    expect(err.text).toBe('');
  });
});
