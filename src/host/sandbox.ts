import { ImdsguardError } from '../errors.js';

/**
 * PURE: which paths the unit's sandbox hides from the guard, read from the unit text itself (so the
 * check cannot drift from what the unit sets), and whether the installation lives under one of them.
 *
 * Why it matters: the unit's rule hook (ExecStartPre=+..., fail closed) runs outside the sandbox, so
 * it adds the redirect; then ExecStart cannot even find node or main.js under /root or /home
 * (ProtectHome) or /tmp (PrivateTmp), the guard never starts, and IMDS is cut off for the whole host.
 */

/** A path the unit makes inaccessible or replaces with an empty one, and the setting that does it. */
export interface HiddenPath {
  path: string;
  setting: string;
}

/** An executable or module path the unit needs, as given (in ExecStart) and with symlinks resolved. */
export interface ExecPath {
  given: string;
  resolved: string;
}

export interface SandboxConflict {
  path: ExecPath;
  hidden: HiddenPath;
}

const YES = /^(?:yes|true|on|1)$/i;

/** The [Service] settings of a unit text (last value wins, as systemd reads single-valued keys). */
function serviceSettings(unit: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let section = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1] as string;
      continue;
    }
    const eq = line.indexOf('=');
    if (section === 'Service' && eq > 0) out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

/** Paths of a path-list setting, without systemd's "-" and "+" prefixes or ":options" suffixes. */
function pathList(value: string): string[] {
  return value
    .split(/\s+/)
    .filter(Boolean)
    .map((p) => p.replace(/^[-+]+/, '').replace(/:.*$/, ''))
    .filter((p) => p.startsWith('/'));
}

/** The paths a unit hides from its ExecStart (systemd.exec(5)). */
export function sandboxHiddenPaths(unit: string): HiddenPath[] {
  const settings = serviceSettings(unit);
  const last = (key: string) => settings.filter(([k]) => k === key).at(-1)?.[1];
  const out: HiddenPath[] = [];
  const protectHome = last('ProtectHome');
  if (protectHome !== undefined && (YES.test(protectHome) || protectHome === 'tmpfs')) {
    for (const path of ['/home', '/root', '/run/user'])
      out.push({ path, setting: `ProtectHome=${protectHome}` });
  }
  const privateTmp = last('PrivateTmp');
  if (privateTmp !== undefined && YES.test(privateTmp)) {
    for (const path of ['/tmp', '/var/tmp']) out.push({ path, setting: `PrivateTmp=${privateTmp}` });
  }
  for (const key of ['InaccessiblePaths', 'TemporaryFileSystem']) {
    for (const [k, v] of settings) {
      if (k === key) for (const path of pathList(v)) out.push({ path, setting: `${key}=${v}` });
    }
  }
  return out;
}

function under(path: string, dir: string): boolean {
  const d = dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
  return path === d || path.startsWith(`${d}/`);
}

/** Every path (given or resolved) that lies under a hidden one. */
export function sandboxConflicts(
  hidden: readonly HiddenPath[],
  paths: readonly ExecPath[],
): SandboxConflict[] {
  const out: SandboxConflict[] = [];
  for (const path of paths) {
    const h = hidden.find((x) => under(path.given, x.path) || under(path.resolved, x.path));
    if (h) out.push({ path, hidden: h });
  }
  return out;
}

/** Throws IMDSGUARD_E_HOST_SANDBOX when the unit could not run the installation it names. */
export function assertUnitCanRun(unit: string, paths: readonly ExecPath[]): void {
  const conflicts = sandboxConflicts(sandboxHiddenPaths(unit), paths);
  if (conflicts.length === 0) return;
  const what = conflicts
    .map(({ path, hidden }) => {
      const via = path.resolved !== path.given ? ` (resolves to ${path.resolved})` : '';
      return `${path.given}${via} is under ${hidden.path}, which ${hidden.setting} hides from the guard`;
    })
    .join('; ');
  throw new ImdsguardError(
    'IMDSGUARD_E_HOST_SANDBOX',
    `the systemd unit could not start the guard: ${what}. Its fail-closed hook would still add the redirect, cutting IMDS off for the whole host`,
    {
      hint: 'install imdsguard and Node outside /home, /root, /run/user, /tmp and /var/tmp (the release executable or .deb, or npm install -g under /usr/local with a system Node), or pass --bin with such an executable; see docs/install.md (systemd)',
      details: { paths: conflicts.map((c) => c.path.resolved) },
    },
  );
}
