import { ImdsguardError } from '../../errors.js';
import {
  CallerAggregator,
  type EventSource,
  type JsonlStats,
  readEventsJsonl,
  renderCallers,
  v1Callers,
} from '../../guard/callers/index.js';
import { readEventsFromStore } from '../../guard/store/index.js';
import type { CliContext, CommandSpec } from '../context.js';
import { DURATION_RE, parseTimePoint } from '../options.js';
import { DEFAULT_EVENTS_DB } from './events.js';

interface CallersOptions {
  events?: string;
  db?: string;
  since?: string;
  json?: boolean;
}

/** The SQLite event store (src/guard/events/store.ts) as a source: events at or after sinceMs, oldest first. */
function dbSource(path: string, sinceMs: number | undefined): EventSource {
  return readEventsFromStore(path, sinceMs === undefined ? {} : { sinceMs });
}

async function runCallers(opts: CallersOptions, ctx: CliContext): Promise<void> {
  if (opts.events !== undefined && opts.db !== undefined) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', 'callers: give --events or --db, not both');
  }
  const sinceMs = opts.since === undefined ? undefined : parseTimePoint(opts.since, '--since', Date.now());
  const stats: JsonlStats = { lines: 0, bad: 0 };
  // Like `imdsguard events`: the store named by --db, else IMDSGUARD_DB, else the default path.
  const db = opts.db ?? ctx.env['IMDSGUARD_DB'] ?? DEFAULT_EVENTS_DB;
  const from = opts.events ?? db;
  const source: EventSource =
    opts.events !== undefined ? readEventsJsonl(opts.events, stats) : dbSource(db, sinceMs);

  const agg = new CallerAggregator(sinceMs === undefined ? {} : { sinceMs });
  try {
    for await (const event of source) agg.add(event);
  } catch (err) {
    if (err instanceof ImdsguardError) throw err;
    throw new ImdsguardError('IMDSGUARD_E_CONFIG_READ', `callers: cannot read ${from}`, {
      cause: err,
      hint:
        opts.events === undefined && opts.db === undefined
          ? "pass --events FILE (the guard's JSON-lines events) or --db FILE (its event store)"
          : 'check the path and that this user may read it',
    });
  }
  if (stats.bad > 0) {
    ctx.stderr.write(
      `warning: skipped ${stats.bad} bad line${stats.bad === 1 ? '' : 's'} in ${opts.events} (first at line ${stats.firstBadLine})\n`,
    );
  }
  const callers = agg.result();
  const v1 = v1Callers(callers);
  if (v1.length > 0) ctx.exitCode = 1;
  const window =
    opts.since === undefined || sinceMs === undefined
      ? 'in the recorded events'
      : DURATION_RE.test(opts.since.trim())
        ? `in the last ${opts.since.trim()}`
        : `since ${new Date(sinceMs).toISOString()}`;
  if (opts.json) {
    ctx.stdout.write(
      `${JSON.stringify(
        {
          since: sinceMs === undefined ? null : new Date(sinceMs).toISOString(),
          events: agg.counted,
          badLines: stats.bad,
          v1Callers: v1.length,
          v1Requests: v1.reduce((n, s) => n + s.v1, 0),
          callers,
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  ctx.stdout.write(renderCallers(callers, { color: ctx.stdout.isTTY === true, events: agg.counted, window }));
}

export const callersCommand: CommandSpec = {
  name: 'callers',
  summary: 'Per process: IMDSv1 and IMDSv2 calls, token requests, last seen (what breaks if v2 is enforced).',
  examples: [
    [
      'imdsguard callers --events /var/log/imdsguard/events.jsonl',
      'list every calling process, IMDSv1 callers first: what breaks if you enforce IMDSv2',
    ],
    ['imdsguard callers --events events.jsonl --since 24h', 'only the last day'],
    ['imdsguard callers --since 2026-11-20T00:00:00Z', 'from the event store, since a point in time (UTC)'],
    [
      "imdsguard callers --events events.jsonl --json | jq '.callers[] | select(.v1 > 0) | .exe'",
      'the executables that still call IMDSv1, for a script',
    ],
  ],
  configure(cmd, ctx) {
    cmd
      .option('--events <file>', "the guard's JSON-lines events file (its --events output)")
      .option(
        '--db <file>',
        `the guard's SQLite event store (default: IMDSGUARD_DB, else ${DEFAULT_EVENTS_DB})`,
      )
      .option(
        '--since <DURATION|TIME>',
        'only events since then: a duration ago (30m, 24h, 7d) or an ISO-8601 time (2026-11-20T10:00:00Z)',
      )
      .option('--json', 'print JSON instead of a table')
      .addHelpText(
        'after',
        '\nExit codes: 0 no IMDSv1 callers, 1 at least one IMDSv1 caller (enforcing IMDSv2 would break it), 2 usage error.',
      )
      .action((opts: CallersOptions) => runCallers(opts, ctx));
  },
};
