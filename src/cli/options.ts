import { isIP } from 'node:net';
import { ImdsguardError } from '../errors.js';

/** Shared parsers for option values. Each throws IMDSGUARD_E_USAGE naming the option. */

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses HOST:PORT, [V6]:PORT or :PORT (loopback). Port 0 asks the OS for a free port. */
export function parseListen(value: string, option = '--listen'): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `${option}: expected HOST:PORT or [IPV6]:PORT, got "${value}"`,
    );
  }
  const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '127.0.0.1' : m[2]);
  const port = Number(m[3]);
  if (port > 65535)
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `${option}: port ${port} is out of range 0..65535`);
  if (m[1] !== undefined && isIP(host) !== 6) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `${option}: "${host}" is not an IPv6 address`);
  }
  return { host, port };
}

export function formatListen(addr: ListenAddress): string {
  return isIP(addr.host) === 6 ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

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
