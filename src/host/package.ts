import { configFile, envFile, FILE_MARK } from './files.js';
import { useraddCommand } from './plan.js';
import { unitFile } from './systemd.js';
import { DEFAULT_GUARD_PORT, DEFAULT_USER, type InstallOptions, PATHS } from './types.js';

/**
 * PURE: the files and the user of the .deb (`npm run release`, scripts/release/deb.js), made by the
 * same generators as `install --systemd`, so the package and install never disagree on the unit.
 * The differences are on purpose: the unit is the vendor's (/lib/systemd/system, which a unit that
 * install writes in /etc overrides), its hooks detect the firewall backend on each start (the host
 * is unknown when the package is built), and dpkg, not `imdsguard uninstall`, owns the files.
 */

export const PACKAGE_PATHS = {
  bin: '/usr/bin/imdsguard',
  unit: '/lib/systemd/system/imdsguard.service',
  doc: '/usr/share/doc/imdsguard',
} as const;

/** What install would choose on a host with the defaults, for the packaged executable. */
export function packageInstallOptions(): InstallOptions {
  return {
    backend: 'nftables',
    hooksDetectBackend: true,
    port: DEFAULT_GUARD_PORT,
    ipv6: false,
    bridges: [],
    podInterfaces: [],
    exempt: DEFAULT_USER,
    user: { name: DEFAULT_USER, uid: undefined, gid: undefined, create: true },
    root: '/',
    systemd: true,
    failMode: 'closed',
    self: [PACKAGE_PATHS.bin],
    healthUrl: undefined,
  };
}

/** The first line of the package's config files: not install's mark, so uninstall keeps them. */
export const PACKAGE_FILE_MARK =
  '# Installed by the imdsguard package (dpkg owns this file; apt purge removes it).';

function packaged(text: string): string {
  if (!text.startsWith(`${FILE_MARK}\n`)) throw new Error(`generated file does not start with ${FILE_MARK}`);
  return `${PACKAGE_FILE_MARK}${text.slice(FILE_MARK.length)}`;
}

export interface PackageFile {
  path: string;
  content: string;
  mode: number;
  /** A dpkg conffile: an upgrade keeps the administrator's edits. */
  conffile: boolean;
}

/** The unit and the config files of the package (the executable and the docs are added by the build). */
export function packageFiles(): PackageFile[] {
  const opts = packageInstallOptions();
  return [
    { path: PACKAGE_PATHS.unit, content: unitFile(opts), mode: 0o644, conffile: false },
    { path: PATHS.config, content: packaged(configFile(opts)), mode: 0o640, conffile: true },
    { path: PATHS.env, content: packaged(envFile()), mode: 0o640, conffile: true },
  ];
}

/** The postinst's command that creates the guard's system user (the same one install runs). */
export function packageUseradd(): string[] {
  return [...useraddCommand(DEFAULT_USER).argv];
}
