import { FILE_MARK } from './files.js';
import { type InstallOptions, PATHS, UNIT_NAME } from './types.js';

/**
 * PURE generation of the systemd units install writes: the guard's (hardened, with the rule hooks)
 * and, for pod interfaces, the interface watcher's. files.ts writes the other files.
 */

/** Quotes one word for a systemd Exec line (systemd accepts C-style double quotes). */
export function systemdQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`;
}

export function execLine(argv: readonly string[]): string {
  return argv.map(systemdQuote).join(' ');
}

/** Isolation both units share (systemd.exec(5)); ProtectKernelTunables differs, so it is not here. */
const ISOLATION = [
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'RestrictNamespaces=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
].join('\n');

/** The system-service set of syscalls; others fail with EPERM instead of killing Node. */
const SYSCALLS = [
  'SystemCallFilter=@system-service',
  'SystemCallArchitectures=native',
  'SystemCallErrorNumber=EPERM',
].join('\n');

/** The argv the guard runs with. */
export function guardArgv(opts: InstallOptions): string[] {
  const argv = [...opts.self, 'guard', '--config', PATHS.config, '--listen', `127.0.0.1:${opts.port}`];
  if (opts.ipv6) argv.push('--listen', `[::1]:${opts.port}`);
  return argv;
}

/** The options that reproduce the same rules (used by the unit hooks and shown in messages). */
export function ruleFlags(opts: InstallOptions): string[] {
  const flags = [...backendFlag(opts), '--user', opts.user.name, '--port', String(opts.port)];
  if (opts.ipv6) flags.push('--ipv6');
  if (opts.bridges.length > 0) flags.push('--containers', '--bridges', opts.bridges.join(','));
  if (opts.podInterfaces.length > 0) flags.push('--pod-interfaces', opts.podInterfaces.join(','));
  return flags;
}

/** The interface watcher: route_localnet on for pod interfaces as they appear (root, CAP_NET_ADMIN). */
export function watcherArgv(opts: InstallOptions): string[] {
  return [
    ...opts.self,
    'install',
    '--apply',
    '--watch-interfaces',
    '--pod-interfaces',
    opts.podInterfaces.join(','),
  ];
}

/** `--backend NAME`, or nothing when the hooks detect it on the host (see hooksDetectBackend). */
function backendFlag(opts: InstallOptions): string[] {
  return opts.hooksDetectBackend ? [] : ['--backend', opts.backend];
}

/** Unit hook: add the redirect (root, via the "+" prefix). */
export function hookInstallArgv(opts: InstallOptions): string[] {
  const argv = [...opts.self, 'install', '--apply', '--rules-only', ...ruleFlags(opts)];
  if (opts.failMode === 'closed') {
    // Fail closed: the redirect goes in before the guard starts, so it cannot wait for health.
    argv.push('--force');
  } else {
    argv.push('--health-timeout', '15s');
    if (opts.healthUrl) argv.push('--health-url', opts.healthUrl);
  }
  return argv;
}

/** Unit hook (fail-open only): remove the redirect when the guard stops or dies. */
export function hookUninstallArgv(opts: InstallOptions): string[] {
  return [...opts.self, 'uninstall', '--apply', '--rules-only', ...backendFlag(opts)];
}

export function unitFile(opts: InstallOptions): string {
  const group = opts.user.name;
  const hooks: string[] =
    opts.failMode === 'closed'
      ? [
          '# Fail closed: the redirect is added before the guard starts and stays when it stops, so',
          '# IMDS is unreachable (except for the guard user) whenever the guard is down.',
          `ExecStartPre=+${execLine(hookInstallArgv(opts))}`,
        ]
      : [
          '# Fail open: the redirect exists only while the guard runs. It is added once the guard is',
          '# healthy and removed when it stops or dies, so IMDS is open (unguarded) while it is down.',
          `ExecStartPost=+${execLine(hookInstallArgv(opts))}`,
          `ExecStopPost=+${execLine(hookUninstallArgv(opts))}`,
        ];
  return `${FILE_MARK}
# The guard in front of the instance metadata service. See docs/install.md (systemd hardening).
[Unit]
Description=imdsguard: guard for the instance metadata service (IMDS)
Documentation=https://github.com/imdsguard/imdsguard/blob/main/docs/install.md
After=network.target

[Service]
Type=simple
User=${opts.user.name}
Group=${group}
EnvironmentFile=-${PATHS.env}
${hooks.join('\n')}
ExecStart=${execLine(guardArgv(opts))}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=1s
TimeoutStopSec=10s

# Attribution (which process is calling) reads /proc/<pid>/fd and /proc/<pid>/exe of other users'
# processes: CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE, nothing else. No CAP_NET_ADMIN: the rules are
# managed by the "+" hooks above, which run as root outside these restrictions.
AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE
CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE
NoNewPrivileges=yes

# File system: read-only everywhere except its state directory and /var/log/imdsguard (events.file;
# SIGHUP reopens it after logrotate).
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
StateDirectory=imdsguard
StateDirectoryMode=0750
LogsDirectory=imdsguard
LogsDirectoryMode=0750
ReadWritePaths=${PATHS.stateDir}
UMask=0077

# Kernel and process isolation. ProtectProc stays "default": the guard must see other processes.
ProtectKernelTunables=yes
${ISOLATION}
RemoveIPC=yes
# MemoryDenyWriteExecute is not set: Node's JIT needs writable and executable memory.

# Network: IPv4/IPv6 for proxying, UNIX for syslog, NETLINK for socket diagnostics.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
${SYSCALLS}

LimitNOFILE=65536
TasksMax=256

[Install]
WantedBy=multi-user.target
`;
}

/**
 * The unit of the interface watcher (install --pod-interfaces --systemd). It runs as root with only
 * CAP_NET_ADMIN and CAP_NET_RAW (writing net.ipv4.conf.IFACE.route_localnet, reading the rules), so
 * the guard itself never needs them.
 */
export function interfacesUnitFile(opts: InstallOptions): string {
  return `${FILE_MARK}
# Turns route_localnet on for pod interfaces (${opts.podInterfaces.join(', ')}) as they appear, so that
# their metadata traffic can be DNATed to the guard on 127.0.0.1. See docs/kubernetes.md.
[Unit]
Description=imdsguard: route_localnet for pod interfaces as they appear
Documentation=https://github.com/imdsguard/imdsguard/blob/main/docs/kubernetes.md
After=network.target
Before=${UNIT_NAME}
# Stops and restarts with the guard: with --fail-open its stop hook removes the rules, and then no
# interface may get route_localnet again (the watcher also checks the drop rule before each sweep).
PartOf=${UNIT_NAME}

[Service]
Type=simple
ExecStart=${execLine(watcherArgv(opts))}
Restart=always
RestartSec=1s
TimeoutStopSec=10s

# Root for /proc/sys/net/ipv4/conf/*/route_localnet (CAP_NET_ADMIN), and for reading the rules before
# each sweep (CAP_NET_ADMIN; CAP_NET_RAW for iptables-legacy's raw socket). Nothing else.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${PATHS.stateDir}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
UMask=0077
# ProtectKernelTunables stays off: writing route_localnet is this unit's job.
${ISOLATION}
# NETLINK for the link monitor (ip -o monitor link) and nft, INET for iptables-legacy, UNIX for the journal.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
${SYSCALLS}
TasksMax=32

[Install]
WantedBy=multi-user.target
`;
}
