/**
 * Options every `fleet` subcommand shares (regions, accounts, profile, endpoint, output), their
 * validation, and opening a fleet session (client factory + resolved accounts and regions).
 *
 *   addFleetOptions(cmd)                  adds the options to a commander command
 *   parseFleetOptions(raw)                validates commander's values -> FleetOptions
 *   openFleetSession(opts, ctx)           -> { factory, targets, close() }
 *   finishFleetRun(session, opts, ctx)    prints --verbose API call counts
 */
import type { Command } from 'commander';
import { ImdsguardError } from '../errors.js';
import { AwsClientFactory, type AwsFactoryOptions } from '../fleet/aws/clients.js';
import { type ResolvedTargets, resolveTargets, validateSelection } from '../fleet/aws/targets.js';
import { type CollectOptions, collectInventory } from '../fleet/inventory/collect.js';
import type { Inventory } from '../fleet/inventory/model.js';
import { renderApiCalls } from '../report/fleet.js';
import { OUTPUT_FORMATS, type OutputFormat, resolveFormat } from '../report/output.js';
import { createProgress } from '../report/progress.js';
import type { CliContext } from './context.js';
import { parseChoice, parseIntInRange, parseList } from './options.js';

export const FLEET_OPTION_DEFAULTS = {
  /** Account x region scans in flight. */
  concurrency: 8,
  /** Attempts per AWS call, first included (adaptive retry). */
  maxAttempts: 8,
} as const;

export interface FleetOptions {
  regions: string[] | undefined;
  allRegions: boolean;
  profile: string | undefined;
  org: boolean;
  accounts: string[] | undefined;
  role: string | undefined;
  externalId: string | undefined;
  endpointUrl: string | undefined;
  format: OutputFormat | undefined;
  output: string | undefined;
  verbose: boolean;
  concurrency: number;
  maxAttempts: number;
}

