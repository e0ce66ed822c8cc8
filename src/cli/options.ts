import { ImdsguardError } from '../errors.js';

/** Shared parsers for option values. Each throws IMDSGUARD_E_USAGE naming the option. */

export function parseIntInRange(value: string, min: number, max: number, option: string): number {
  if (!/^-?\d+$/.test(value.trim())) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `${option}: expected an integer, got "${value}"`);
  }
  const n = Number(value);
  if (n < min || n > max) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `${option}: ${n} is out of range ${min}..${max}`);
  }
  return n;
}

export function parseChoice<T extends string>(value: string, choices: readonly T[], option: string): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new ImdsguardError(
    'IMDSGUARD_E_USAGE',
    `${option}: expected one of ${choices.join(', ')}, got "${value}"`,
  );
}

/** Comma-separated list, trimmed, empty items dropped. */
export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Collects a repeatable option into an array (commander's accumulator signature). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parses durations such as 500ms, 30s, 15m, 24h, 7d, 2w into milliseconds. */
export function parseDuration(value: string, option = '--since'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(value.trim());
  if (!m) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `${option}: expected a duration such as 30s, 15m, 24h or 7d, got "${value}"`,
    );
  }
  return Math.round(Number(m[1]) * (DURATION_UNITS[m[2] as string] as number));
}

// ---------------------------------------------------------------------------------------------------
// Points in time (--since, --until)

/** A duration as parseDuration takes it (30s, 15m, 24h, 7d, 2w). */
export const DURATION_RE = /^\d+(?:\.\d+)?(?:ms|s|m|h|d|w)$/;
/** YYYY-MM-DD, optionally followed by THH:MM[:SS[.fraction]] and a zone (Z, +HH:MM, +HHMM). */
const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))?)?$/i;
/** The range of times accepted, milliseconds since the epoch: 1970-01-01 to the end of 9999 (UTC). */
const MIN_TIME_MS = 0;
const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** Longest option value looked at, characters. */
const MAX_TIME_CHARS = 64;

const TIME_HINT =
  'give a duration before now (30s, 15m, 24h, 7d, 2w) or an ISO-8601 time with a zone (2026-11-20T10:00:00Z, 2026-11-20T12:00+02:00; a date alone is 00:00 UTC)';

function timeUsage(message: string): ImdsguardError {
  return new ImdsguardError('IMDSGUARD_E_USAGE', message, { hint: TIME_HINT });
}

/** Milliseconds since the epoch of an ISO-8601 time; throws IMDSGUARD_E_USAGE naming the option. */
function parseIsoTime(value: string, option: string): number {
  const m = ISO_RE.exec(value);
  if (!m) throw timeUsage(`${option}: expected a duration or an ISO-8601 time, got "${value}"`);
  const [, y, mo, d, h, mi, sec, frac, z, sign, oh, om] = m;
  if (h !== undefined && z === undefined && sign === undefined) {
    throw timeUsage(`${option}: "${value}" has no time zone; add Z (UTC) or an offset such as +02:00`);
  }
  const year = Number(y);
  // Date.UTC reads years 0..99 as 1900..1999: refuse anything before the epoch's year here.
  if (year < 1970) throw timeUsage(`${option}: "${value}" is outside 1970-01-01 .. 9999-12-31`);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(sec ?? 0);
  const offsetMin = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  const daysInMonth = month >= 1 && month <= 12 ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
  if (
    day < 1 ||
    day > daysInMonth ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    Number(oh ?? 0) > 23 ||
    Number(om ?? 0) > 59
  ) {
    throw timeUsage(`${option}: "${value}" is not a valid date and time`);
  }
  const ms = Date.UTC(
    year,
    month - 1,
    day,
    hour,
    minute,
    second,
    Number((frac ?? '').padEnd(3, '0').slice(0, 3)),
  );
  return ms - offsetMin * 60_000;
}

/**
 * A point in time for --since/--until, in milliseconds since the epoch: a duration before `now`
 * (30s, 15m, 24h, 7d, 2w) or an ISO-8601 time with a zone (a date alone is 00:00 UTC). Accepts
 * 1970-01-01 .. 9999-12-31 only; anything else throws IMDSGUARD_E_USAGE naming the option.
 */
export function parseTimePoint(value: string, option: string, now: number): number {
  const v = value.trim();
  if (v.length === 0 || v.length > MAX_TIME_CHARS) {
    throw timeUsage(
      `${option}: expected a duration or an ISO-8601 time, got "${value.slice(0, MAX_TIME_CHARS)}"`,
    );
  }
  const ms = DURATION_RE.test(v) ? now - parseDuration(v, option) : parseIsoTime(v, option);
  if (!Number.isFinite(ms) || ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    throw timeUsage(`${option}: "${value}" is outside 1970-01-01 .. 9999-12-31`);
  }
  return ms;
}
