/** Renders change plans and apply results: a table for people, one JSON document (or CSV/NDJSON) for scripts. */
import type { ApplyResult } from '../fleet/apply/apply.js';
import type { AccountDefaultsRecord } from '../fleet/inventory/model.js';
import type { ChangeSetSummary } from '../fleet/journal/store.js';
import {
  type ChangePlan,
  countPlan,
  type MetadataValues,
  type PlanItem,
  type TemplateState,
} from '../fleet/plan/types.js';
import type { Column } from './columns.js';
import { renderCsv } from './csv.js';
import { renderJson, renderNdjson } from './json.js';
import type { OutputFormat } from './output.js';
import { renderTable } from './table.js';

export const CHANGES_SCHEMA_VERSION = 1 as const;

export function describeOptions(m: MetadataValues | null): string {
  if (m === null) return '(none set)';
  return `tokens=${m.httpTokens ?? '-'} endpoint=${m.httpEndpoint ?? '-'} hop=${m.httpPutResponseHopLimit ?? '-'} ipv6=${m.httpProtocolIpv6 ?? '-'} tags=${m.instanceMetadataTags ?? '-'}`;
}

function describeDefaults(d: AccountDefaultsRecord): string {
  return `tokens=${d.httpTokens ?? 'no-preference'} endpoint=${d.httpEndpoint ?? 'no-preference'} hop=${d.httpPutResponseHopLimit ?? 'no-preference'} tags=${d.instanceMetadataTags ?? 'no-preference'} enforced=${d.httpTokensEnforced ?? 'no-preference'}`;
}

function describeTemplate(s: TemplateState): string {
  return `default v${s.defaultVersion}: ${describeOptions(s.metadataOptions)}`;
}

export function beforeText(it: PlanItem): string {
  if (it.type === 'instance') return describeOptions(it.before);
  if (it.type === 'account-defaults') return describeDefaults(it.before);
  return describeTemplate(it.before);
}

export function afterText(it: PlanItem): string {
  if (it.action === 'skip') return '(unchanged)';
  if (it.action === 'blocked') return `(blocked) ${afterWanted(it)}`;
  return afterWanted(it);
}

/** The settings the item asks for. */
function afterWanted(it: PlanItem): string {
  if (it.type === 'instance') return describeOptions(it.after);
  if (it.type === 'account-defaults') return describeDefaults(it.after);
  return it.after.op === 'fix'
    ? `new version from v${it.after.sourceVersion} as default: ${describeOptions(it.after.metadataOptions)}`
    : `default v${it.after.defaultVersion}`;
}

interface Row {
  item: PlanItem;
  status: string | null;
  error: string | null;
}

const COLUMNS: Column<Row>[] = [
  { header: 'account', value: (r) => r.item.accountId },
  { header: 'region', value: (r) => r.item.region },
  { header: 'resource', value: (r) => r.item.resourceId },
  {
    header: 'name',
    value: (r) =>
      r.item.type === 'instance' ? r.item.name : r.item.type === 'launch-template' ? r.item.templateName : '',
    maxWidth: 24,
  },
  { header: 'action', value: (r) => r.item.action },
  { header: 'before', value: (r) => beforeText(r.item), maxWidth: 80 },
  { header: 'after', value: (r) => afterText(r.item), maxWidth: 80 },
  { header: 'reason', value: (r) => r.item.blocked?.detail ?? r.item.skip?.detail ?? '', maxWidth: 70 },
  { header: 'status', value: (r) => r.status ?? '' },
  { header: 'error', value: (r) => r.error ?? '', maxWidth: 80 },
];

export interface ChangeDocument {
  schemaVersion: typeof CHANGES_SCHEMA_VERSION;
  kind: ChangePlan['kind'];
  changeSetId: string | null;
  rollbackOf: string | null;
  dryRun: boolean;
  /** false: the plan was only shown (no --yes, no confirmation). */
  applied: boolean;
  journal: string | null;
  counts: ReturnType<typeof countPlan>;
  result: { counts: ApplyResult['counts']; failures: number; interrupted: boolean } | null;
  missing: string[];
  notes: string[];
  items: Array<PlanItem & { status: string | null; errorCode: string | null; errorMessage: string | null }>;
}

export function changeDocument(
  plan: ChangePlan,
  opts: { dryRun: boolean; applied: boolean; journal: string | null; result: ApplyResult | null },
): ChangeDocument {
  const byId = new Map((opts.result?.outcomes ?? []).map((o) => [o.seq, o]));
  return {
    schemaVersion: CHANGES_SCHEMA_VERSION,
    kind: plan.kind,
    changeSetId: opts.result?.changeSetId ?? null,
    rollbackOf: plan.rollbackOf,
    dryRun: opts.dryRun,
    applied: opts.applied,
    journal: opts.journal,
    counts: countPlan(plan),
    result: opts.result
      ? { counts: opts.result.counts, failures: opts.result.failures, interrupted: opts.result.interrupted }
      : null,
    missing: plan.missing,
    notes: plan.notes,
    items: plan.items.map((it) => {
      const o = byId.get(it.seq);
      return {
        ...it,
        status: o?.status ?? (it.action === 'skip' ? 'skipped' : it.action === 'blocked' ? 'blocked' : null),
        errorCode: o?.errorCode ?? null,
        errorMessage: o?.errorMessage ?? null,
      };
    }),
  };
}

