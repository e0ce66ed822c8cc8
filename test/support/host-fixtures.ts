import type { InstallOptions, RuleOptions } from '../../src/host/types.js';

/** Install and rule options for the pure host tests: defaults of a plain install, overridable. */

export const ruleOptions = (o: Partial<RuleOptions> = {}): RuleOptions => ({
  backend: 'iptables',
  port: 16925,
  ipv6: false,
  bridges: [],
  podInterfaces: [],
  exempt: '998',
  ...o,
});

export const installOptions = (o: Partial<InstallOptions> = {}): InstallOptions => ({
  ...ruleOptions(),
  user: { name: 'imdsguard', uid: 998, gid: 998, create: false },
  root: '/',
  systemd: true,
  failMode: 'closed',
  self: ['/usr/bin/node', '/usr/lib/node_modules/imdsguard/dist/cli/main.js'],
  healthUrl: undefined,
  ...o,
});