/** Adds the shared fleet options to a subcommand. */
export function addFleetOptions(cmd: Command): Command {
  return cmd
    .option(
      '--regions <list>',
      'comma-separated regions (default: the profile or AWS_REGION region)',
      parseList,
    )
    .option('--all-regions', 'every region enabled for the caller (DescribeRegions)')
    .option('--profile <name>', 'shared config/credentials profile')
    .option('--org', 'every active account of the organization (Organizations ListAccounts), with --role')
    .option('--accounts <ids>', 'comma-separated 12-digit account ids, with --role', parseList)
    .option('--role <name>', 'role to assume in each account (sts:AssumeRole)')
    .option('--external-id <id>', 'ExternalId for AssumeRole')
    .option('--endpoint-url <url>', 'send every AWS call to this URL (a local test endpoint)')
    .option(
      '--format <format>',
      `output format: ${OUTPUT_FORMATS.join('|')} (default: table on a terminal, json otherwise)`,
      (v) => parseChoice(v, OUTPUT_FORMATS, '--format'),
    )
    .option('--output <file>', 'write the output to FILE instead of stdout')
    .option(
      '--concurrency <n>',
      `account x region scans in flight (default ${FLEET_OPTION_DEFAULTS.concurrency})`,
      (v) => parseIntInRange(v, 1, 64, '--concurrency'),
    )
    .option(
      '--max-attempts <n>',
      `attempts per AWS call with adaptive retry (default ${FLEET_OPTION_DEFAULTS.maxAttempts})`,
      (v) => parseIntInRange(v, 1, 20, '--max-attempts'),
    )
    .option('-v, --verbose', 'print API call counts on stderr');
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Validates commander's option values. Throws IMDSGUARD_E_USAGE. */
export function parseFleetOptions(raw: Record<string, unknown>): FleetOptions {
  const endpointUrl = str(raw['endpointUrl']);
  if (endpointUrl !== undefined) {
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
  const opts: FleetOptions = {
    regions: raw['regions'] as string[] | undefined,
    allRegions: raw['allRegions'] === true,
    profile: str(raw['profile']),
    org: raw['org'] === true,
    accounts: raw['accounts'] as string[] | undefined,
    role: str(raw['role']),
    externalId: str(raw['externalId']),
    endpointUrl,
    format: raw['format'] as OutputFormat | undefined,
    output: str(raw['output']),
    verbose: raw['verbose'] === true,
    concurrency: (raw['concurrency'] as number | undefined) ?? FLEET_OPTION_DEFAULTS.concurrency,
    maxAttempts: (raw['maxAttempts'] as number | undefined) ?? FLEET_OPTION_DEFAULTS.maxAttempts,
  };
  validateSelection(opts);
  return opts;
}

/** The format for this run: --format, else table on a terminal (stdout, no --output), else json. */
export function outputFormat(opts: FleetOptions, ctx: CliContext): OutputFormat {
  return resolveFormat(opts.format, opts.output === undefined && ctx.stdout.isTTY === true);
}

export interface FleetSession {
  factory: AwsClientFactory;
  targets: ResolvedTargets;
  startedAt: number;
  close(): void;
}

/**
 * Builds the client factory from the options and ctx.env, then resolves accounts and regions.
 * Credentials: --profile, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY(/AWS_SESSION_TOKEN) from ctx.env,
 * else the SDK's default chain. Region: --regions, else AWS_REGION / AWS_DEFAULT_REGION, else the profile's.
 */
export async function openFleetSession(
  opts: FleetOptions,
  ctx: CliContext,
  extra: Partial<AwsFactoryOptions> = {},
): Promise<FleetSession> {
  const env = ctx.env;
  const factoryOptions: AwsFactoryOptions = {
    endpointUrl: opts.endpointUrl,
    profile: opts.profile,
    maxAttempts: opts.maxAttempts,
    externalId: opts.externalId,
    maxSockets: Math.max(16, opts.concurrency * 6),
    ...extra,
  };
  if (factoryOptions.credentials === undefined && opts.profile === undefined) {
    const id = env['AWS_ACCESS_KEY_ID'];
    const secret = env['AWS_SECRET_ACCESS_KEY'];
    if (id && secret) {
      const token = env['AWS_SESSION_TOKEN'];
      factoryOptions.credentials = {
        accessKeyId: id,
        secretAccessKey: secret,
        ...(token ? { sessionToken: token } : {}),
      };
    }
  }
  const envRegion = env['AWS_REGION'] || env['AWS_DEFAULT_REGION'];
  if (factoryOptions.defaultRegion === undefined && envRegion) factoryOptions.defaultRegion = envRegion;
  const factory = new AwsClientFactory(factoryOptions);
  const startedAt = Date.now();
  try {
    const targets = await resolveTargets(factory, opts);
    return { factory, targets, startedAt, close: () => factory.destroy() };
  } catch (err) {
    factory.destroy();
    throw err;
  }
}

/**
 * collectInventory over the session's targets with a progress line on stderr, cleared when the scan
 * settles. With `stopped` (Ctrl-C), the scan is abandoned when it rejects.
 */
export async function collectWithProgress(
  session: FleetSession,
  ctx: CliContext,
  opts: { concurrency: number; include?: CollectOptions['include']; stopped?: Promise<never> },
): Promise<Inventory> {
  const progress = createProgress(ctx.stderr);
  const scan = collectInventory(session.factory, session.targets, {
    concurrency: opts.concurrency,
    include: opts.include,
    onProgress: (p) => progress.update(p),
  });
  return (opts.stopped ? Promise.race([scan, opts.stopped]) : scan).finally(() => progress.done());
}

/** Prints the API call counts on stderr with --verbose. */
export function finishFleetRun(session: FleetSession, opts: FleetOptions, ctx: CliContext): void {
  if (opts.verbose) {
    ctx.stderr.write(`\nAWS API calls (${Date.now() - session.startedAt} ms):\n`);
    ctx.stderr.write(renderApiCalls(session.factory.counter.snapshot()));
  }
}