function rows(doc: ChangeDocument): Row[] {
  return doc.items.map((it) => ({
    item: it,
    status: it.status,
    error: it.errorCode ? `${it.errorCode}: ${it.errorMessage ?? ''}` : null,
  }));
}

function summaryLine(doc: ChangeDocument): string {
  const c = doc.counts;
  const reasons = Object.entries(c.bySkipReason)
    .map(([r, n]) => `${n} ${r}`)
    .join(', ');
  const blocked = Object.entries(c.byBlockReason)
    .map(([r, n]) => `${n} ${r}`)
    .join(', ');
  return `${doc.kind}: ${c.change} to change, ${c.skip} skipped${reasons ? ` (${reasons})` : ''}${c.blocked > 0 ? `, ${c.blocked} blocked (${blocked}): AWS would refuse them, nothing is sent for them` : ''}`;
}

/** The plan (and results, when applied) in the requested format. */
export function renderChange(
  doc: ChangeDocument,
  format: OutputFormat,
  opts: { resultsOnly?: boolean } = {},
): string {
  if (format === 'table' && opts.resultsOnly && doc.result) return renderResults(doc);
  switch (format) {
    case 'json':
      return renderJson(doc);
    case 'ndjson':
      return renderNdjson(doc.items);
    case 'csv':
      return renderCsv(rows(doc), COLUMNS);
    default: {
      const cols = doc.result
        ? COLUMNS
        : COLUMNS.filter((c) => c.header !== 'status' && c.header !== 'error');
      let out = renderTable(rows(doc), cols, { empty: 'No resource matches the selection.' });
      out += `\n${summaryLine(doc)}\n`;
      if (doc.missing.length > 0) out += `Not found: ${doc.missing.join(', ')}\n`;
      for (const n of doc.notes) out += `Note: ${n}\n`;
      if (doc.result) {
        const r = Object.entries(doc.result.counts)
          .map(([s, n]) => `${n} ${s}`)
          .join(', ');
        out += `Change set ${doc.changeSetId}${doc.dryRun ? ' (dry run)' : ''}: ${r || 'nothing sent'}${doc.result.interrupted ? ' (interrupted)' : ''}\n`;
      }
      return out;
    }
  }
}

const RESULT_COLUMNS: Column<Row>[] = [
  { header: 'account', value: (r) => r.item.accountId },
  { header: 'region', value: (r) => r.item.region },
  { header: 'resource', value: (r) => r.item.resourceId },
  { header: 'status', value: (r) => r.status ?? '' },
  { header: 'error', value: (r) => r.error ?? '', maxWidth: 100 },
];

/** After the plan was printed: one row per change with its status, and the change set line. */
function renderResults(doc: ChangeDocument): string {
  const changed = rows(doc).filter((r) => r.item.action === 'change');
  let out = `\n${renderTable(changed, RESULT_COLUMNS)}`;
  const r = Object.entries(doc.result?.counts ?? {})
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  out += `Change set ${doc.changeSetId}${doc.dryRun ? ' (dry run)' : ''}: ${r || 'nothing sent'}${doc.result?.interrupted ? ' (interrupted)' : ''}\n`;
  return out;
}

const CHANGE_SET_COLUMNS: Column<ChangeSetSummary>[] = [
  { header: 'change set', value: (s) => s.id },
  { header: 'kind', value: (s) => s.kind },
  { header: 'dry run', value: (s) => s.dryRun },
  { header: 'rollback of', value: (s) => s.rollbackOf ?? '' },
  { header: 'status', value: (s) => s.status },
  { header: 'created', value: (s) => s.createdAt },
  {
    header: 'items',
    value: (s) =>
      Object.entries(s.counts)
        .map(([k, n]) => `${n} ${k}`)
        .join(', '),
  },
];

/** `fleet rollback --list`: the change sets of a journal. */
export function renderChangeSets(
  journal: string,
  sets: readonly ChangeSetSummary[],
  format: OutputFormat,
): string {
  switch (format) {
    case 'table':
      return renderTable(sets, CHANGE_SET_COLUMNS, { empty: 'The journal holds no change set.' });
    case 'csv':
      return renderCsv(
        sets,
        CHANGE_SET_COLUMNS.map((c) => ({ ...c, header: c.header.replace(/ /g, '_') })),
      );
    case 'ndjson':
      return renderNdjson(sets);
    default:
      return renderJson({ journal, changeSets: sets });
  }
}
