/**
 * The options the `fleet` subcommands share, each group defined once and read once per command into
 * the typed options of the use cases (src/fleet/run):
 *
 *   addFleetOptions / readFleetOptions           accounts, regions, profile, endpoint, retries, --verbose
 *   addSelectionOptions / readSelectionOptions   --instances, --input-file, --tags, --exclude-*, --states
 *   addChangeOptions / readChangeOptions         --dry-run, --yes, --journal, --change-log*
 *   addUsageOptions / readUsageOptions           --days, --metrics, --max-datapoints, --host-evidence
 *   addHistoryOptions / readHistoryOption        --history, --no-history
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ImdsguardError } from '../errors.js';
import type { ChangeLogFormat } from '../fleet/apply/changelog.js';
import { validateSelection } from '../fleet/aws/targets.js';
import { DEFAULT_JOURNAL_FILE } from '../fleet/journal/store.js';
import { parseInstanceIds, parseStates, parseTagPairs } from '../fleet/plan/selection.js';
import type { ChangeOptions } from '../fleet/run/change.js';
import { historyPathFor } from '../fleet/run/history.js';
import type { SelectionOptions } from '../fleet/run/instances.js';
import { FLEET_RUN_DEFAULTS, type FleetRunOptions } from '../fleet/run/session.js';
import type { UsageOptions } from '../fleet/run/usage.js';
import { isLogsSpec, LOGS_QUERY_DEFAULTS, parseLogsSpec } from '../fleet/usage/logs-query.js';
import { USAGE_DEFAULTS } from '../fleet/usage/window.js';
import { OUTPUT_FORMATS, type OutputFormat } from '../report/output.js';
import { addOutputOptions, type OutputArgs, type OutputSpec, readOutputOptions } from './common-options.js';
import type { CliContext } from './context.js';
import { collect, parseChoice, parseIntInRange, parseList } from './options.js';

/** The shared fleet option defaults (the use cases' own). */
export const FLEET_OPTION_DEFAULTS = FLEET_RUN_DEFAULTS;

/** The output formats of the fleet subcommands (report and guardrails have their own). */
export const FLEET_OUTPUT: OutputSpec<OutputFormat> = {
  formats: OUTPUT_FORMATS,
  defaultText: 'table on a terminal, json otherwise',
};

/** The options of a fleet subcommand that scans and prints: accounts, regions, output, retries. */
export function addScanOptions(cmd: Command, output: OutputSpec = FLEET_OUTPUT): Command {
  return addRunOptions(addOutputOptions(addFleetOptions(cmd), output));
}

// ---------------------------------------------------------------------------------------------------
// Accounts, regions and how AWS is reached

/** Adds the account, region, endpoint and retry options, and --verbose. */
export function addFleetOptions(cmd: Command): Command {
  return cmd
    .option(
      '-r, --region <region>',
      'one region; with --regions, one more (default: AWS_REGION, else the profile region)',
    )
    .option(
      '--regions <list>',
      'comma-separated regions (default: AWS_REGION, else the profile region)',
      parseList,
    )
    .option('--all-regions', 'every region enabled for the caller (DescribeRegions)')
    .option(
      '-p, --profile <name>',
      'the shared config and credentials profile (default: keys from the environment, else AWS_PROFILE, else default)',
    )
    .option('--org', 'every active account of the organization (Organizations ListAccounts); needs --role')
    .option('--accounts <ids>', 'comma-separated 12-digit account ids; needs --role', parseList)
    .option('--role <name>', 'the role to assume in each account (sts:AssumeRole)')
    .option('--external-id <id>', 'the ExternalId for AssumeRole')
    .option('--endpoint-url <url>', 'send every AWS call to <url> (a local test endpoint)');
}

/** --concurrency, --max-attempts and --verbose (after the output options in --help). */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option(
      '--concurrency <n>',
      `account x region scans in flight, 1..64 (default: ${FLEET_OPTION_DEFAULTS.concurrency})`,
      (v) => parseIntInRange(v, 1, 64, '--concurrency'),
    )
    .option(
      '--max-attempts <n>',
      `attempts per AWS call, first included, 1..20 (default: ${FLEET_OPTION_DEFAULTS.maxAttempts})`,
      (v) => parseIntInRange(v, 1, 20, '--max-attempts'),
    )
    .option('-v, --verbose', 'print the AWS API calls made, per operation, on stderr');
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function checkEndpointUrl(endpointUrl: string | undefined): void {
  if (endpointUrl === undefined) return;
  let u: URL;
  try {
    u = new URL(endpointUrl);
  } catch {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `--endpoint-url: "${endpointUrl}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--endpoint-url: expected http:// or https://, got "${endpointUrl}"`,
    );
  }
}

