import { ImdsguardError } from '../../errors.js';
import { DECISIONS, type GuardEvent } from '../../guard/events/types.js';
import { type EventFilter, MAX_QUERY_LIMIT, SqliteEventStore } from '../../guard/store/index.js';
import type { Column } from '../../report/columns.js';
import { renderJson } from '../../report/json.js';
import { renderTable } from '../../report/table.js';
import type { CommandSpec } from '../context.js';
import { parseChoice, parseIntInRange, parseTimePoint } from '../options.js';

/** Where the guard keeps its event store when --db and IMDSGUARD_DB are not given. */
export const DEFAULT_EVENTS_DB = '/var/lib/imdsguard/events.db';

const VERSIONS = ['v1', 'v2', 'token'] as const;

interface EventsFlags {
  db?: string;
  since?: string;
  until?: string;
  decision?: string;
  exe?: string;
  user?: string;
  path?: string;
  version?: string;
  limit: string;
  json?: boolean;
}

const COLUMNS: Column<GuardEvent>[] = [
  { header: 'time', value: (e) => e.time },
  { header: 'decision', value: (e) => e.decision },
  { header: 'action', value: (e) => e.action },
  { header: 'ver', value: (e) => e.request.version },
  { header: 'method', value: (e) => e.request.method },
  { header: 'path', value: (e) => e.request.path, maxWidth: 56 },
  { header: 'exe', value: (e) => e.caller?.exe ?? '-', maxWidth: 40 },
  {
    header: 'user',
    value: (e) => e.caller?.user ?? (e.caller?.uid !== undefined ? String(e.caller.uid) : '-'),
  },
  { header: 'pid', value: (e) => (e.caller?.pid !== undefined ? String(e.caller.pid) : '-'), align: 'right' },
  { header: 'status', value: (e) => String(e.status), align: 'right' },
  { header: 'rule', value: (e) => e.rule },
];

/** Turns the flags into a store filter; `now` is injected for tests. */
export function eventsFilter(flags: EventsFlags, now: number): EventFilter {
  const f: EventFilter = { limit: parseIntInRange(flags.limit, 1, MAX_QUERY_LIMIT, '--limit') };
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
  summary: 'Query the guard event store (SQLite): every request, who made it, and what the guard did.',
  examples: [
    [
      'imdsguard events --db /var/lib/imdsguard/events.db --since 1h',
      'the last hour of requests, newest first',
    ],
    ['imdsguard events --decision deny --since 24h', 'what the guard refused (or flagged) today'],
    [
      'imdsguard events --since 2026-11-20T10:00:00Z --until 2026-11-20T11:00:00Z',
      'one hour of 20 November 2026 (UTC): --since included, --until excluded',
    ],
    ['imdsguard events --since 2h --until 1h', 'the hour before the last one'],
    ['imdsguard events --version v1 --exe /usr/bin/python3', 'IMDSv1 calls made by one program'],
    ['imdsguard events --path /latest/meta-data/iam/ --json', 'credential lookups, as JSON for scripts'],
    ['imdsguard events --user www-data --limit 1000', 'up to 1000 requests made by one user'],
  ],
  configure(cmd, ctx) {
    cmd
      .option('--db <FILE>', `the event store (default: IMDSGUARD_DB, else ${DEFAULT_EVENTS_DB})`)
      .option(
        '--since <DURATION|TIME>',
        'only events at or after this: a duration ago (30s, 15m, 24h, 7d) or an ISO-8601 time (2026-11-20T10:00:00Z)',
      )
      .option('--until <DURATION|TIME>', 'only events before this: a duration ago or an ISO-8601 time')
      .option('--decision <kind>', 'allow or deny')
      .option('--exe <PATH>', "the caller's executable, exactly")
      .option('--user <NAME>', "the caller's user name, exactly")
      .option('--path <PREFIX>', 'request paths starting with this')
      .option('--version <v>', 'IMDS version: v1, v2 or token (the token PUT)')
      .option('--limit <N>', `most events shown, 1..${MAX_QUERY_LIMIT}`, '100')
      .option('--json', 'print a JSON array of events (newest first)')
      .action(async (flags: EventsFlags) => {
        const filter = eventsFilter(flags, Date.now());
        const path = flags.db ?? ctx.env['IMDSGUARD_DB'] ?? DEFAULT_EVENTS_DB;
        const store = new SqliteEventStore({ path, readonly: true });
        let events: GuardEvent[];
        try {
          events = await store.query(filter);
        } finally {
          await store.close();
        }
        if (flags.json) {
          ctx.stdout.write(renderJson(events));
          return;
        }
        ctx.stdout.write(renderTable(events, COLUMNS, { empty: `no events in ${path} match` }));
        if (events.length === filter.limit) {
          ctx.stderr.write(
            `(showing the newest ${events.length}; use --limit, or --since/--until for a window)\n`,
          );
        }
      });
  },
};
