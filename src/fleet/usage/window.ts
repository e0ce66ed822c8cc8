/**
 * PURE: the time window a usage report covers, and the CloudWatch period it is read at.
 *
 * The window ends at the last period boundary at or before `now` (only whole periods are read, and
 * CloudWatch answers fastest for period-aligned times) and starts `days` days earlier, so it holds
 * exactly days * 86400 / period periods.
 *
 * The period is the smallest of 5 min, 1 h, 6 h, 1 day that keeps a series at or under
 * USAGE_DEFAULTS.maxPeriodsPerSeries periods (200): 500 series then fit in one GetMetricData response
 * (500 x 200 = 100,000 <= 100,800 datapoints), so a batch is one call unless the window is longer
 * than 200 days. The choice also satisfies CloudWatch's retention rules (data older than 15 days:
 * multiple of 5 min; older than 63 days: multiple of 1 h).
 */
import { ImdsguardError } from '../../errors.js';

/** Defaults and limits, with units. */
export const USAGE_DEFAULTS = {
  /** Window length, days. */
  days: 14,
  /** Longest window, days (CloudWatch keeps 1-hour data for 455 days). */
  maxDays: 455,
  /** Periods per series the period choice aims at (see above). */
  maxPeriodsPerSeries: 200,
} as const;

/** Candidate periods, seconds, smallest first. */
export const USAGE_PERIODS = [300, 3600, 21_600, 86_400] as const;

export interface UsageWindow {
  days: number;
  /** ISO 8601 */
  start: string;
  /** ISO 8601 (exclusive) */
  end: string;
  startMs: number;
  endMs: number;
  periodSeconds: number;
  /** Periods in the window: days * 86400 / periodSeconds. */
  periods: number;
}

export function choosePeriod(days: number): number {
  for (const p of USAGE_PERIODS) {
    if ((days * 86_400) / p <= USAGE_DEFAULTS.maxPeriodsPerSeries) return p;
  }
  return USAGE_PERIODS[USAGE_PERIODS.length - 1] as number;
}

/** The window of `days` days ending at the last period boundary at or before nowMs. */
export function usageWindow(nowMs: number, days: number = USAGE_DEFAULTS.days): UsageWindow {
  if (!Number.isInteger(days) || days < 1 || days > USAGE_DEFAULTS.maxDays) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--days: expected a whole number of days from 1 to ${USAGE_DEFAULTS.maxDays}, got ${days}`,
    );
  }
  const periodSeconds = choosePeriod(days);
  const pMs = periodSeconds * 1000;
  const endMs = Math.floor(nowMs / pMs) * pMs;
  const startMs = endMs - days * 86_400_000;
  return {
    days,
    start: new Date(startMs).toISOString(),
    end: new Date(endMs).toISOString(),
    startMs,
    endMs,
    periodSeconds,
    periods: (days * 86_400) / periodSeconds,
  };
}
