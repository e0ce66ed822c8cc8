import { DEFAULT_SYSCTL_ROOT, type InstallOptions, PATHS, RULE_MARK } from './types.js';

/**
 * PURE generation of the files install writes besides the units: the config and environment files
 * and the sysctl drop-in for container bridges.
 */

/** First line of every file we generate; uninstall only removes files that still start with it. */
export const FILE_MARK = `# Managed by ${RULE_MARK} install; \`${RULE_MARK} uninstall --apply\` removes it.`;

/** Port of the admin endpoint the generated config enables (the guard port + 1), if any. */
export function adminPort(opts: Pick<InstallOptions, 'port'>): number | undefined {
  return opts.port < 65535 ? opts.port + 1 : undefined;
}

export function configFile(opts: InstallOptions): string {
  const admin = adminPort(opts);
  const lines = [
    FILE_MARK,
    `# imdsguard guard configuration (YAML); see docs/config.md. The unit passes --listen 127.0.0.1:${opts.port}${opts.ipv6 ? ` and [::1]:${opts.port}` : ''}`,
    '# on the command line. Defaults (docs/policy.md): enforce mode; IMDSv2 allowed for local callers;',
    '# IMDSv1 allowed for the AWS SDK and CLI User-Agents (guard.allowUserAgents), Metadata-Flavor: Amazon,',
    '# the secret header and allowed executables or users, and refused (401) for everyone else;',
    '# a credentials or user-data read allowed on a header alone raises an alert. To refuse IMDSv1',
    '# except for named callers: guard.requireV2: true. Install never overwrites this file once it exists.',
  ];
  // the token ledger survives restarts there (SDKs cache tokens for up to 6 hours)
  lines.push('guard:', `  stateDir: ${PATHS.stateDir}`);
  if (opts.bridges.length > 0) {
    lines.push(
      '  # --containers: token requests from containers are refused unless allowed; to let them through:',
      '  # containerTokens: allow',
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

/** The route_localnet switch of an interface (under another sysctl root in a container). */
export function routeLocalnetPath(iface: string, sysctlRoot: string = DEFAULT_SYSCTL_ROOT): string {
  return `${sysctlRoot}/net/ipv4/conf/${iface}/route_localnet`;
}
