/**
 * PURE: the time window a usage report covers, and the CloudWatch periods it is read at.
 *
 * The window ends at `now`: evidence of an IMDSv1 call made a few minutes ago must count. It is read in
 * two parts:
 *   - whole periods: `days` days of periods of `periodSeconds`, ending at the last period boundary at or
 *     before now (`periodsEndMs`). The period is the smallest of 5 min, 1 h, 6 h, 1 day that keeps a
 *     series at or under USAGE_DEFAULTS.maxPeriodsPerSeries periods (200): 500 series then fit in one
 *     GetMetricData response (500 x 200 = 100,000 <= 100,800 datapoints);
 *   - the tail: [periodsEndMs, now) read at `tailPeriodSeconds`, the finest period CloudWatch keeps for
 *     data of that age (EC2's metrics are standard resolution: 60 s for data up to 15 days old). The
 *     tail is shorter than one period (at most a day), so it is always under 15 days old.
 *
 * CloudWatch's rules (API reference, MetricStat Period): "If the StartTime parameter specifies a time
 * stamp that is greater than 3 hours ago, you must specify the period as follows or no data points in
 * that time range is returned: Start time between 3 hours and 15 days ago - Use a multiple of 60
 * seconds (1 minute). Start time between 15 and 63 days ago - Use a multiple of 300 seconds (5
 * minutes). Start time greater than 63 days ago - Use a multiple of 3600 seconds (1 hour)." And
 * retention (GetMetricData): 60 s datapoints for 15 days, 300 s for 63 days, 3600 s for 455 days.
 * Every period chosen here satisfies those rules for the age of its part of the window
 * (periodFitsAge checks it; the unit tests check every --days).
 */
import { ImdsguardError } from '../../errors.js';

/** Defaults and limits, with units. */
export const USAGE_DEFAULTS = {
  /** Window length, days. */
  days: 14,
  /**
   * Longest window, days. CloudWatch keeps 1-hour data for 455 days; a window of whole days starts up
   * to one day before `days` ago (its last period ends at the last boundary, then the tail), so 454.
   */
  maxDays: 454,
  /** Periods per series the period choice aims at (see above). */
  maxPeriodsPerSeries: 200,
} as const;

/** Candidate periods, seconds, smallest first. */
export const USAGE_PERIODS = [300, 3600, 21_600, 86_400] as const;

const DAY_MS = 86_400_000;

/**
 * CloudWatch's retention of standard-resolution data: how old data may be and still be read at each
 * period (GetMetricData: "Data points with a period of 60 seconds (1-minute) are available for 15 days.
 * Data points with a period of 300 seconds (5-minute) are available for 63 days. Data points with a
 * period of 3600 seconds (1 hour) are available for 455 days (15 months).").
 */
export const CLOUDWATCH_RETENTION = [
  { periodSeconds: 60, maxAgeMs: 15 * DAY_MS },
  { periodSeconds: 300, maxAgeMs: 63 * DAY_MS },
  { periodSeconds: 3600, maxAgeMs: 455 * DAY_MS },
] as const;

/** The finest period CloudWatch serves for data that is `ageMs` old (undefined: older than 455 days). */
export function finestPeriodFor(ageMs: number): number | undefined {
  return CLOUDWATCH_RETENTION.find((r) => ageMs <= r.maxAgeMs)?.periodSeconds;
}

/** Whether a query starting `ageMs` ago may use this period (a multiple of the finest for that age). */
export function periodFitsAge(periodSeconds: number, ageMs: number): boolean {
  const finest = finestPeriodFor(ageMs);
  return finest !== undefined && periodSeconds % finest === 0;
}

export interface UsageWindow {
  days: number;
  /** ISO 8601: the window's start (inclusive). */
  start: string;
  /** ISO 8601: the window's end (exclusive): now. */
  end: string;
  startMs: number;
  /** = now. */
  endMs: number;
  periodSeconds: number;
  /** Whole periods in the window: days * 86400 / periodSeconds, from startMs to periodsEndMs. */
  periods: number;
  /** ISO 8601: the end of the whole periods (the last period boundary at or before now). */
  periodsEnd: string;
  periodsEndMs: number;
  /** The tail [periodsEndMs, endMs) is read at this period (60 s). */
  tailPeriodSeconds: number;
}

export function choosePeriod(days: number): number {
  for (const p of USAGE_PERIODS) {
    if ((days * 86_400) / p <= USAGE_DEFAULTS.maxPeriodsPerSeries) return p;
  }
  return USAGE_PERIODS[USAGE_PERIODS.length - 1] as number;
}

/**
 * The window of `days` whole days of periods ending at the last period boundary at or before nowMs,
 * plus the tail up to nowMs.
 */
export function usageWindow(nowMs: number, days: number = USAGE_DEFAULTS.days): UsageWindow {
  if (!Number.isInteger(days) || days < 1 || days > USAGE_DEFAULTS.maxDays) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--days: expected a whole number of days from 1 to ${USAGE_DEFAULTS.maxDays}, got ${days}`,
    );
  }
  if (!Number.isFinite(nowMs)) throw new ImdsguardError('IMDSGUARD_E_INTERNAL', 'usage window: no clock');
  const periodSeconds = choosePeriod(days);
  const pMs = periodSeconds * 1000;
  const periodsEndMs = Math.floor(nowMs / pMs) * pMs;
  const startMs = periodsEndMs - days * DAY_MS;
  return {
    days,
    start: new Date(startMs).toISOString(),
    end: new Date(nowMs).toISOString(),
    startMs,
    endMs: nowMs,
    periodSeconds,
    periods: (days * 86_400) / periodSeconds,
    periodsEnd: new Date(periodsEndMs).toISOString(),
    periodsEndMs,
    tailPeriodSeconds: finestPeriodFor(nowMs - periodsEndMs) as number,
  };
}

/** The two GetMetricData time ranges of a window: the whole periods, then the tail (when not empty). */
export interface UsageRange {
  part: 'periods' | 'tail';
  startMs: number;
  /** Exclusive. */
  endMs: number;
  periodSeconds: number;
}

/**
 * The ranges to read. The tail's end is rounded up to the next whole minute: a datapoint is stamped
 * with the start of its minute, so one stamped in the current minute is read too (EndTime is
 * exclusive: "results include data points up to the specified time stamp").
 */
export function usageRanges(w: UsageWindow): UsageRange[] {
  const out: UsageRange[] = [
    { part: 'periods', startMs: w.startMs, endMs: w.periodsEndMs, periodSeconds: w.periodSeconds },
  ];
  if (w.endMs > w.periodsEndMs) {
    const step = w.tailPeriodSeconds * 1000;
    out.push({
      part: 'tail',
      startMs: w.periodsEndMs,
      endMs: Math.ceil(w.endMs / step) * step,
      periodSeconds: w.tailPeriodSeconds,
    });
  }
  return out;
}
