/**
 * Host deployment: the options install/uninstall/doctor take and the plan they produce. Everything
 * under src/host that is not named *-io.ts or runner.ts is pure: options in, plan (commands, files,
 * unit text) out. The I/O layer (the *-io.ts modules) runs the commands with a CommandRunner.
 */

export const BACKENDS = ['iptables', 'nftables'] as const;
export type Backend = (typeof BACKENDS)[number];

export const FAIL_MODES = ['closed', 'open'] as const;
/**
 * What happens to metadata traffic while the guard is down:
 * - closed: the redirect stays in place, IMDS is unreachable for everyone but the guard's user;
 * - open: the redirect exists only while the guard's unit is active (systemd hooks add and remove it).
 */
export type FailMode = (typeof FAIL_MODES)[number];

/** The IPv4 metadata address and port every rule matches. */
export const IMDS_V4 = '169.254.169.254';
/** The IPv6 metadata address on Nitro instances (HttpProtocolIpv6=enabled). */
export const IMDS_V6 = 'fd00:ec2::254';
export const IMDS_PORT = 80;
/** Default port the guard listens on (127.0.0.1 and, with IPv6, ::1). */
export const DEFAULT_GUARD_PORT = 16925;
export const DEFAULT_USER = 'imdsguard';
/** Default container bridges whose traffic --containers redirects. */
export const DEFAULT_BRIDGES = ['docker0', 'cni0', 'cbr0'] as const;
/** Marker carried by every rule install adds (iptables comment, nft table comment). */
export const RULE_MARK = 'imdsguard';

/** Paths, always absolute and relative to the root prefix (--root). */
export const PATHS = {
  configDir: '/etc/imdsguard',
  config: '/etc/imdsguard/config.yaml',
  env: '/etc/imdsguard/env',
  unit: '/etc/systemd/system/imdsguard.service',
  sysctl: '/etc/sysctl.d/60-imdsguard.conf',
  interfacesUnit: '/etc/systemd/system/imdsguard-interfaces.service',
  stateDir: '/var/lib/imdsguard',
  state: '/var/lib/imdsguard/install.json',
  /** The interfaces whose route_localnet install or the watcher turned on (uninstall restores them). */
  routeLocalnet: '/var/lib/imdsguard/route-localnet.json',
} as const;

export const UNIT_NAME = 'imdsguard.service';
export const INTERFACES_UNIT_NAME = 'imdsguard-interfaces.service';
/** Where the kernel's sysctl tree is (a container may see the host's at another path: --sysctl-root). */
export const DEFAULT_SYSCTL_ROOT = '/proc/sys';

/** The guard user as resolved on this host (uid/gid undefined when the user does not exist yet). */
export interface GuardUser {
  name: string;
  uid: number | undefined;
  gid: number | undefined;
  /** True when install must create it (no --user given and it does not exist). */
  create: boolean;
}

/** Everything that shapes the rules, fixed once the options are parsed. */
export interface RuleOptions {
  backend: Backend;
  port: number;
  ipv6: boolean;
  /** Bridge interfaces whose IPv4 metadata traffic is redirected (empty: no container rules). */
  bridges: readonly string[];
  /**
   * Pod interfaces (iptables patterns: "eni+" is every name starting with "eni") whose IPv4 metadata
   * traffic is redirected like a bridge's. They come and go with pods: route_localnet is set on those
   * that exist at install, and `install --watch-interfaces` sets it on those that appear later.
   */
  podInterfaces: readonly string[];
  /** The exempt user: a numeric uid when known, else the name (iptables and nft resolve names). */
  exempt: string;
}

export interface InstallOptions extends RuleOptions {
  user: GuardUser;
  root: string;
  systemd: boolean;
  failMode: FailMode;
  /** argv prefix that runs the installed imdsguard (e.g. [node, /usr/lib/.../dist/cli/main.js]). */
  self: readonly string[];
  /** Health URL the unit hook passes on (fail-open); undefined: the default probe. */
  healthUrl: string | undefined;
  /**
   * The unit's rule hooks name no --backend and detect it on each start (the .deb's unit, written
   * before the host is known). Default: they name `backend`.
   */
  hooksDetectBackend?: boolean;
}

/** One command of a plan: argv (never a shell string) and optional stdin. */
export interface HostCommand {
  argv: readonly string[];
  input?: string;
  /** Why the command runs, shown when printing a plan. */
  why?: string;
}

/** A file install writes, relative to the root prefix. */
export interface FileSpec {
  path: string;
  content: string;
  mode: number;
  /** Group that may read it: the guard user's group (undefined: root). */
  group: 'guard' | 'root';
  /** Never overwrite an existing file (the user's own config). */
  keepExisting: boolean;
}

/** What an apply run did: one line per change made, and notes that are not changes. */
export interface ApplyReport {
  /** One line per change made ("added ...", "wrote ..."); empty when nothing changed. */
  changes: string[];
  /** Notes that are not changes ("kept existing ...", "systemd is not PID 1 ..."). */
  notes: string[];
}

/** Every interface whose metadata traffic is DNATed to the guard: bridges, then pod patterns. */
export function containerInterfaces(o: Pick<RuleOptions, 'bridges' | 'podInterfaces'>): string[] {
  return [...o.bridges, ...o.podInterfaces];
}

/** True when an iptables-style interface name ends in "+" (a prefix pattern). */
export function isInterfacePattern(name: string): boolean {
  return name.endsWith('+');
}

/** Whether an interface name matches an iptables-style pattern ("eni+": any name starting "eni"). */
export function interfaceMatches(pattern: string, name: string): boolean {
  return isInterfacePattern(pattern) ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}
