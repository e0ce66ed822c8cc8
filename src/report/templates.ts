/**
 * Views of what launches new instances, in every format: `fleet templates` (launch templates, Auto
 * Scaling groups, launch configurations, AMIs) and `fleet defaults` (the account-level defaults per
 * region).
 */

import type { RegionScan } from '../fleet/inventory/model.js';
import type { TemplatesReport } from '../fleet/plan/templates.js';
import type { EnforcementReadiness } from '../fleet/posture/enforcement.js';
import type { Finding } from '../fleet/posture/findings.js';
import { afterText, beforeText } from './changes.js';
import type { Column } from './columns.js';
import { renderCsv } from './csv.js';
import { renderJson, renderNdjson } from './json.js';
import type { OutputFormat } from './output.js';
import { renderTable } from './table.js';

export const TEMPLATES_SCHEMA_VERSION = 1 as const;

/** The report's findings, by the section (and NDJSON type) they belong to. */
function sections(report: TemplatesReport): Array<[string, string, readonly Finding[]]> {
  return [
    ['auto-scaling-group', 'Auto Scaling groups that launch IMDSv1 instances', report.groupFindings],
    [
      'launch-configuration',
      'Launch configurations that launch IMDSv1 instances',
      report.launchConfigurationFindings,
    ],
    ['latest-version', 'Templates whose latest (not default) version allows IMDSv1', report.latestFindings],
    ['image', 'AMIs in use without ImdsSupport v2.0 (reported, never changed)', report.imageFindings],
  ];
}

function findingsTable(title: string, findings: readonly Finding[]): string {
  if (findings.length === 0) return '';
  return `\n${title}:\n${renderTable(findings, [
    { header: 'account', value: (f) => f.accountId },
    { header: 'region', value: (f) => f.region },
    { header: 'resource', value: (f) => f.resourceId },
    { header: 'finding', value: (f) => f.message, maxWidth: 120 },
  ])}`;
}

function templatesTable(report: TemplatesReport): string {
  let text = renderTable(
    report.plan.items,
    [
      { header: 'account', value: (i) => i.accountId },
      { header: 'region', value: (i) => i.region },
      { header: 'template', value: (i) => i.resourceId },
      { header: 'name', value: (i) => (i.type === 'launch-template' ? i.templateName : ''), maxWidth: 32 },
      { header: 'default', value: (i) => beforeText(i), maxWidth: 90 },
      {
        header: 'fix',
        value: (i) => (i.action === 'change' ? afterText(i) : (i.skip?.detail ?? '')),
        maxWidth: 90,
      },
    ],
    { empty: 'No launch template.' },
  );
  for (const [, title, findings] of sections(report)) text += findingsTable(title, findings);
  for (const n of report.plan.notes.filter((x) => x.includes('pinned'))) text += `Note: ${n}\n`;
  const n = report.plan.items.filter((i) => i.action === 'change').length;
  text += `\n${n} template(s) to fix. Run with --fix to plan the fix.\n`;
  return text;
}

interface TemplateCsvRow {
  section: string;
  accountId: string;
  region: string;
  resourceId: string;
  name: string;
  state: string;
  fix: string;
}

const TEMPLATE_CSV: Column<TemplateCsvRow>[] = [
  { header: 'section', value: (r) => r.section },
  { header: 'account_id', value: (r) => r.accountId },
  { header: 'region', value: (r) => r.region },
  { header: 'resource_id', value: (r) => r.resourceId },
  { header: 'name', value: (r) => r.name },
  { header: 'state', value: (r) => r.state },
  { header: 'fix', value: (r) => r.fix },
];

/** One CSV row per template (its default version and its fix), then one per finding. */
function templateCsvRows(report: TemplatesReport): TemplateCsvRow[] {
  const rows: TemplateCsvRow[] = report.plan.items.map((i) => ({
    section: 'launch-template',
    accountId: i.accountId,
    region: i.region,
    resourceId: i.resourceId,
    name: i.type === 'launch-template' ? i.templateName : '',
    state: beforeText(i),
    fix: i.action === 'change' ? afterText(i) : (i.skip?.detail ?? ''),
  }));
  for (const [section, , findings] of sections(report)) {
    for (const f of findings) {
      rows.push({
        section,
        accountId: f.accountId,
        region: f.region,
        resourceId: f.resourceId,
        name: '',
        state: f.message,
        fix: '',
      });
    }
  }
  return rows;
}

export function renderTemplates(report: TemplatesReport, format: OutputFormat): string {
  switch (format) {
    case 'table':
      return templatesTable(report);
    case 'csv':
      return renderCsv(templateCsvRows(report), TEMPLATE_CSV);
    case 'ndjson':
      return renderNdjson([
        { type: 'meta', schemaVersion: TEMPLATES_SCHEMA_VERSION, kind: 'imdsguard.fleet.templates' },
        ...report.plan.items, // each has type launch-template
        ...sections(report).flatMap(([type, , findings]) => findings.map((f) => ({ type, ...f }))),
        ...report.plan.notes.map((text) => ({ type: 'note', text })),
      ]);
    default:
      return renderJson({
        schemaVersion: TEMPLATES_SCHEMA_VERSION,
        templates: report.plan.items,
        autoScalingGroups: report.groupFindings,
        launchConfigurations: report.launchConfigurationFindings,
        latestVersions: report.latestFindings,
        images: report.imageFindings,
        notes: report.plan.notes,
      });
  }
}

