import { isAbsolute, resolve } from 'node:path';
import { ImdsguardError } from '../errors.js';
import { CHECK_IDS, type CheckId } from '../host/doctor.js';
import {
  BACKENDS,
  type Backend,
  DEFAULT_BRIDGES,
  DEFAULT_GUARD_PORT,
  DEFAULT_SYSCTL_ROOT,
  type FailMode,
} from '../host/types.js';
import { parseChoice, parseDuration, parseIntInRange, parseList } from './options.js';

/** PURE parsing of the host command flags shared by install, uninstall and doctor. */

const IFACE = /^[A-Za-z0-9_.:-]{1,15}$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}\$?$|^\d+$/;

export function parseBackend(value: string | undefined): Backend | undefined {
  return value === undefined ? undefined : parseChoice(value, BACKENDS, '--backend');
}

export function parsePort(value: string | undefined): number {
  return value === undefined ? DEFAULT_GUARD_PORT : parseIntInRange(value, 1, 65535, '--port');
}

export function parseUser(value: string): string {
  if (!USER.test(value)) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `--user: "${value}" is not a valid user name`);
  }
  return value;
}

/** Bridge interface names (Linux limits them to 15 characters). */
export function parseBridges(value: string | undefined): string[] {
  const list = value === undefined ? [...DEFAULT_BRIDGES] : parseList(value);
  if (list.length === 0) throw new ImdsguardError('IMDSGUARD_E_USAGE', '--bridges: at least one interface');
  for (const i of list) {
    if (!IFACE.test(i))
      throw new ImdsguardError('IMDSGUARD_E_USAGE', `--bridges: "${i}" is not an interface name`);
  }
  return [...new Set(list)];
}

/**
 * Pod interface patterns (--pod-interfaces): names, or prefixes ending in "+" as iptables writes them
 * ("eni+"), at most 15 characters as Linux allows. A pattern that would match lo is refused: its
 * route_localnet must never be touched.
 */
export function parsePodInterfaces(value: string): string[] {
  const list = parseList(value);
  if (list.length === 0)
    throw new ImdsguardError('IMDSGUARD_E_USAGE', '--pod-interfaces: at least one pattern');
  for (const p of list) {
    if (!/^[A-Za-z0-9_.:-]{1,14}\+$|^[A-Za-z0-9_.:-]{1,15}$/.test(p)) {
      throw new ImdsguardError(
        'IMDSGUARD_E_USAGE',
        `--pod-interfaces: "${p}" is not an interface name or a NAME+ prefix (e.g. eni+,cali+,lxc+)`,
      );
    }
    if (p === 'lo' || ('lo'.startsWith(p.slice(0, -1)) && p.endsWith('+'))) {
      throw new ImdsguardError(
        'IMDSGUARD_E_USAGE',
        `--pod-interfaces: "${p}" would match the loopback interface`,
      );
    }
  }
  return [...new Set(list)];
}

/** --sysctl-root: where the kernel's /proc/sys is (a container may mount the host's elsewhere). */
export function parseSysctlRoot(value: string | undefined): string {
  if (value === undefined) return DEFAULT_SYSCTL_ROOT;
  if (!isAbsolute(value))
    throw new ImdsguardError('IMDSGUARD_E_USAGE', '--sysctl-root: expected an absolute path');
  return resolve(value);
}

/** --checks: doctor check ids, each one of CHECK_IDS. */
export function parseChecks(value: string): CheckId[] {
  const list = parseList(value);
  if (list.length === 0) throw new ImdsguardError('IMDSGUARD_E_USAGE', '--checks: at least one check id');
  for (const id of list) {
    if (!(CHECK_IDS as readonly string[]).includes(id)) {
      throw new ImdsguardError(
        'IMDSGUARD_E_USAGE',
        `--checks: "${id}" is not a check (${CHECK_IDS.join(', ')})`,
      );
    }
  }
  return [...new Set(list)] as CheckId[];
}

export function parseRoot(value: string | undefined, cwd: string): string {
  if (value === undefined || value === '/') return '/';
  return isAbsolute(value) ? resolve(value) : resolve(cwd, value);
}

export function parseHealthUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `--health-url: "${value}" is not a URL`);
  }
  if (url.protocol !== 'http:') {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', '--health-url: only http:// URLs are supported');
  }
  return url.toString();
}

export function parseFailMode(failOpen: boolean | undefined): FailMode {
  return failOpen ? 'open' : 'closed';
}

/** Health wait in ms; at most 5 minutes. */
export function parseHealthTimeout(value: string | undefined): number {
  if (value === undefined) return 0;
  const ms = parseDuration(value, '--health-timeout');
  if (ms > 300_000) throw new ImdsguardError('IMDSGUARD_E_USAGE', '--health-timeout: at most 5m');
  return ms;
}

/** --bin: the imdsguard executable the unit runs (one absolute path). */
export function parseBin(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (!isAbsolute(value)) throw new ImdsguardError('IMDSGUARD_E_USAGE', '--bin: expected an absolute path');
  return [value];
}
