import { ImdsguardError } from '../../errors.js';
import { readRedirects } from '../../host/doctor-io.js';
import { installApply } from '../../host/install-io.js';
import { watchPodInterfaces } from '../../host/interfaces-io.js';
import { buildInstallPlan, renderPlan, useraddCommand } from '../../host/plan.js';
import { defaultHealthTarget } from '../../host/probe-io.js';
import { detectBackend } from '../../host/rules-io.js';
import { execRunner } from '../../host/runner.js';
import { assertUnitCanRun } from '../../host/sandbox.js';
import { execPaths, selfCommand } from '../../host/self-io.js';
import { resolveGuardUser } from '../../host/system-io.js';
import { type ApplyReport, DEFAULT_USER, type InstallOptions, PATHS } from '../../host/types.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../common-options.js';
import type { CliContext, CommandSpec } from '../context.js';
import {
  parseBackend,
  parseBin,
  parseBridges,
  parseFailMode,
  parseHealthTimeout,
  parseHealthUrl,
  parsePodInterfaces,
  parsePort,
  parseRoot,
  parseSysctlRoot,
  parseUser,
} from '../host-options.js';

/** --format text|json (--json): the plan, or what was changed. */
export const HOST_OUTPUT: OutputSpec<'text' | 'json'> = {
  formats: ['text', 'json'],
  defaultText: 'text',
  output: false,
};

interface InstallFlags {
  apply?: boolean;
  backend?: string;
  user?: string;
  port?: string;
  ipv6?: boolean;
  containers?: boolean;
  bridges?: string;
  podInterfaces?: string;
  watchInterfaces?: boolean;
  sysctlRoot?: string;
  systemd?: boolean;
  root?: string;
  failOpen?: boolean;
  force?: boolean;
  healthUrl?: string;
  healthTimeout?: string;
  rulesOnly?: boolean;
  bin?: string;
  json?: boolean;
}

export function writeReport(
  ctx: CliContext,
  report: ApplyReport,
  json: boolean,
  extra: object = {},
  sayNothing = true,
): void {
  if (json) {
    ctx.stdout.write(`${JSON.stringify({ ...extra, changes: report.changes, notes: report.notes })}\n`);
    return;
  }
  for (const c of report.changes) ctx.stdout.write(`changed: ${c}\n`);
  for (const n of report.notes) ctx.stdout.write(`note: ${n}\n`);
  if (report.changes.length === 0 && sayNothing) ctx.stdout.write('nothing to change\n');
}

/** install --watch-interfaces: keeps route_localnet on for pod interfaces until stopped. */
async function watch(flags: InstallFlags, ctx: CliContext): Promise<void> {
  if (flags.apply !== true || flags.podInterfaces === undefined) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', '--watch-interfaces needs --apply and --pod-interfaces');
  }
  const runner = execRunner({ ...ctx.env } as NodeJS.ProcessEnv);
  const patterns = parsePodInterfaces(flags.podInterfaces);
  const json = flags.json === true;
  const backend = parseBackend(flags.backend);
  ctx.stdout.write(
    json
      ? `${JSON.stringify({ watching: patterns })}\n`
      : `watching ${patterns.join(', ')}: route_localnet goes on as they appear (stop with SIGTERM)\n`,
  );
  await watchPodInterfaces({
    patterns,
    sysctlRoot: parseSysctlRoot(flags.sysctlRoot),
    stateRoot: parseRoot(flags.root, ctx.cwd),
    stop: ctx.shutdown,
    async guarded() {
      const drop = (await readRedirects(runner, backend)).bridges?.loopbackDrop ?? [];
      return patterns.every((p) => drop.includes(p));
    },
    onReport: (report) => writeReport(ctx, report, json, {}, false),
  });
}

