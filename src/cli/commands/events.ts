import { ImdsguardError } from '../../errors.js';
import { DECISIONS } from '../../guard/events/types.js';
import { DEFAULT_QUERY_LIMIT, type EventFilter, MAX_QUERY_LIMIT } from '../../guard/store/port.js';
import { EVENT_FORMATS, type EventFormat, renderEvents } from '../../report/events.js';
import { writeOutput } from '../../report/output.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../common-options.js';
import type { CommandSpec } from '../context.js';
import { addEventsSourceOptions, eventsInput } from '../events-source.js';
import { parseChoice, parseIntInRange, parseTimePoint } from '../options.js';

const VERSIONS = ['v1', 'v2', 'token'] as const;

const OUTPUT: OutputSpec<EventFormat> = { formats: EVENT_FORMATS, defaultText: 'table' };

interface EventsFlags {
  events?: string;
  db?: string;
  since?: string;
  until?: string;
  decision?: string;
  exe?: string;
  user?: string;
  path?: string;
  version?: string;
  limit?: string;
}

/** Turns the flags into a store filter; `now` is injected for tests. */
export function eventsFilter(flags: EventsFlags, now: number): EventFilter {
  const f: EventFilter = {
    limit:
      flags.limit === undefined
        ? DEFAULT_QUERY_LIMIT
        : parseIntInRange(flags.limit, 1, MAX_QUERY_LIMIT, '--limit'),
  };
  if (flags.since !== undefined) f.sinceMs = parseTimePoint(flags.since, '--since', now);
  if (flags.until !== undefined) f.untilMs = parseTimePoint(flags.until, '--until', now);
  if (f.sinceMs !== undefined && f.untilMs !== undefined && f.untilMs <= f.sinceMs) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--until (${new Date(f.untilMs).toISOString()}) must be later than --since (${new Date(f.sinceMs).toISOString()})`,
      {
        hint: 'the window is --since (included) to --until (excluded); a duration counts back from now, so --since 2h --until 1h is the hour before the last one',
      },
    );
  }
  if (flags.decision !== undefined) f.decision = parseChoice(flags.decision, DECISIONS, '--decision');
  if (flags.exe !== undefined) f.exe = flags.exe;
  if (flags.user !== undefined) f.user = flags.user;
  if (flags.path !== undefined) f.pathPrefix = flags.path;
  if (flags.version !== undefined) f.version = parseChoice(flags.version, VERSIONS, '--version');
  return f;
}

export const eventsCommand: CommandSpec = {
  name: 'events',
  summary:
    "Query the guard's events (its SQLite store or JSON-lines file): every request, who made it, and what the guard did.",
  examples: [
    [
      'imdsguard events --db /var/lib/imdsguard/events.db --since 1h',
      'the last hour of requests, newest first',
    ],
    [
      'imdsguard events --events /var/log/imdsguard/events.jsonl --decision deny --since 24h',
      'what the guard refused (or flagged) today, from its JSON-lines file',
    ],
    [
      'imdsguard events --since 2026-11-20T10:00:00Z --until 2026-11-20T11:00:00Z',
      'one hour of 20 November 2026 (UTC): --since included, --until excluded',
    ],
    ['imdsguard events --since 2h --until 1h', 'the hour before the last one'],
    ['imdsguard events --version v1 --exe /usr/bin/python3', 'IMDSv1 calls made by one program'],
    ['imdsguard events --path /latest/meta-data/iam/ --json', 'credential lookups, as JSON for scripts'],
    [
      'imdsguard events --user www-data --limit 1000 --format csv --output www-data.csv',
      'up to 1000 requests made by one user, as a spreadsheet',
    ],
  ],
  configure(cmd, ctx) {
    addEventsSourceOptions(cmd)
      .option(
        '--since <duration|time>',
        'only events at or after this: a duration ago (30s, 15m, 24h, 7d) or an ISO-8601 time (2026-11-20T10:00:00Z)',
      )
      .option('--until <duration|time>', 'only events before this: a duration ago or an ISO-8601 time')
      .option('--decision <decision>', `only this decision: ${DECISIONS.join('|')}`)
      .option('--exe <path>', "only this caller's executable, exactly")
      .option('--user <name>', "only this caller's user name, exactly")
      .option('--path <prefix>', 'only request paths starting with <prefix>')
      .option('--version <version>', `only this IMDS version: ${VERSIONS.join('|')} (token: the token PUT)`)
      .option(
        '--limit <n>',
        `most events shown, newest first, 1..${MAX_QUERY_LIMIT} (default: ${DEFAULT_QUERY_LIMIT})`,
      );
    addOutputOptions(cmd, OUTPUT).action(async (flags: EventsFlags & Record<string, unknown>) => {
      const { format = 'table', output } = readOutputOptions(flags, OUTPUT);
      const { limit, ...selection } = eventsFilter(flags, Date.now());
      const input = eventsInput(flags, ctx.env, 'events');
      const events = await input.newest(selection, limit ?? DEFAULT_QUERY_LIMIT);
      input.warnBadLines(ctx.stderr);
      await writeOutput(
        ctx.stdout,
        renderEvents(events, format, `no events in ${input.path} match`),
        output,
        ctx.cwd,
      );
      if (format === 'table' && events.length === limit) {
        ctx.stderr.write(
          `(showing the newest ${events.length}; use --limit, or --since/--until for a window)\n`,
        );
      }
    });
  },
};
