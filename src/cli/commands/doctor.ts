import { CHECK_IDS, doctorExitCode, evaluateDoctor, renderChecks } from '../../host/doctor.js';
import { gatherDoctorFacts } from '../../host/doctor-io.js';
import { defaultHealthTarget } from '../../host/probe-io.js';
import { execRunner } from '../../host/runner.js';
import { readState } from '../../host/state-io.js';
import { DEFAULT_USER } from '../../host/types.js';
import { writeOutput } from '../../report/output.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../common-options.js';
import type { CliContext, CommandSpec } from '../context.js';
import {
  parseBackend,
  parseChecks,
  parseHealthUrl,
  parsePort,
  parseRoot,
  parseSysctlRoot,
  parseUser,
} from '../host-options.js';

const OUTPUT: OutputSpec<'table' | 'json'> = { formats: ['table', 'json'], defaultText: 'table' };

interface DoctorFlags extends Record<string, unknown> {
  port?: string;
  healthUrl?: string;
  backend?: string;
  user?: string;
  ipv6?: boolean;
  v1Probe?: boolean;
  root?: string;
  sysctlRoot?: string;
  checks?: string;
}

async function run(flags: DoctorFlags, ctx: CliContext): Promise<void> {
  const { format = 'table', output } = readOutputOptions(flags, OUTPUT);
  const runner = execRunner({ ...ctx.env } as NodeJS.ProcessEnv);
  // What install recorded fills in the flags not given.
  const state = await readState(parseRoot(flags.root, ctx.cwd));
  const port = flags.port !== undefined ? parsePort(flags.port) : (state?.port ?? parsePort(undefined));
  const userName = flags.user !== undefined ? parseUser(flags.user) : (state?.user ?? DEFAULT_USER);
  const only = flags.checks === undefined ? undefined : new Set(parseChecks(flags.checks));
  const facts = await gatherDoctorFacts(runner, {
    port,
    userName,
    ipv6Expected: flags.ipv6 === true || state?.ipv6 === true,
    backend: parseBackend(flags.backend),
    health: defaultHealthTarget(port, parseHealthUrl(flags.healthUrl)),
    probeV1: flags.v1Probe !== false,
    interfaces: [...(state?.bridges ?? []), ...(state?.podInterfaces ?? [])],
    sysctlRoot: parseSysctlRoot(flags.sysctlRoot),
    ...(only ? { checks: only } : {}),
  });
  const checks = evaluateDoctor(facts).filter((c) => !only || only.has(c.id));
  ctx.exitCode = Math.max(ctx.exitCode, doctorExitCode(checks));
  const text =
    format === 'json'
      ? `${JSON.stringify({ ok: doctorExitCode(checks) === 0, checks }, null, 2)}\n`
      : renderChecks(checks);
  await writeOutput(ctx.stdout, text, output, ctx.cwd);
}

export const doctorCommand: CommandSpec = {
  name: 'doctor',
  summary:
    'Check the redirect (and the container interfaces), the guard, its exemption, IMDS reachability, capabilities and the attribution addon on this host.',
  examples: [
    ['sudo imdsguard doctor', 'check everything; exit 1 when any check is not ok'],
    [
      'imdsguard doctor --checks redirect-v4,guard-health,imds-via-guard',
      'only these checks (a readiness probe; no IMDSv1 call)',
    ],
    [
      'sudo imdsguard doctor --json --health-url http://127.0.0.1:16926/healthz',
      'JSON for scripts, with the guard admin health endpoint',
    ],
  ],
  configure(cmd, ctx) {
    addOutputOptions(cmd, OUTPUT)
      .option('--port <n>', 'guard port (default: as installed, else 16925)')
      .option(
        '--health-url <url>',
        'URL that must answer 2xx, such as the guard admin /healthz (default: any answer on the guard port)',
      )
      .option('--backend <backend>', 'iptables|nftables (default: wherever imdsguard rules are)')
      .option('--user <name>', 'the guard user the rules must exempt (default: as installed, else imdsguard)')
      .option('--ipv6', 'expect the IPv6 redirect too (default: as installed)')
      .option('--no-v1-probe', 'do not send the tokenless GET (it counts in CloudWatch MetadataNoToken)')
      .option('--root <dir>', 'the prefix install wrote its record under (default: /)')
      .option(
        '--sysctl-root <dir>',
        "where the host's /proc/sys is mounted, in a container (default: /proc/sys)",
      )
      .option(
        '--checks <ids>',
        `only these checks, and only the probes they need (e.g. a readiness probe): ${CHECK_IDS.join(',')}`,
      )
      .action((flags: DoctorFlags) => run(flags, ctx));
  },
};