async function run(flags: InstallFlags, ctx: CliContext): Promise<void> {
  if (flags.watchInterfaces) return watch(flags, ctx);
  const runner = execRunner({ ...ctx.env } as NodeJS.ProcessEnv);
  const apply = flags.apply === true;
  const rulesOnly = flags.rulesOnly === true;
  const root = parseRoot(flags.root, ctx.cwd);
  const port = parsePort(flags.port);
  const bridges = flags.containers ? parseBridges(flags.bridges) : [];
  const podInterfaces = flags.podInterfaces === undefined ? [] : parsePodInterfaces(flags.podInterfaces);
  const sysctlRoot = parseSysctlRoot(flags.sysctlRoot);
  const healthUrl = parseHealthUrl(flags.healthUrl);
  const healthWaitMs = parseHealthTimeout(flags.healthTimeout);
  const self = parseBin(flags.bin) ?? selfCommand();
  const failMode = parseFailMode(flags.failOpen);
  const userName = flags.user === undefined ? DEFAULT_USER : parseUser(flags.user);
  const backend = parseBackend(flags.backend) ?? (await detectBackend(runner));
  const report: ApplyReport = { changes: [], notes: [] };

  const user = await resolveGuardUser(
    runner,
    userName,
    flags.user !== undefined,
    apply && !rulesOnly,
    root,
    report,
    useraddCommand(userName).argv,
  );
  const opts: InstallOptions = {
    backend,
    port,
    ipv6: flags.ipv6 === true,
    bridges,
    podInterfaces,
    exempt: user.uid === undefined ? user.name : String(user.uid),
    user,
    root,
    systemd: flags.systemd === true,
    failMode,
    self,
    healthUrl,
  };
  const plan = buildInstallPlan(opts);
  for (const unit of plan.files.filter((f) => f.path === PATHS.unit || f.path === PATHS.interfacesUnit)) {
    assertUnitCanRun(unit.content, await execPaths(self));
  }
  if (!apply) {
    if (flags.json) ctx.stdout.write(`${JSON.stringify({ applied: false, plan }, null, 2)}\n`);
    else ctx.stdout.write(renderPlan(plan, { rulesOnly }));
    return;
  }

  await installApply(
    runner,
    plan,
    {
      rulesOnly,
      rules: { force: flags.force === true, health: defaultHealthTarget(port, healthUrl), healthWaitMs },
      userCreated: user.created,
      sysctlRoot,
    },
    report,
  );
  writeReport(ctx, report, flags.json === true, { applied: true, backend, port, user: user.name });
}

export const installCommand: CommandSpec = {
  name: 'install',
  summary:
    'Print or apply the redirect rules, service user and systemd unit that put the guard in front of IMDS.',
  examples: [
    ['imdsguard install', 'print everything install would do (changes nothing)'],
    [
      'sudo imdsguard install --apply --systemd',
      'create the imdsguard user, config, unit, and the redirect (the guard must be healthy)',
    ],
    [
      'sudo imdsguard install --apply --ipv6 --containers --backend nftables',
      'also redirect [fd00:ec2::254] and traffic from docker0/cni0/cbr0',
    ],
    [
      'sudo imdsguard install --apply --systemd --pod-interfaces eni+',
      'an EKS node (Amazon VPC CNI): also redirect every pod veth, and watch for new ones',
    ],
    [
      'imdsguard install --systemd --fail-open --root ./pkgroot --user imdsguard --apply --force',
      'write the files under a packaging root',
    ],
  ],
  configure(cmd, ctx) {
    cmd
      .option('--apply', 'apply the plan (default: print it and change nothing)')
      .option('--backend <backend>', 'iptables|nftables (default: detected)')
      .option('--user <name>', 'existing user the guard runs as (default: create the imdsguard system user)')
      .option('--port <n>', 'port the guard listens on, 127.0.0.1 and [::1] (default: 16925)')
      .option('--ipv6', 'also redirect [fd00:ec2::254]:80 (the guard must listen on [::1])')
      .option(
        '--containers',
        'also redirect IPv4 metadata traffic arriving from container bridges (with --ipv6, refuse their IPv6 metadata traffic)',
      )
      .option('--bridges <list>', 'bridge interfaces for --containers (default: docker0,cni0,cbr0)')
      .option(
        '--pod-interfaces <list>',
        'also redirect IPv4 metadata traffic from pod interfaces, comma-separated; a trailing + matches a prefix: eni+ (Amazon VPC CNI), cali+ (Calico), lxc+ (Cilium)',
      )
      .option(
        '--watch-interfaces',
        'with --apply --pod-interfaces: keep running and turn route_localnet on for pod interfaces as they appear (changes nothing else)',
      )
      .option(
        '--sysctl-root <dir>',
        "where the host's /proc/sys is mounted, in a container (default: /proc/sys)",
      )
      .option('--systemd', 'install the systemd unit (enabled with --apply when systemd is PID 1)')
      .option(
        '--root <dir>',
        'write files under this prefix (packaging, tests); rules still apply live (default: /)',
      )
      .option('--fail-open', 'redirect only while the guard runs (default: fail closed, see docs/install.md)')
      .option('--force', 'add the redirect even when the guard is not healthy')
      .option(
        '--health-url <url>',
        'URL that must answer 2xx, such as the guard admin /healthz (default: any answer on the guard port)',
      )
      .option(
        '--health-timeout <duration>',
        'wait this long for the guard to become healthy, such as 15s (default: check once)',
      )
      .option('--rules-only', 'only the redirect rules (used by the unit hooks)')
      .option('--bin <path>', 'imdsguard executable the unit runs (default: this node and dist/cli/main.js)');
    addOutputOptions(cmd, HOST_OUTPUT).action((flags: InstallFlags & Record<string, unknown>) =>
      run({ ...flags, json: readOutputOptions(flags, HOST_OUTPUT).format === 'json' }, ctx),
    );
  },
};
