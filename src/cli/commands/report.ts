import { renderHostHtml } from '../../report/html/host.js';
import { buildHostReport } from '../../report/html/host-data.js';
import { renderJson } from '../../report/json.js';
import { writeOutput } from '../../report/output.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../common-options.js';
import type { CommandSpec } from '../context.js';
import { addEventsSourceOptions, type EventsSourceFlags, eventsInput } from '../events-source.js';
import { parseTimePoint } from '../options.js';

export const HOST_REPORT_FORMATS = ['html', 'json'] as const;
type HostReportFormat = (typeof HOST_REPORT_FORMATS)[number];

const OUTPUT: OutputSpec<HostReportFormat> = { formats: HOST_REPORT_FORMATS, defaultText: 'html' };

/** The window a host report covers when --since is not given. */
export const DEFAULT_REPORT_SINCE = '7d';

interface ReportFlags extends EventsSourceFlags {
  since?: string;
}

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'Write a self-contained HTML (or JSON) report of the guard events on this host.',
  examples: [
    [
      'imdsguard report --db /var/lib/imdsguard/events.db --output imds-host.html',
      'the last 7 days: decisions over time, top callers, IMDSv1 callers, denied and alerted requests',
    ],
    [
      'imdsguard report --events /var/log/imdsguard/events.jsonl --output imds-host.html',
      "the same from the guard's JSON-lines events file",
    ],
    ['imdsguard report --since 24h --json', 'the same numbers as JSON, for the last day'],
  ],
  configure(cmd, ctx) {
    addEventsSourceOptions(cmd).option(
      '--since <duration|time>',
      `the window: events since a duration ago (30m, 24h, 7d, 2w) or an ISO-8601 time (default: ${DEFAULT_REPORT_SINCE})`,
    );
    addOutputOptions(cmd, OUTPUT).action(async (flags: ReportFlags & Record<string, unknown>) => {
      const { format = 'html', output } = readOutputOptions(flags, OUTPUT);
      const now = Date.now();
      const sinceMs = parseTimePoint(flags.since ?? DEFAULT_REPORT_SINCE, '--since', now);
      const input = eventsInput(flags, ctx.env, 'report');
      const doc = await buildHostReport(input.read({ sinceMs }), {
        nowMs: now,
        sinceMs,
        generatedAt: new Date(now).toISOString(),
      });
      input.warnBadLines(ctx.stderr);
      const text = format === 'json' ? renderJson(doc) : renderHostHtml(doc);
      await writeOutput(ctx.stdout, text, output, ctx.cwd);
    });
  },
};
