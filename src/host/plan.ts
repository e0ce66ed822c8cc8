import { configFile, envFile, sysctlFile } from './files.js';
import { desiredIptables, IPT_TOOLS, type IptDesired, scratchIptables } from './iptables.js';
import { nftInstallScript } from './nftables.js';
import { interfacesUnitFile, unitFile } from './systemd.js';
import {
  containerInterfaces,
  type FileSpec,
  type HostCommand,
  INTERFACES_UNIT_NAME,
  type InstallOptions,
  isInterfacePattern,
  PATHS,
  type RuleOptions,
  UNIT_NAME,
} from './types.js';

/**
 * PURE install plan: from options to the user, files, rules and systemd steps, in the order they are
 * applied. `renderPlan` prints it as the shell script install shows without --apply.
 */

export interface RulePlan {
  backend: RuleOptions['backend'];
  /** iptables backend: desired state for each family. */
  iptables?: { ipv4: IptDesired; ipv6: IptDesired };
  /** nftables backend: the atomic script for `nft -f -`. */
  nftScript?: string;
}

export interface InstallPlan {
  options: InstallOptions;
  createUser: HostCommand | undefined;
  files: FileSpec[];
  rules: RulePlan;
  /** Run after the files are written (systemd as PID 1 only). */
  systemd: HostCommand[];
}

export function useraddCommand(name: string): HostCommand {
  return {
    argv: [
      'useradd',
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      PATHS.stateDir,
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      'imdsguard IMDS guard',
      name,
    ],
    why: `create the system user ${name} the guard runs as`,
  };
}

export function rulePlan(opts: RuleOptions): RulePlan {
  if (opts.backend === 'nftables') return { backend: 'nftables', nftScript: nftInstallScript(opts) };
  return {
    backend: 'iptables',
    iptables: { ipv4: desiredIptables(opts, 'ipv4'), ipv6: desiredIptables(opts, 'ipv6') },
  };
}

export function installFiles(opts: InstallOptions): FileSpec[] {
  const files: FileSpec[] = [
    { path: PATHS.config, content: configFile(opts), mode: 0o640, group: 'guard', keepExisting: true },
    { path: PATHS.env, content: envFile(), mode: 0o640, group: 'guard', keepExisting: true },
  ];
  if (opts.bridges.length > 0) {
    files.push({
      path: PATHS.sysctl,
      content: sysctlFile(opts.bridges),
      mode: 0o644,
      group: 'root',
      keepExisting: false,
    });
  }
  if (opts.systemd) {
    files.push({
      path: PATHS.unit,
      content: unitFile(opts),
      mode: 0o644,
      group: 'root',
      keepExisting: false,
    });
    if (opts.podInterfaces.length > 0) {
      files.push({
        path: PATHS.interfacesUnit,
        content: interfacesUnitFile(opts),
        mode: 0o644,
        group: 'root',
        keepExisting: false,
      });
    }
  }
  return files;
}

export function buildInstallPlan(opts: InstallOptions): InstallPlan {
  return {
    options: opts,
    createUser: opts.user.create ? useraddCommand(opts.user.name) : undefined,
    files: installFiles(opts),
    rules: rulePlan(opts),
    systemd: opts.systemd
      ? [
          { argv: ['systemctl', 'daemon-reload'], why: 'load the unit' },
          { argv: ['systemctl', 'enable', UNIT_NAME], why: 'start the guard at boot' },
          ...(opts.podInterfaces.length > 0
            ? [
                {
                  argv: ['systemctl', 'enable', INTERFACES_UNIT_NAME],
                  why: 'start the interface watcher with the guard',
                },
              ]
            : []),
        ]
      : [],
  };
}

/** Commands that create the rules from scratch (for printing). */
export function ruleCommands(plan: RulePlan): HostCommand[] {
  if (plan.nftScript !== undefined) {
    return [{ argv: ['nft', '-f', '-'], input: plan.nftScript, why: 'add table inet imdsguard (atomic)' }];
  }
  const out: HostCommand[] = [];
  if (!plan.iptables) return out;
  for (const d of [plan.iptables.ipv4, plan.iptables.ipv6]) {
    for (const args of scratchIptables(d)) out.push({ argv: [IPT_TOOLS[d.family].tool, ...args] });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Rendering

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function renderCommand(cmd: HostCommand): string {
  const line = cmd.argv.map(shellQuote).join(' ');
  if (cmd.input === undefined) return line;
  return `${line} <<'EOF'\n${cmd.input.replace(/\n$/, '')}\nEOF`;
}

function withRoot(root: string, path: string): string {
  return root === '/' ? path : `${root.replace(/\/$/, '')}${path}`;
}

/** The plan as a reviewable shell script (what `imdsguard install` prints without --apply). */
export function renderPlan(plan: InstallPlan, opts: { rulesOnly: boolean }): string {
  const o = plan.options;
  const out: string[] = [
    '#!/bin/sh',
    `# imdsguard install plan (${o.backend}, port ${o.port}, user ${o.user.name}${o.ipv6 ? ', IPv6' : ''}${
      o.bridges.length > 0 ? `, containers: ${o.bridges.join(' ')}` : ''
    }${o.podInterfaces.length > 0 ? `, pod interfaces: ${o.podInterfaces.join(' ')}` : ''}, fail ${o.failMode}).`,
    '# Nothing was changed. Re-run with --apply to apply it (idempotent; uninstall --apply reverts it).',
    'set -e',
  ];
  if (!opts.rulesOnly) {
    if (plan.createUser) {
      out.push('', `# ${plan.createUser.why}`, `id -u ${shellQuote(o.user.name)} >/dev/null 2>&1 ||`);
      out.push(`  ${renderCommand(plan.createUser)}`);
    }
    for (const f of plan.files) {
      const path = withRoot(o.root, f.path);
      out.push('', `# ${f.keepExisting ? 'written only if absent: ' : ''}${f.path}`);
      out.push(`mkdir -p ${shellQuote(path.slice(0, path.lastIndexOf('/')) || '/')}`);
      if (f.keepExisting) out.push(`[ -e ${shellQuote(path)} ] ||`);
      out.push(`cat > ${shellQuote(path)} <<'EOF'\n${f.content.replace(/\n$/, '')}\nEOF`);
      out.push(`chmod ${f.mode.toString(8)} ${shellQuote(path)}`);
      if (f.group === 'guard') out.push(`chgrp ${shellQuote(o.user.name)} ${shellQuote(path)}`);
    }
  }
  out.push('', '# the redirect (install --apply first checks that the guard is healthy, unless --force)');
  for (const c of ruleCommands(plan.rules)) out.push(renderCommand(c));
  const ifaces = containerInterfaces(o);
  if (ifaces.length > 0) {
    // After the rules: route_localnet never goes on without the drop of other traffic to 127.0.0.0/8.
    out.push(
      '',
      '# let the container interfaces reach the guard on 127.0.0.1 (install --apply records each change;',
      '# the sysctl file covers bridges that appear later, install --watch-interfaces pod interfaces)',
    );
    for (const i of ifaces) {
      const glob = isInterfacePattern(i) ? `${i.slice(0, -1)}*` : i;
      out.push(
        `for f in /proc/sys/net/ipv4/conf/${glob}/route_localnet; do if [ -e "$f" ]; then echo 1 > "$f"; fi; done`,
      );
    }
  }
  if (!opts.rulesOnly && plan.systemd.length > 0) {
    out.push('', '# systemd (only when systemd is PID 1 and --root is /)');
    for (const c of plan.systemd) out.push(renderCommand(c));
  }
  return `${out.join('\n')}\n`;
}
