/**
 * Views of `fleet discover` and `fleet roles` in every format. The JSON documents are described in
 * docs/fleet-json-schema.md; bump FLEET_SCHEMA_VERSION on any incompatible change.
 */
import type { ApiCallSnapshot } from '../fleet/aws/counter.js';
import {
  allowsImdsV1,
  type InstanceRecord,
  type Inventory,
  type RegionScan,
  type ScanFailure,
} from '../fleet/inventory/model.js';
import { countBySeverity, FINDINGS, type Finding, type Severity } from '../fleet/posture/findings.js';
import type { RoleGroup } from '../fleet/posture/roles.js';
import type { PostureCounts, PostureSummary } from '../fleet/posture/summary.js';
import type { Column } from './columns.js';
import { renderCsv } from './csv.js';
import { renderDiscoverStreamed } from './discover-stream.js';
import { FLEET_SCHEMA_VERSION } from './fleet-records.js';
import { renderJson, renderNdjson } from './json.js';
import type { OutputFormat } from './output.js';
import { renderTable } from './table.js';

/** Rows of findings a table shows before pointing to --format json/csv. */
export const TABLE_FINDINGS_LIMIT = 25;

export interface RunStats {
  durationMs: number;
  apiCalls: ApiCallSnapshot['total'];
  apiCallsByOperation: ApiCallSnapshot['byOperation'];
}

export interface DiscoverDocument {
  schemaVersion: typeof FLEET_SCHEMA_VERSION;
  kind: 'imdsguard.fleet.discover';
  generatedAt: string;
  regions: string[];
  accounts: Inventory['accounts'];
  summary: PostureSummary;
  findingCounts: Record<Severity, number>;
  findings: Finding[];
  failures: ScanFailure[];
  scans: RegionScan[];
  instances: InstanceRecord[];
  stats: RunStats;
}

export function discoverDocument(
  inv: Inventory,
  summary: PostureSummary,
  findings: Finding[],
  stats: RunStats,
): DiscoverDocument {
  return {
    schemaVersion: FLEET_SCHEMA_VERSION,
    kind: 'imdsguard.fleet.discover',
    generatedAt: inv.generatedAt,
    regions: inv.regions,
    accounts: inv.accounts,
    summary,
    findingCounts: countBySeverity(findings),
    findings,
    failures: inv.failures,
    scans: inv.scans,
    instances: inv.instances,
    stats,
  };
}

function countColumns<T extends PostureCounts>(): Column<T>[] {
  return [
    { header: 'instances', value: (c) => c.instances, align: 'right' },
    { header: 'v2 only', value: (c) => `${c.tokensRequired} (${c.percent.tokensRequired}%)`, align: 'right' },
    {
      header: 'v1 allowed',
      value: (c) => `${c.tokensOptional} (${c.percent.tokensOptional}%)`,
      align: 'right',
    },
    {
      header: 'disabled',
      value: (c) => `${c.endpointDisabled} (${c.percent.endpointDisabled}%)`,
      align: 'right',
    },
    { header: 'v1+role', value: (c) => c.imdsV1WithProfile, align: 'right' },
    { header: 'hop>1', value: (c) => c.hopLimit['2'] + c.hopLimit['>2'], align: 'right' },
    { header: 'ipv6', value: (c) => c.ipv6Enabled, align: 'right' },
    { header: 'tags', value: (c) => c.tagsInMetadata, align: 'right' },
    { header: 'pending', value: (c) => c.pending, align: 'right' },
  ];
}

const FAILURE_COLUMNS: Column<ScanFailure>[] = [
  { header: 'account', value: (f) => f.accountId ?? '-' },
  { header: 'region', value: (f) => f.region ?? '-' },
  { header: 'stage', value: (f) => f.stage },
  { header: 'code', value: (f) => f.code },
  { header: 'aws code', value: (f) => f.awsCode ?? '' },
  { header: 'message', value: (f) => f.message, maxWidth: 100 },
];

/** A value of a region's defaults, or "not read" when they could not be read. */
function regionState(
  doc: Pick<DiscoverDocument, 'scans'>,
  at: { accountId: string; region: string },
  value: (s: RegionScan) => string,
): string {
  const s = doc.scans.find((x) => x.accountId === at.accountId && x.region === at.region);
  return s && s.defaults !== null ? value(s) : 'not read';
}

