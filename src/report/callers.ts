/** Caller summaries as CSV (`imdsguard callers --format csv`); the table is guard/callers/render.ts. */
import type { CallerSummary } from '../guard/callers/summarize.js';
import type { Column } from './columns.js';
import { renderCsv } from './csv.js';

export const CALLER_FORMATS = ['table', 'json', 'csv', 'ndjson'] as const;
export type CallerFormat = (typeof CALLER_FORMATS)[number];

/** One row per caller, IMDSv1 callers first (the order the summaries come in). */
const CSV_COLUMNS: Column<CallerSummary>[] = [
  { header: 'exe', value: (s) => s.exe },
  { header: 'user', value: (s) => s.user },
  { header: 'uid', value: (s) => s.uid },
  { header: 'pod_namespace', value: (s) => s.pod?.namespace },
  { header: 'pod', value: (s) => s.pod?.name },
  { header: 'pod_container', value: (s) => s.pod?.container },
  { header: 'host_network', value: (s) => s.pod?.hostNetwork },
  { header: 'container', value: (s) => s.container?.id },
  { header: 'netns', value: (s) => s.netns },
  { header: 'v1', value: (s) => s.v1 },
  { header: 'v2', value: (s) => s.v2 },
  { header: 'token', value: (s) => s.token },
  { header: 'unknown', value: (s) => s.unknown },
  { header: 'denied', value: (s) => s.denied },
  { header: 'total', value: (s) => s.total },
  { header: 'first_seen', value: (s) => s.firstSeen },
  { header: 'last_seen', value: (s) => s.lastSeen },
  { header: 'last_path', value: (s) => s.lastPath },
  { header: 'last_pid', value: (s) => s.lastPid },
  { header: 'pids', value: (s) => s.pids },
  { header: 'unattributed', value: (s) => s.unattributed },
];

export function renderCallersCsv(summaries: readonly CallerSummary[]): string {
  return renderCsv(summaries, CSV_COLUMNS);
}
