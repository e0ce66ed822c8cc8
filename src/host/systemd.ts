import { type InstallOptions, PATHS, RULE_MARK } from './types.js';

/**
 * PURE generation of the files install writes: the systemd unit, the config and environment files
 * and the sysctl drop-in for container bridges.
 */

/** First line of every file we generate; uninstall only removes files that still start with it. */
export const FILE_MARK = `# Managed by ${RULE_MARK} install; \`${RULE_MARK} uninstall --apply\` removes it.`;

/** Quotes one word for a systemd Exec line (systemd accepts C-style double quotes). */
export function systemdQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`;
}

export function execLine(argv: readonly string[]): string {
  return argv.map(systemdQuote).join(' ');
}

/** The argv the guard runs with. */
export function guardArgv(opts: InstallOptions): string[] {
  const argv = [...opts.self, 'guard', '--config', PATHS.config, '--listen', `127.0.0.1:${opts.port}`];
  if (opts.ipv6) argv.push('--listen', `[::1]:${opts.port}`);
  return argv;
}

/** The options that reproduce the same rules (used by the unit hooks and shown in messages). */
export function ruleFlags(opts: InstallOptions): string[] {
  const flags = ['--backend', opts.backend, '--user', opts.user.name, '--port', String(opts.port)];
  if (opts.ipv6) flags.push('--ipv6');
  if (opts.bridges.length > 0) flags.push('--containers', '--bridges', opts.bridges.join(','));
  return flags;
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
  return [...opts.self, 'uninstall', '--apply', '--rules-only', '--backend', opts.backend];
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

# File system: read-only everywhere except its state directory.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
StateDirectory=imdsguard
StateDirectoryMode=0750
ReadWritePaths=${PATHS.stateDir}
UMask=0077

# Kernel and process isolation. ProtectProc stays "default": the guard must see other processes.
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
# MemoryDenyWriteExecute is not set: Node's JIT needs writable and executable memory.

# Network: IPv4/IPv6 for proxying, UNIX for syslog, NETLINK for socket diagnostics.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
SystemCallFilter=@system-service
SystemCallArchitectures=native
SystemCallErrorNumber=EPERM

LimitNOFILE=65536
TasksMax=256

[Install]
WantedBy=multi-user.target
`;
}

/** Port of the admin endpoint the generated config enables (the guard port + 1), if any. */
export function adminPort(opts: Pick<InstallOptions, 'port'>): number | undefined {
  return opts.port < 65535 ? opts.port + 1 : undefined;
}

export function configFile(opts: InstallOptions): string {
  const admin = adminPort(opts);
  const lines = [
    FILE_MARK,
    `# imdsguard guard configuration (YAML); see docs/config.md. The unit passes --listen 127.0.0.1:${opts.port}${opts.ipv6 ? ` and [::1]:${opts.port}` : ''}`,
    '# on the command line. Defaults: enforce mode, IMDSv2 allowed for local callers, IMDSv1 refused',
    '# unless a caller rule allows it. Install never overwrites this file once it exists.',
  ];
  if (opts.bridges.length > 0) {
    lines.push(
      '# --containers: token requests from containers are refused unless allowed; to let them through:',
      '# guard:',
      '#   containerTokens: allow',
    );
  }
  lines.push('events:', `  db: ${PATHS.stateDir}/events.db`);
  if (admin !== undefined) {
    lines.push(
      `# /healthz, /readyz and /metrics: imdsguard doctor --health-url http://127.0.0.1:${admin}/readyz`,
      'admin:',
      `  listen: 127.0.0.1:${admin}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function envFile(): string {
  return `${FILE_MARK}
# Environment for the guard (EnvironmentFile= of ${PATHS.unit.split('/').pop()}). One NAME=value a line.
# Never put secrets in the config file when this file can hold them: it is readable only by root
# and the guard's group. Names of the tools imdsguard replaces are accepted, e.g.:
# MODE=ALERT
# XHEADER=...
# SLACK_WEBHOOK=https://hooks.slack.com/services/...
`;
}

/** sysctl drop-in that lets bridge traffic be DNATed to 127.0.0.1 (applied when the bridge appears). */
export function sysctlFile(bridges: readonly string[]): string {
  return `${FILE_MARK}
# Container bridges may reach the guard on 127.0.0.1 only through imdsguard's DNAT rule; its INPUT
# rule drops any other bridge traffic to 127.0.0.0/8.
${bridges.map((b) => `net.ipv4.conf.${b}.route_localnet = 1`).join('\n')}
`;
}

/** /proc/sys path of a bridge's route_localnet switch. */
export function routeLocalnetPath(bridge: string): string {
  return `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`;
}