function discoverTable(doc: DiscoverDocument): string {
  const parts: string[] = [];
  const o = doc.summary.overall;
  // A scan that failed outright has unknown counts: "not read", never 0.
  const failed = new Set(
    doc.scans.filter((s) => s.status === 'failed').map((s) => `${s.accountId}/${s.region}`),
  );
  parts.push(
    `IMDS posture: ${o.instances} instances in ${doc.accounts.length} account(s) x ${doc.regions.length} region(s): ` +
      `${o.tokensRequired} IMDSv2 only (${o.percent.tokensRequired}%), ${o.tokensOptional} allow IMDSv1 (${o.percent.tokensOptional}%), ` +
      `${o.endpointDisabled} endpoint disabled (${o.percent.endpointDisabled}%)` +
      `${failed.size > 0 ? `; ${failed.size} account/region scan(s) not read` : ''}\n`,
  );
  type Row = PostureCounts & { accountId: string; region: string };
  const notRead = (r: Row) => failed.has(`${r.accountId}/${r.region}`);
  parts.push(
    renderTable(doc.summary.byAccountRegion, [
      { header: 'account', value: (c) => c.accountId },
      { header: 'region', value: (c) => c.region },
      {
        header: 'scan',
        value: (c) =>
          doc.scans.find((s) => s.accountId === c.accountId && s.region === c.region)?.status ?? '',
      },
      // The region's effective state: the HttpTokens default, enforcement and who manages them.
      {
        header: 'default tokens',
        value: (c) => regionState(doc, c, (s) => s.defaults?.httpTokens ?? 'no-preference'),
      },
      {
        header: 'enforced',
        value: (c) =>
          regionState(doc, c, (s) => (s.defaults?.httpTokensEnforced === 'enabled' ? 'yes' : 'no')),
      },
      {
        header: 'managed by',
        value: (c) => regionState(doc, c, (s) => s.defaultsManagement?.managedBy ?? 'account'),
      },
      ...countColumns<Row>().map((col) => ({
        ...col,
        value: (r: Row) => (notRead(r) ? 'not read' : col.value(r)),
      })),
    ]),
  );
  const fc = doc.findingCounts;
  parts.push(`\nFindings: ${fc.high} high, ${fc.medium} medium, ${fc.low} low, ${fc.info} info\n`);
  const byId = new Map<string, number>();
  for (const f of doc.findings) byId.set(f.id, (byId.get(f.id) ?? 0) + 1);
  if (byId.size > 0) {
    parts.push(
      renderTable(
        [...byId].map(([id, n]) => ({ id, n })),
        [
          { header: 'severity', value: (r) => FINDINGS[r.id as keyof typeof FINDINGS].severity },
          { header: 'finding', value: (r) => r.id },
          { header: 'count', value: (r) => r.n, align: 'right' },
          { header: 'what', value: (r) => FINDINGS[r.id as keyof typeof FINDINGS].title, maxWidth: 80 },
        ],
      ),
    );
    const shown = doc.findings.slice(0, TABLE_FINDINGS_LIMIT);
    parts.push('\n');
    parts.push(
      renderTable(shown, [
        { header: 'severity', value: (f) => f.severity },
        { header: 'account', value: (f) => f.accountId },
        { header: 'region', value: (f) => f.region },
        { header: 'resource', value: (f) => f.resourceId },
        { header: 'message', value: (f) => f.message, maxWidth: 110 },
      ]),
    );
    if (doc.findings.length > shown.length) {
      parts.push(
        `... ${doc.findings.length - shown.length} more: use --format json or csv for every finding and instance\n`,
      );
    }
  }
  if (doc.failures.length > 0) {
    parts.push(`\nPartial failures (${doc.failures.length}): the rest of the scan is complete\n`);
    parts.push(renderTable(doc.failures, FAILURE_COLUMNS));
  }
  return parts.join('');
}

export function renderDiscover(doc: DiscoverDocument, format: OutputFormat): string {
  switch (format) {
    case 'json':
      return renderJson(doc);
    case 'csv':
    case 'ndjson':
      // The same records, in the same order, as a streamed discover writes them.
      return renderDiscoverStreamed(doc, format);
    default:
      return discoverTable(doc);
  }
}

export interface RolesDocument {
  schemaVersion: typeof FLEET_SCHEMA_VERSION;
  kind: 'imdsguard.fleet.roles';
  generatedAt: string;
  regions: string[];
  accounts: Inventory['accounts'];
  groups: RoleGroup[];
  failures: ScanFailure[];
  stats: RunStats;
}