function checkRegion(region: string): void {
  try {
    validateSelection({ regions: [region] });
  } catch {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--region: "${region}" is not a region name such as us-east-1`,
    );
  }
}

/** Reads and checks the account, region, endpoint and retry options. Throws IMDSGUARD_E_USAGE. */
export function readFleetOptions(raw: Record<string, unknown>): FleetRunOptions {
  const endpointUrl = str(raw['endpointUrl']);
  checkEndpointUrl(endpointUrl);
  const region = str(raw['region']);
  if (region !== undefined) checkRegion(region);
  const listed = raw['regions'] as string[] | undefined;
  const regions = region === undefined ? listed : [...(listed ?? []), region];
  const opts: FleetRunOptions = {
    regions,
    allRegions: raw['allRegions'] === true,
    profile: str(raw['profile']),
    org: raw['org'] === true,
    accounts: raw['accounts'] as string[] | undefined,
    role: str(raw['role']),
    externalId: str(raw['externalId']),
    endpointUrl,
    concurrency: (raw['concurrency'] as number | undefined) ?? FLEET_OPTION_DEFAULTS.concurrency,
    maxAttempts: (raw['maxAttempts'] as number | undefined) ?? FLEET_OPTION_DEFAULTS.maxAttempts,
  };
  validateSelection(opts);
  return opts;
}

// ---------------------------------------------------------------------------------------------------
// Selection (harden, disable, hop-limit)

export function addSelectionOptions(cmd: Command): Command {
  return cmd
    .option('--instances <ids>', 'comma-separated instance ids (repeatable)', collect)
    .option('--instance-ids <ids>', 'alias of --instances', collect)
    .option(
      '--input-file <file>',
      'a CSV with a header row and an instance_id column (account_id and region columns optional), any number of rows',
    )
    .option(
      '--tags <k=v,...>',
      'only instances with every one of these tags, key AND value (repeatable)',
      collect,
    )
    .option('--exclude-tags <k=v,...>', 'skip instances with any of these tags (repeatable)', collect)
    .option('--exclude-instances <ids>', 'skip these instance ids (repeatable)', collect)
    .option(
      '--states <list>',
      'only instances in these states: pending,running,stopping,stopped (default: all four)',
    );
}

function strings(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v
    .flatMap((x) => String(x).split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Reads and checks the selection options (the --input-file CSV is read by the use case). */
export function readSelectionOptions(raw: Record<string, unknown>, ctx: CliContext): SelectionOptions {
  const instanceIds = parseInstanceIds(
    [...strings(raw['instances']), ...strings(raw['instanceIds'])],
    '--instances',
  );
  const file = str(raw['inputFile']);
  const states = typeof raw['states'] === 'string' ? strings([raw['states']]) : [];
  return {
    instanceIds,
    inputFile: file === undefined ? undefined : { path: resolve(ctx.cwd, file), name: file },
    tags: parseTagPairs(strings(raw['tags']), '--tags'),
    excludeTags: parseTagPairs(strings(raw['excludeTags']), '--exclude-tags'),
    excludeInstanceIds: parseInstanceIds(strings(raw['excludeInstances']), '--exclude-instances'),
    states: states.length > 0 ? parseStates(states) : null,
  };
}

// ---------------------------------------------------------------------------------------------------
// Changes

export function addChangeOptions(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'send every call with DryRun=true: checks permissions, changes nothing')
    .option(
      '-y, --yes',
      'apply the plan without asking (default: ask on a terminal, else only print the plan)',
    )
    .option('--journal <file>', `the change journal, SQLite (default: ./${DEFAULT_JOURNAL_FILE})`)
    .option('--change-log <file>', 'append one line per action to <file> (default: text lines on stderr)')
    .option(
      '--change-log-format <format>',
      'json|text: JSON Lines or text (default: json for a file, text on stderr)',
      (v) => parseChoice(v, ['json', 'text'] as const, '--change-log-format'),
    );
}

export function readChangeOptions(raw: Record<string, unknown>, ctx: CliContext): ChangeOptions {
  const logFile = str(raw['changeLog']);
  return {
    dryRun: raw['dryRun'] === true,
    yes: raw['yes'] === true,
    journal: resolve(ctx.cwd, str(raw['journal']) ?? DEFAULT_JOURNAL_FILE),
    changeLog: {
      file: logFile !== undefined && logFile !== '-' ? resolve(ctx.cwd, logFile) : undefined,
      format: raw['changeLogFormat'] as ChangeLogFormat | undefined,
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Usage evidence (usage, discover --usage, report --usage, harden --only-ready)

/** Adds --days, --metrics, --max-datapoints and (unless told not to) --host-evidence. */
export function addUsageOptions(cmd: Command, withHostEvidence = true): Command {
  cmd
    .option(
      '--days <n>',
      `the usage window in days, 1..${USAGE_DEFAULTS.maxDays} (default: ${USAGE_DEFAULTS.days})`,
      (v) => parseIntInRange(v, 1, USAGE_DEFAULTS.maxDays, '--days'),
    )
    .option(
      '--metrics <mode>',
      'auto|both: one series per instance, the one its state can move, or MetadataNoToken and MetadataNoTokenRejected for every instance (default: auto)',
      (v) => parseChoice(v, ['auto', 'both'] as const, '--metrics'),
    )
    .option(
      '--max-datapoints <n>',
      'GetMetricData MaxDatapoints per response, 1..100800; less means more pages (default: 100800)',
      (v) => parseIntInRange(v, 1, 100_800, '--max-datapoints'),
    );
  if (withHostEvidence) {
    cmd
      .option(
        '--host-evidence <source...>',
        "which process makes the IMDSv1 calls: cloudwatch-logs:LOG_GROUP (the guards' caller summary, queried with Logs Insights in every account and region; or cloudwatch-logs:arn:aws:logs:REGION:ACCOUNT:log-group:NAME for one central group), or `imdsguard callers --json` files or directories of *.json (see docs/usage.md)",
      )
      .option(
        '--logs-query-limit <n>',
        `rows per Logs Insights query, 1..${LOGS_QUERY_DEFAULTS.limit}; results that fill it are split by instance and time (default: ${LOGS_QUERY_DEFAULTS.limit})`,
        (v) => parseIntInRange(v, 1, LOGS_QUERY_DEFAULTS.limit, '--logs-query-limit'),
      );
  }
  return cmd;
}

export function readUsageOptions(raw: Record<string, unknown>, ctx: CliContext): UsageOptions {
  const he = raw['hostEvidence'];
  const paths = Array.isArray(he) ? (he as string[]) : typeof he === 'string' ? [he] : [];
  // A cloudwatch-logs: source is checked now, before any AWS call (exit 2 when malformed).
  for (const p of paths) if (isLogsSpec(p)) parseLogsSpec(p);
  return {
    days: (raw['days'] as number | undefined) ?? USAGE_DEFAULTS.days,
    mode: (raw['metrics'] as 'auto' | 'both' | undefined) ?? 'auto',
    maxDatapoints: raw['maxDatapoints'] as number | undefined,
    hostEvidence: paths.map((p) => (isLogsSpec(p) ? p : resolve(ctx.cwd, p))),
    logsQueryLimit: raw['logsQueryLimit'] as number | undefined,
  };
}

// ---------------------------------------------------------------------------------------------------
// The fleet history (discover, report)

export function addHistoryOptions(cmd: Command): Command {
  return cmd
    .option(
      '--history <file>',
      'the fleet history, SQLite (default: IMDSGUARD_FLEET_HISTORY, else ~/.local/share/imdsguard/fleet-history.db)',
    )
    .option('--no-history', 'neither record this scan in the history nor read it');
}

/** The history file for this run, or undefined with --no-history (or when no default can be found). */
export function readHistoryOption(raw: Record<string, unknown>, ctx: CliContext): string | undefined {
  const v = raw['history'];
  return historyPathFor(typeof v === 'string' || v === false ? v : undefined, ctx.env, (p) =>
    resolve(ctx.cwd, p),
  );
}

// ---------------------------------------------------------------------------------------------------
// The instance changes (harden, disable, hop-limit)

/** The fleet, output, selection and change options of an instance change. */
export function addInstanceChangeOptions(cmd: Command): Command {
  return addChangeOptions(addSelectionOptions(addScanOptions(cmd)));
}

export interface InstanceChangeArgs {
  fleet: FleetRunOptions;
  out: OutputArgs<OutputFormat>;
  verbose: boolean;
  selection: SelectionOptions;
  change: ChangeOptions;
}

/** Reads the options addInstanceChangeOptions added, in the order they are checked. */
export function readInstanceChangeOptions(raw: Record<string, unknown>, ctx: CliContext): InstanceChangeArgs {
  return {
    fleet: readFleetOptions(raw),
    out: readOutputOptions(raw, FLEET_OUTPUT),
    verbose: raw['verbose'] === true,
    selection: readSelectionOptions(raw, ctx),
    change: readChangeOptions(raw, ctx),
  };
}
