/** Guard events as a table, JSON, NDJSON or CSV (`imdsguard events`). */
import type { GuardEvent } from '../guard/events/types.js';
import type { Column } from './columns.js';
import { renderCsv } from './csv.js';
import { renderJson, renderNdjson } from './json.js';
import { renderTable } from './table.js';

export const EVENT_FORMATS = ['table', 'json', 'csv', 'ndjson'] as const;
export type EventFormat = (typeof EVENT_FORMATS)[number];

const caller = (e: GuardEvent) => e.caller;

/** The terminal table: what happened, to what, for whom. */
const TABLE_COLUMNS: Column<GuardEvent>[] = [
  { header: 'time', value: (e) => e.time },
  { header: 'decision', value: (e) => e.decision },
  { header: 'action', value: (e) => e.action },
  { header: 'ver', value: (e) => e.request.version },
  { header: 'method', value: (e) => e.request.method },
  { header: 'path', value: (e) => e.request.path, maxWidth: 56 },
  { header: 'exe', value: (e) => caller(e)?.exe ?? '-', maxWidth: 40 },
  {
    header: 'user',
    value: (e) => caller(e)?.user ?? (caller(e)?.uid !== undefined ? String(caller(e)?.uid) : '-'),
  },
  {
    header: 'pid',
    value: (e) => (caller(e)?.pid !== undefined ? String(caller(e)?.pid) : '-'),
    align: 'right',
  },
  { header: 'status', value: (e) => String(e.status), align: 'right' },
  { header: 'rule', value: (e) => e.rule },
];

/** CSV: one row per event, every scalar a spreadsheet needs (no secrets: events hold none). */
const CSV_COLUMNS: Column<GuardEvent>[] = [
  { header: 'time', value: (e) => e.time },
  { header: 'id', value: (e) => e.id },
  { header: 'host', value: (e) => e.host },
  { header: 'mode', value: (e) => e.mode },
  { header: 'decision', value: (e) => e.decision },
  { header: 'action', value: (e) => e.action },
  { header: 'rule', value: (e) => e.rule },
  { header: 'reason', value: (e) => e.reason },
  { header: 'status', value: (e) => e.status },
  { header: 'alert', value: (e) => e.alert },
  { header: 'method', value: (e) => e.request.method },
  { header: 'path', value: (e) => e.request.path },
  { header: 'version', value: (e) => e.request.version },
  { header: 'flavor', value: (e) => e.request.flavor },
  { header: 'client_address', value: (e) => e.request.client.address },
  { header: 'client_port', value: (e) => e.request.client.port },
  { header: 'exe', value: (e) => caller(e)?.exe },
  { header: 'user', value: (e) => caller(e)?.user },
  { header: 'uid', value: (e) => caller(e)?.uid },
  { header: 'pid', value: (e) => caller(e)?.pid },
  { header: 'pod_namespace', value: (e) => caller(e)?.pod?.namespace },
  { header: 'pod', value: (e) => caller(e)?.pod?.name },
  { header: 'pod_container', value: (e) => caller(e)?.pod?.container },
  { header: 'container', value: (e) => caller(e)?.container?.id },
];

/** Renders events (newest first, as given) in a format; `empty` is the table's text for none. */
export function renderEvents(events: readonly GuardEvent[], format: EventFormat, empty: string): string {
  switch (format) {
    case 'json':
      return renderJson(events);
    case 'ndjson':
      return renderNdjson(events);
    case 'csv':
      return renderCsv(events, CSV_COLUMNS);
    case 'table':
      return renderTable(events, TABLE_COLUMNS, { empty });
  }
}