export function rolesDocument(inv: Inventory, groups: RoleGroup[], stats: RunStats): RolesDocument {
  return {
    schemaVersion: FLEET_SCHEMA_VERSION,
    kind: 'imdsguard.fleet.roles',
    generatedAt: inv.generatedAt,
    regions: inv.regions,
    accounts: inv.accounts,
    groups,
    failures: inv.failures,
    stats,
  };
}

interface RoleRow {
  group: RoleGroup;
  instanceId: string;
}

export function renderRoles(
  doc: RolesDocument,
  format: OutputFormat,
  instances: readonly InstanceRecord[],
): string {
  switch (format) {
    case 'json':
      return renderJson(doc);
    case 'ndjson':
      return renderNdjson([
        {
          type: 'meta',
          schemaVersion: doc.schemaVersion,
          kind: doc.kind,
          generatedAt: doc.generatedAt,
          regions: doc.regions,
          accounts: doc.accounts,
          stats: doc.stats,
        },
        ...doc.groups.map((g) => ({ type: 'role-group', ...g })),
        ...doc.failures.map((f) => ({ type: 'failure', ...f })),
      ]);
    case 'csv': {
      const byKey = new Map(instances.map((i) => [`${i.accountId}/${i.instanceId}`, i]));
      const rows: RoleRow[] = doc.groups.flatMap((g) =>
        g.instanceIds.map((instanceId) => ({ group: g, instanceId })),
      );
      const inst = (r: RoleRow) => byKey.get(`${r.group.accountId}/${r.instanceId}`);
      return renderCsv(rows, [
        { header: 'account_id', value: (r) => r.group.accountId },
        { header: 'instance_profile_arn', value: (r) => r.group.instanceProfileArn },
        { header: 'instance_profile_name', value: (r) => r.group.instanceProfileName },
        { header: 'role_names', value: (r) => r.group.roleNames?.join(';') },
        { header: 'instance_id', value: (r) => r.instanceId },
        { header: 'region', value: (r) => inst(r)?.region },
        { header: 'state', value: (r) => inst(r)?.state },
        {
          header: 'imdsv1_allowed',
          value: (r) => {
            const i = inst(r);
            return i ? allowsImdsV1(i.metadataOptions) : null;
          },
        },
      ]);
    }
    default: {
      let out = renderTable(
        doc.groups,
        [
          { header: 'account', value: (g) => g.accountId },
          { header: 'instance profile', value: (g) => g.instanceProfileName ?? '(none)' },
          {
            header: 'roles',
            value: (g) =>
              g.instanceProfileArn === null
                ? ''
                : g.roleNames === null
                  ? '?'
                  : g.roleNames.join(',') || '(no role)',
            maxWidth: 60,
          },
          { header: 'instances', value: (g) => g.instances, align: 'right' },
          { header: 'running', value: (g) => g.running, align: 'right' },
          { header: 'v1 allowed', value: (g) => g.imdsV1Allowed, align: 'right' },
          { header: 'regions', value: (g) => g.regions.join(','), maxWidth: 60 },
          { header: 'arn', value: (g) => g.instanceProfileArn ?? '', maxWidth: 100 },
        ],
        { empty: 'No instances.' },
      );
      if (doc.failures.length > 0) {
        out += `\nPartial failures (${doc.failures.length}): the rest of the scan is complete\n`;
        out += renderTable(doc.failures, FAILURE_COLUMNS);
      }
      return out;
    }
  }
}

/** The --verbose API call table (stderr). */
export function renderApiCalls(snapshot: Pick<ApiCallSnapshot, 'total' | 'byOperation'>): string {
  const rows = Object.entries(snapshot.byOperation)
    .map(([operation, s]) => ({ operation, ...s }))
    .sort((a, b) => a.operation.localeCompare(b.operation));
  rows.push({ operation: 'total', ...snapshot.total });
  return renderTable(rows, [
    { header: 'api call', value: (r) => r.operation },
    { header: 'calls', value: (r) => r.calls, align: 'right' },
    { header: 'http attempts', value: (r) => r.attempts, align: 'right' },
    { header: 'throttled', value: (r) => r.throttled, align: 'right' },
    { header: 'errors', value: (r) => r.errors, align: 'right' },
  ]);
}
