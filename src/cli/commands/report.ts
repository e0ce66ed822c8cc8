import { readEventsFromStore, SqliteEventStore } from '../../guard/store/index.js';
import { renderHostHtml } from '../../report/html/host.js';
import { buildHostReport } from '../../report/html/host-data.js';
import { renderJson } from '../../report/json.js';
import { writeOutput } from '../../report/output.js';
import type { CommandSpec } from '../context.js';
import { parseChoice, parseTimePoint } from '../options.js';
import { DEFAULT_EVENTS_DB } from './events.js';

export const HOST_REPORT_FORMATS = ['html', 'json'] as const;

/** The window a host report covers when --since is not given. */
export const DEFAULT_REPORT_SINCE = '7d';

interface ReportFlags {
  db?: string;
  output?: string;
  since: string;
  format?: string;
}

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'Write a self-contained HTML (or JSON) report of the guard events on this host.',
  examples: [
    [
      'imdsguard report --db /var/lib/imdsguard/events.db --output imds-host.html',
      'the last 7 days: decisions over time, top callers, IMDSv1 callers, denied and alerted requests',
    ],
    ['imdsguard report --since 24h --format json', 'the same numbers as JSON, for the last day'],
  ],
  configure(cmd, ctx) {
    cmd
      .option('--db <FILE>', `the event store (default: IMDSGUARD_DB, else ${DEFAULT_EVENTS_DB})`)
      .option('--output <FILE>', 'write the report to FILE instead of stdout')
      .option(
        '--since <DURATION|TIME>',
        'the window: events since a duration ago (30m, 24h, 7d, 2w) or an ISO-8601 time',
        DEFAULT_REPORT_SINCE,
      )
      .option('--format <format>', `${HOST_REPORT_FORMATS.join('|')} (default html)`)
      .action(async (flags: ReportFlags) => {
        const format = parseChoice(flags.format ?? 'html', HOST_REPORT_FORMATS, '--format');
        const now = Date.now();
        const sinceMs = parseTimePoint(flags.since, '--since', now);
        const path = flags.db ?? ctx.env['IMDSGUARD_DB'] ?? DEFAULT_EVENTS_DB;
        const store = new SqliteEventStore({ path, readonly: true });
        let doc: Awaited<ReturnType<typeof buildHostReport>>;
        try {
          doc = await buildHostReport(readEventsFromStore(store, { sinceMs }), {
            nowMs: now,
            sinceMs,
            generatedAt: new Date(now).toISOString(),
          });
        } finally {
          await store.close();
        }
        const text = format === 'json' ? renderJson(doc) : renderHostHtml(doc);
        await writeOutput(ctx.stdout, text, flags.output, ctx.cwd);
      });
  },
};
