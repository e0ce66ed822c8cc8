import { describe, expect, it } from 'vitest';
import { type Alert, toAlert } from '../../src/guard/alerts/alert.js';
import { NoiseFilter, type NoiseOptions, noiseKey } from '../../src/guard/alerts/noise.js';
import { makeEvent } from '../support/guard-events.js';

const T0 = Date.UTC(2026, 0, 1);
const opts: NoiseOptions = {
  windowMs: 300_000,
  perKey: 1,
  globalWindowMs: 60_000,
  globalLimit: 1000,
  maxKeys: 100,
};

function alertFor(exe: string, path = '/latest/meta-data/', rule = 'default-deny-v1'): Alert {
  return toAlert(
    makeEvent({
      rule,
      request: { path },
      caller: { resolved: 'full', pid: 1, exe, user: 'u' },
    }),
  );
}

describe('noise filter', () => {
  it('passes the first alert of a key and folds repeats into one summary when the window closes', () => {
    const f = new NoiseFilter(opts, T0);
    expect(f.offer(alertFor('/usr/bin/curl'), T0)).toHaveLength(1);
    for (let i = 1; i <= 37; i++) expect(f.offer(alertFor('/usr/bin/curl'), T0 + i * 1000)).toEqual([]);
    expect(f.tick(T0 + 299_999)).toEqual([]);
    const [summary, ...rest] = f.tick(T0 + 300_000);
    expect(rest).toEqual([]);
    expect(summary?.kind).toBe('summary');
    expect(summary?.summary?.count).toBe(37);
    expect(summary?.text).toMatch(/^37 more in the last 5 minutes: /);
    expect(summary?.text).toContain('/usr/bin/curl');
    expect(summary?.summary?.since).toBe(new Date(T0 + 1000).toISOString());
    expect(f.suppressed).toBe(37);
  });

  it('keys by caller, rule and path', () => {
    const f = new NoiseFilter(opts, T0);
    expect(f.offer(alertFor('/usr/bin/curl'), T0)).toHaveLength(1);
    expect(f.offer(alertFor('/usr/bin/wget'), T0)).toHaveLength(1);
    expect(f.offer(alertFor('/usr/bin/curl', '/latest/user-data'), T0)).toHaveLength(1);
    expect(f.offer(alertFor('/usr/bin/curl', '/latest/meta-data/', 'forwarding-header'), T0)).toHaveLength(1);
    expect(f.offer(alertFor('/usr/bin/curl'), T0)).toHaveLength(0);
    expect(noiseKey(alertFor('/a'))).not.toBe(noiseKey(alertFor('/b')));
  });

  it('a new window starts after the old one closes, and emits no summary when nothing was suppressed', () => {
    const f = new NoiseFilter(opts, T0);
    expect(f.offer(alertFor('/x'), T0)).toHaveLength(1);
    const out = f.offer(alertFor('/x'), T0 + 300_000);
    expect(out).toHaveLength(1);
    expect(out[0]?.kind).toBe('event');
  });

  it('perKey lets a few through before folding', () => {
    const f = new NoiseFilter({ ...opts, perKey: 3 }, T0);
    const passed = Array.from({ length: 10 }, (_, i) => f.offer(alertFor('/x'), T0 + i)).flat();
    expect(passed).toHaveLength(3);
    expect(f.flush(T0 + 10)[0]?.summary?.count).toBe(7);
  });

  it('a global limit caps alerts across keys, with one overflow summary', () => {
    const f = new NoiseFilter({ ...opts, globalLimit: 5 }, T0);
    const passed = Array.from({ length: 50 }, (_, i) => f.offer(alertFor(`/bin/p${i}`), T0 + i)).flat();
    expect(passed).toHaveLength(5);
    const summaries = f.tick(T0 + 60_000);
    const global = summaries.find((s) => s.rule === 'alert-rate-limit');
    expect(global?.summary?.count).toBe(45);
    expect(global?.text).toContain('45 more alerts in the last 1 minute');
  });

  it('flush() also closes the global window: its overflow summary, then a fresh window', () => {
    const f = new NoiseFilter({ ...opts, globalLimit: 5 }, T0);
    for (let i = 0; i < 50; i++) f.offer(alertFor(`/bin/p${i}`), T0 + i);
    const global = f.flush(T0 + 100).filter((s) => s.rule === 'alert-rate-limit');
    expect(global.map((s) => s.summary?.count)).toEqual([45]);
    const again = Array.from({ length: 10 }, (_, i) => f.offer(alertFor(`/bin/q${i}`), T0 + 200 + i)).flat();
    expect(again).toHaveLength(5);
  });

  it('tracks at most maxKeys keys', () => {
    const f = new NoiseFilter({ ...opts, maxKeys: 10 }, T0);
    for (let i = 0; i < 100; i++) f.offer(alertFor(`/bin/p${i}`), T0);
    expect(f.size).toBe(10);
  });

  it('flush() closes every window so no suppressed count is lost at shutdown', () => {
    const f = new NoiseFilter(opts, T0);
    f.offer(alertFor('/a'), T0);
    f.offer(alertFor('/a'), T0 + 1);
    f.offer(alertFor('/b'), T0);
    f.offer(alertFor('/b'), T0 + 1);
    f.offer(alertFor('/b'), T0 + 2);
    const counts = f
      .flush(T0 + 10)
      .map((s) => s.summary?.count)
      .sort();
    expect(counts).toEqual([1, 2]);
    expect(f.size).toBe(0);
  });
});
