import { describe, expect, it } from 'vitest';
import { parseTimePoint } from '../../src/cli/options.js';

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const p = (v: string) => parseTimePoint(v, '--until', NOW);

describe('parseTimePoint (--since/--until values)', () => {
  it('reads a duration as that long before now', () => {
    expect(p('90s')).toBe(NOW - 90_000);
    expect(p('1.5h')).toBe(NOW - 5_400_000);
    expect(p(' 2w ')).toBe(NOW - 14 * 86_400_000);
    expect(p('0s')).toBe(NOW);
  });

  it('reads ISO-8601 times with Z or an offset, fractions cut to milliseconds', () => {
    expect(p('2026-11-20T10:00:00Z')).toBe(Date.UTC(2026, 10, 20, 10));
    expect(p('2026-11-20t10:00:00z')).toBe(Date.UTC(2026, 10, 20, 10));
    expect(p('2026-11-20 10:00Z')).toBe(Date.UTC(2026, 10, 20, 10));
    expect(p('2026-11-20T10:00:00.5Z')).toBe(Date.UTC(2026, 10, 20, 10, 0, 0, 500));
    expect(p('2026-11-20T10:00:00.123456789Z')).toBe(Date.UTC(2026, 10, 20, 10, 0, 0, 123));
    expect(p('2026-11-20T10:00:00-05:30')).toBe(Date.UTC(2026, 10, 20, 15, 30));
    expect(p('2026-11-20T10:00:00+0100')).toBe(Date.UTC(2026, 10, 20, 9));
    expect(p('2028-02-29')).toBe(Date.UTC(2028, 1, 29));
    expect(p('1970-01-01T00:00:00Z')).toBe(0);
    expect(p('9999-12-31T23:59:59.999Z')).toBe(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
  });

  it('refuses anything else with IMDSGUARD_E_USAGE naming the option', () => {
    for (const bad of [
      '',
      '   ',
      'now',
      '-1h',
      '1 h',
      '1y',
      '20261120',
      '2026-11-20T10Z',
      '2026-11-20T10:00:00',
      '2026-11-20T10:00:60Z',
      '2026-11-20T10:60:00Z',
      '2026-11-31',
      '2027-02-29',
      '2026-00-10',
      '2026-11-00',
      '2026-11-20T10:00:00+02:60',
      '10000-01-01',
      '1969-12-31',
      '1970-01-01T00:00:00+00:01',
      '1000000000w',
      `${'1'.repeat(70)}s`,
    ]) {
      expect(() => p(bad), bad).toThrow(expect.objectContaining({ code: 'IMDSGUARD_E_USAGE' }));
      expect(() => p(bad), bad).toThrow(/^--until/);
    }
  });
});
