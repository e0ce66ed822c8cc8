import { CallerAggregator, renderCallers, v1Callers } from '../../guard/callers/index.js';
import { CALLER_FORMATS, type CallerFormat, renderCallersCsv } from '../../report/callers.js';
import { renderJson, renderNdjson } from '../../report/json.js';
import { writeOutput } from '../../report/output.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../common-options.js';
import type { CliContext, CommandSpec } from '../context.js';
import { addEventsSourceOptions, type EventsSourceFlags, eventsInput } from '../events-source.js';
import { DURATION_RE, parseTimePoint } from '../options.js';

const OUTPUT: OutputSpec<CallerFormat> = { formats: CALLER_FORMATS, defaultText: 'table' };

interface CallersFlags extends EventsSourceFlags {
  since?: string;
}

async function runCallers(flags: CallersFlags & Record<string, unknown>, ctx: CliContext): Promise<void> {
  const { format = 'table', output } = readOutputOptions(flags, OUTPUT);
  const sinceMs = flags.since === undefined ? undefined : parseTimePoint(flags.since, '--since', Date.now());
  const input = eventsInput(flags, ctx.env, 'callers');
  const agg = new CallerAggregator(sinceMs === undefined ? {} : { sinceMs });
  for await (const event of input.read(sinceMs === undefined ? {} : { sinceMs })) agg.add(event);
  input.warnBadLines(ctx.stderr);
  const callers = agg.result();
  const v1 = v1Callers(callers);
  if (v1.length > 0) ctx.exitCode = 1;
  let text: string;
  switch (format) {
    case 'json':
      text = renderJson({
        since: sinceMs === undefined ? null : new Date(sinceMs).toISOString(),
        events: agg.counted,
        badLines: input.stats.bad,
        v1Callers: v1.length,
        v1Requests: v1.reduce((n, s) => n + s.v1, 0),
        callers,
      });
      break;
    case 'ndjson':
      text = renderNdjson(callers);
      break;
    case 'csv':
      text = renderCallersCsv(callers);
      break;
    case 'table': {
      const window =
        flags.since === undefined || sinceMs === undefined
          ? 'in the recorded events'
          : DURATION_RE.test(flags.since.trim())
            ? `in the last ${flags.since.trim()}`
            : `since ${new Date(sinceMs).toISOString()}`;
      text = renderCallers(callers, {
        color: output === undefined && ctx.stdout.isTTY === true,
        events: agg.counted,
        window,
      });
    }
  }
  await writeOutput(ctx.stdout, text, output, ctx.cwd);
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
    ['imdsguard callers --format csv --output callers.csv', 'one row per caller, for a spreadsheet'],
  ],
  configure(cmd, ctx) {
    addEventsSourceOptions(cmd).option(
      '--since <duration|time>',
      'only events since then: a duration ago (30m, 24h, 7d) or an ISO-8601 time (2026-11-20T10:00:00Z)',
    );
    addOutputOptions(cmd, OUTPUT)
      .addHelpText(
        'after',
        '\nExit codes: 0 no IMDSv1 callers, 1 at least one IMDSv1 caller (enforcing IMDSv2 would break it), 2 usage error.',
      )
      .action((flags: CallersFlags & Record<string, unknown>) => runCallers(flags, ctx));
  },
};