type DefaultsValue = string | number | null | undefined;

/** A defaults field: its value, no-preference when unset, "not read" when the defaults could not be read. */
function np(s: RegionScan, v: (d: NonNullable<RegionScan['defaults']>) => DefaultsValue): string | number {
  if (s.defaults === null) return 'not read';
  const x = v(s.defaults);
  return x === null || x === undefined ? 'no-preference' : x;
}

const DEFAULTS_COLUMNS: Column<RegionScan>[] = [
  { header: 'account', value: (s) => s.accountId },
  { header: 'region', value: (s) => s.region },
  { header: 'http_tokens', value: (s) => np(s, (d) => d.httpTokens) },
  { header: 'http_endpoint', value: (s) => np(s, (d) => d.httpEndpoint) },
  { header: 'hop_limit', value: (s) => np(s, (d) => d.httpPutResponseHopLimit) },
  { header: 'instance_metadata_tags', value: (s) => np(s, (d) => d.instanceMetadataTags) },
  { header: 'tokens_enforced', value: (s) => enforcedText(s) },
  {
    header: 'managed_by',
    value: (s) => (s.defaults === null ? 'not read' : (s.defaultsManagement?.managedBy ?? 'account')),
  },
  { header: 'exception_message', value: (s) => s.defaultsManagement?.exceptionMessage ?? '', maxWidth: 60 },
];

/** HttpTokensEnforced as it applies: enabled, or not enforced (disabled / no preference). */
function enforcedText(s: RegionScan): string {
  if (s.defaults === null) return 'not read';
  const e = s.defaults.httpTokensEnforced;
  return e === 'enabled' ? 'enabled' : e === 'disabled' ? 'disabled' : 'no-preference (not enforced)';
}

const READINESS_COLUMNS: Column<EnforcementReadiness>[] = [
  { header: 'account', value: (r) => r.accountId },
  { header: 'region', value: (r) => r.region },
  { header: 'enforcement', value: (r) => r.enforcement },
  { header: 'readiness', value: (r) => r.verdict },
  { header: 'optional', value: (r) => r.counts.optional },
  { header: 'v1_callers', value: (r) => r.counts.v1Calls },
  { header: 'refused_launches', value: (r) => r.launches.length },
  { header: 'summary', value: (r) => r.summary, maxWidth: 90 },
];

/**
 * `fleet defaults`: one row (or record) per scanned region: the defaults, HttpTokensEnforced and who
 * manages them. A region whose defaults could not be read says so ("not read"; `read: false` in
 * JSON), never shows as having no preference. With `readiness`, what enforcing IMDSv2 would break.
 */
export function renderDefaults(
  scans: readonly RegionScan[],
  format: OutputFormat,
  readiness: readonly EnforcementReadiness[] | null = null,
): string {
  const ready = new Map((readiness ?? []).map((r) => [`${r.accountId}/${r.region}`, r]));
  const records = () =>
    scans.map((s) => {
      const r = ready.get(`${s.accountId}/${s.region}`);
      return {
        accountId: s.accountId,
        region: s.region,
        read: s.defaults !== null,
        ...s.defaults,
        managedBy: s.defaultsManagement?.managedBy ?? null,
        managedExceptionMessage: s.defaultsManagement?.exceptionMessage ?? null,
        ...(readiness
          ? {
              readiness: r
                ? {
                    verdict: r.verdict,
                    summary: r.summary,
                    counts: r.counts,
                    launches: r.launches,
                    instances: r.instances,
                  }
                : null,
            }
          : {}),
      };
    });
  switch (format) {
    case 'table': {
      let out = renderTable(scans, DEFAULTS_COLUMNS, { empty: 'No region could be read.' });
      if (readiness) {
        out += `\nReadiness to enforce IMDSv2 (HttpTokensEnforced=enabled):\n`;
        out += renderTable(readiness, READINESS_COLUMNS, { empty: 'No region could be read.' });
        for (const r of readiness) {
          const shown = [...r.launches, ...r.instances.filter((b) => b.evidence?.readiness !== 'ready')];
          for (const b of shown.slice(0, 20))
            out += `  ${r.accountId} ${r.region} ${b.kind} ${b.resourceId}: ${b.detail}\n`;
          if (shown.length > 20)
            out += `  ${r.accountId} ${r.region}: ... ${shown.length - 20} more (--format json)\n`;
        }
      }
      return out;
    }
    case 'csv':
      return renderCsv(scans, [
        { header: 'account_id', value: (s) => s.accountId },
        ...DEFAULTS_COLUMNS.slice(1),
      ]);
    case 'ndjson':
      return renderNdjson(records());
    default:
      return renderJson({ schemaVersion: TEMPLATES_SCHEMA_VERSION, defaults: records() });
  }
}
