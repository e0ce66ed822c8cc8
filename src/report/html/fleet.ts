/**
 * The fleet report as one self-contained HTML page. Every number on the page comes from the
 * FleetReportDocument (fleet-data.ts), which is also embedded in the page as JSON and is what
 * `fleet report --format json` prints.
 */

import type { Readiness } from '../../fleet/posture/readiness.js';
import { type BarRow, lineChart, stackedBars } from './charts.js';
import { esc, fmtInt, fmtPct, fmtSecond, fmtTime, slug } from './escape.js';
import type { FleetReportDocument, SliceCounts } from './fleet-data.js';
import { hostCallersSection } from './host-callers.js';
import { COLORS, card, legend, renderPage } from './page.js';

/** Best to worst, the order of the bar, the legend and the table. */
export const READINESS_ORDER: readonly Readiness[] = [
  'enforced',
  'disabled',
  'ready',
  'unknown',
  'not-ready',
  'broken',
];

/**
 * Labels that say the same as the overview: "IMDSv2 enforced" there is enforced + broken here,
 * "Endpoint disabled" is disabled, "IMDSv1 allowed" is ready + unknown + not ready.
 */
export const READINESS_LABELS: Record<Readiness, string> = {
  enforced: 'IMDSv2 enforced, no v1 call refused',
  disabled: 'Endpoint disabled',
  ready: 'IMDSv1 allowed: ready to enforce',
  'not-ready': 'IMDSv1 allowed: not ready (IMDSv1 calls)',
  unknown: 'IMDSv1 allowed: unknown (not enough evidence)',
  broken: 'IMDSv2 enforced, v1 calls refused (broken)',
};

export const READINESS_COLORS: Record<Readiness, string> = {
  enforced: COLORS.enforced,
  disabled: COLORS.disabled,
  ready: COLORS.ready,
  'not-ready': COLORS.notReady,
  unknown: COLORS.unknown,
  broken: COLORS.broken,
};

const SEVERITY_RANK = { high: 0, medium: 1, low: 2, info: 3 } as const;

/** Rows of the "Latest scans" table. */
export const LATEST_SCANS = 20;

function barRow(label: string, c: SliceCounts, testid: string): BarRow {
  return {
    label,
    segments: [
      { name: 'IMDSv2 enforced', value: c.enforced, color: COLORS.enforced },
      { name: 'endpoint disabled', value: c.disabled, color: COLORS.disabled },
      { name: 'IMDSv1 allowed', value: c.v1Allowed, color: COLORS.v1 },
    ],
    total: c.instances,
    valueLabel:
      c.scansFailed > 0 && c.instances === 0
        ? 'not read'
        : `${c.instances === 0 ? 'no instances' : `${fmtPct(c.percentEnforced)} enforced`}${c.scansFailed > 0 ? `, ${fmtInt(c.scansFailed)} scan(s) not read` : ''}`,
    testid,
  };
}

/** A number of a slice, or "not read" when none of its scans could be read. */
function sliceNum(c: SliceCounts, n: number, text = fmtInt(n)): string {
  return c.scansFailed > 0 && c.instances === 0 ? 'not read' : text;
}

const POSTURE_LEGEND = legend([
  ['IMDSv2 enforced', COLORS.enforced],
  ['Endpoint disabled', COLORS.disabled],
  ['IMDSv1 allowed', COLORS.v1],
]);

function sliceTable(
  id: string,
  keyHeader: string,
  rows: ReadonlyArray<{ key: string; label: string; c: SliceCounts }>,
  prefix: string,
): string {
  const body = rows
    .map(({ key, label, c }) => {
      const k = slug(key);
      const unread =
        c.scansFailed > 0
          ? ` <span class="note" data-testid="${prefix}-unread-${k}">(${fmtInt(c.scansFailed)} scan(s) not read)</span>`
          : '';
      return `<tr><td>${esc(label)}${unread}</td><td class="num" data-testid="${prefix}-instances-${k}">${sliceNum(c, c.instances)}</td><td class="num" data-testid="${prefix}-enforced-${k}">${sliceNum(c, c.enforced)}</td><td class="num" data-testid="${prefix}-v1-${k}">${sliceNum(c, c.v1Allowed)}</td><td class="num">${sliceNum(c, c.disabled)}</td><td class="num">${sliceNum(c, c.v1WithProfile)}</td><td class="num" data-v="${c.percentEnforced}" data-testid="${prefix}-pct-${k}">${sliceNum(c, c.percentEnforced, fmtPct(c.percentEnforced))}</td></tr>`;
    })
    .join('');
  return `<div class="tablewrap"><table id="${esc(id)}" data-sortable><thead><tr><th data-key="k">${esc(keyHeader)}</th><th class="num" data-key="n" data-type="num">Instances</th><th class="num" data-key="e" data-type="num">IMDSv2 enforced</th><th class="num" data-key="v" data-type="num">IMDSv1 allowed</th><th class="num" data-key="d" data-type="num">Endpoint disabled</th><th class="num" data-key="p" data-type="num">IMDSv1 + profile</th><th class="num" data-key="pct" data-type="num">% enforced</th></tr></thead><tbody>${body}</tbody></table></div>`;
}

function overview(doc: FleetReportDocument): string {
  const o = doc.overview;
  const cards = [
    card('Instances', fmtInt(o.instances), 'overview-instances', {
      sub: `${fmtInt(o.accounts)} account(s) × ${fmtInt(o.regions)} region(s)`,
    }),
    card('IMDSv2 enforced', fmtPct(o.percentEnforced), 'overview-percent-enforced', {
      sub: `${fmtInt(o.enforced)} instances`,
      tone: 'good',
    }),
    card('IMDSv1 allowed', fmtInt(o.v1Allowed), 'overview-v1-allowed', {
      sub: `${fmtPct(o.percentV1Allowed)} of instances`,
      tone: o.v1Allowed > 0 ? 'bad' : 'good',
    }),
    card('IMDSv1 + instance profile', fmtInt(o.v1WithProfile), 'overview-v1-with-profile', {
      sub: 'credentials reachable without a token',
      tone: o.v1WithProfile > 0 ? 'bad' : 'good',
    }),
    card('Endpoint disabled', fmtInt(o.disabled), 'overview-disabled', {
      sub: `${fmtPct(o.percentDisabled)} of instances`,
    }),
    card('Findings', fmtInt(o.findings), 'overview-findings', {
      sub: `${fmtInt(o.findingsBySeverity.high)} high, ${fmtInt(o.findingsBySeverity.medium)} medium`,
      tone: o.findingsBySeverity.high > 0 ? 'bad' : 'good',
    }),
    card(
      'Regression sources',
      o.regressionSourcesUnread > 0 ? `${fmtInt(o.regressionSources)}+` : fmtInt(o.regressionSources),
      'overview-regression-sources',
      {
        sub:
          o.regressionSourcesUnread > 0
            ? `launch IMDSv1 instances again; ${fmtInt(o.regressionSourcesUnread)} kind(s) not read everywhere`
            : 'launch IMDSv1 instances again',
        tone: o.regressionSources > 0 || o.regressionSourcesUnread > 0 ? 'warn' : 'good',
      },
    ),
  ];
  if (o.scanFailures > 0) {
    cards.push(
      card('Scan failures', fmtInt(o.scanFailures), 'overview-scan-failures', {
        sub: 'parts of the fleet not fully read',
        tone: 'warn',
      }),
    );
  }
  return `<section id="overview"><h2>Overview</h2><p class="note">IMDSv2 enforced means HttpTokens=required: a process must first PUT for a session token, which SSRF and open proxies cannot do. IMDSv1 allowed means any GET to 169.254.169.254 works.</p><div class="cards">${cards.join('')}</div><div class="hidden-counts" hidden><span data-testid="overview-enforced">${o.enforced}</span><span data-testid="overview-accounts">${o.accounts}</span><span data-testid="overview-regions">${o.regions}</span><span data-testid="overview-findings-high">${o.findingsBySeverity.high}</span></div></section>`;
}

function enforcement(doc: FleetReportDocument): string {
  const accRows = doc.byAccount.map((a) => ({
    key: a.accountId,
    label: a.name ? `${a.accountId} (${a.name})` : a.accountId,
    c: a,
  }));
  const regRows = doc.byRegion.map((r) => ({ key: r.region, label: r.region, c: r }));
  const accChart = stackedBars(
    'IMDSv2 enforcement by account',
    accRows.map((r) => barRow(r.label, r.c, `account-chart-pct-${slug(r.key)}`)),
  );
  const regChart = stackedBars(
    'IMDSv2 enforcement by region',
    regRows.map((r) => barRow(r.label, r.c, `region-chart-pct-${slug(r.key)}`)),
  );
  return `<section id="by-account"><h2>IMDSv2 enforcement by account</h2>${POSTURE_LEGEND}${accChart}<h3>Accounts</h3>${sliceTable('accounts-table', 'Account', accRows, 'account')}</section>
<section id="by-region"><h2>IMDSv2 enforcement by region</h2>${POSTURE_LEGEND}${regChart}<h3>Regions</h3>${sliceTable('regions-table', 'Region', regRows, 'region')}</section>`;
}

function readiness(doc: FleetReportDocument): string {
  const r = doc.readiness;
  const row: BarRow = {
    label: 'Live instances',
    segments: READINESS_ORDER.map((k) => ({
      name: READINESS_LABELS[k],
      value: r.counts[k],
      color: READINESS_COLORS[k],
    })),
    total: r.total,
    valueLabel: `${fmtInt(r.total)} instances`,
    testid: 'readiness-total-label',
  };
  const o = doc.overview;
  const reconcile = `The same instances as the overview: IMDSv2 enforced ${fmtInt(o.enforced)} = ${fmtInt(r.counts.enforced)} with no IMDSv1 call refused + ${fmtInt(r.counts.broken)} broken; endpoint disabled ${fmtInt(r.counts.disabled)}; IMDSv1 allowed ${fmtInt(o.v1Allowed)} = ${fmtInt(r.counts.ready)} ready + ${fmtInt(r.counts['not-ready'])} not ready + ${fmtInt(r.counts.unknown)} unknown.`;
  const note = `${
    r.measured
      ? `From CloudWatch MetadataNoToken and MetadataNoTokenRejected over ${r.window ? `${r.window.days} day(s), ${fmtTime(r.window.start)} to ${fmtTime(r.window.end)}` : 'the usage window'}. Ready: no IMDSv1 call while running through the whole window.`
      : 'IMDSv1 usage was not measured in this report, so instances that allow IMDSv1 count as unknown. Run fleet report with --usage to read CloudWatch evidence.'
  } ${reconcile}`;
  const rows = READINESS_ORDER.map(
    (k) =>
      `<tr><td><i style="display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;background:${READINESS_COLORS[k]}"></i>${esc(READINESS_LABELS[k])}</td><td class="num" data-testid="readiness-${k}">${fmtInt(r.counts[k])}</td><td class="num" data-testid="readiness-pct-${k}">${fmtPct(r.percent[k])}</td></tr>`,
  ).join('');
  return `<section id="readiness"><h2>Readiness to enforce IMDSv2</h2><p class="note">${esc(note)}</p>${legend(READINESS_ORDER.map((k) => [READINESS_LABELS[k], READINESS_COLORS[k]] as const))}${stackedBars('Readiness breakdown', [row])}<div class="tablewrap"><table id="readiness-table"><thead><tr><th>Readiness</th><th class="num">Instances</th><th class="num">Share</th></tr></thead><tbody>${rows}</tbody><tfoot><tr><th>Total</th><th class="num" data-testid="readiness-total">${fmtInt(r.total)}</th><th class="num">${r.measured ? 'measured' : 'not measured'}</th></tr></tfoot></table></div></section>`;
}

function regression(doc: FleetReportDocument): string {
  // A kind of resource that could not be read somewhere is unknown there: never 0 and healthy.
  const cards = doc.regressionSources
    .map((c) =>
      c.unread > 0
        ? card(c.label, c.count > 0 ? `${fmtInt(c.count)}+` : 'unknown', `regression-${c.key}`, {
            sub: `not read in ${fmtInt(c.unread)} account/region scan(s)`,
            tone: 'warn',
          })
        : card(c.label, fmtInt(c.count), `regression-${c.key}`, { tone: c.count > 0 ? 'warn' : 'good' }),
    )
    .join('');
  const items = doc.regressionSources.flatMap((c) => c.items.map((i) => ({ cat: c.label, i })));
  const listed = items.length;
  const total = doc.overview.regressionSources;
  const unread = doc.regressionSources.filter((c) => c.unread > 0);
  const table =
    listed === 0 && unread.length > 0
      ? `<p class="empty">No regression source found where it could be read; ${esc(unread.map((c) => c.label.toLowerCase()).join(', '))} could not be read everywhere (see Scan failures).</p>`
      : listed === 0
        ? '<p class="empty">No regression source: every template, group, launch configuration, account default and AMI in use launches IMDSv2-only instances.</p>'
        : `<div class="toolbar"><input type="search" placeholder="Filter regression sources…" aria-label="Filter regression sources" data-filter-for="regression-table"><span class="count" data-count-for="regression-table"></span></div><div class="tablewrap"><table id="regression-table" data-sortable><thead><tr><th data-key="cat">Source</th><th data-key="sev">Severity</th><th data-key="res">Resource</th><th data-key="acc">Account</th><th data-key="reg">Region</th><th data-key="msg">What</th></tr></thead><tbody>${items
            .map(
              ({ cat, i }) =>
                `<tr><td>${esc(cat)}</td><td data-v="${SEVERITY_RANK[i.severity]}" data-f="${esc(i.severity)}"><span class="sev sev-${esc(i.severity)}">${esc(i.severity)}</span></td><td class="mono">${esc(i.resourceId)}</td><td class="mono">${esc(i.accountId)}</td><td>${esc(i.region)}</td><td>${esc(i.message)}</td></tr>`,
            )
            .join(
              '',
            )}</tbody></table></div>${listed < total ? `<p class="note">${fmtInt(total - listed)} more not listed; see the JSON output.</p>` : ''}`;
  return `<section id="regression"><h2>Regression sources</h2><p class="note">Launch templates, Auto Scaling groups, launch configurations, account defaults and AMIs that will keep launching instances with IMDSv1 enabled, even after every running instance is fixed.</p><div class="cards">${cards}</div>${table}</section>`;
}

/** Each region's IMDS defaults, account-level enforcement and who manages them. */
function regionDefaultsSection(doc: FleetReportDocument): string {
  const rows = doc.regionDefaults
    .map((r) => {
      const cell = (v: string) => (r.read ? esc(v) : 'not read');
      return `<tr><td class="mono">${esc(r.accountId)}</td><td>${esc(r.region)}</td><td>${cell(r.httpTokens ?? 'no preference')}</td><td>${cell(r.httpTokensEnforced === 'enabled' ? 'enforced' : 'not enforced')}</td><td>${cell(r.managedBy ?? 'account')}</td><td>${esc(r.exceptionMessage ?? '')}</td></tr>`;
    })
    .join('');
  return `<section id="region-defaults"><h2>Account defaults and enforcement</h2><p class="note">Per account and region: the HttpTokens default for new launches, whether IMDSv2 is enforced at the account level (HttpTokensEnforced: launches and instances that are not tokens required are refused), and whether an AWS Organizations declarative policy manages them (the account cannot change them).</p><div class="tablewrap"><table id="region-defaults-table" data-sortable><thead><tr><th>Account</th><th>Region</th><th>Default HttpTokens</th><th>Enforcement</th><th>Managed by</th><th>Policy message</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

function trend(doc: FleetReportDocument): string {
  const pts = doc.trend;
  const times = pts.map((p) => Date.parse(p.time));
  const chart = lineChart('IMDSv2 enforcement over time', times, [
    { name: 'IMDSv2 enforced', color: COLORS.enforced, values: pts.map((p) => p.percentEnforced) },
    {
      name: 'IMDSv1 allowed',
      color: COLORS.v1,
      values: pts.map((p) => p.percentV1Allowed),
    },
  ]);
  const first = pts[0];
  const last = pts[pts.length - 1];
  const delta =
    first && last && pts.length > 1
      ? `From ${fmtPct(first.percentEnforced)} on ${fmtTime(first.time)} to ${fmtPct(last.percentEnforced)} on ${fmtTime(last.time)} (${last.percentEnforced >= first.percentEnforced ? '+' : ''}${(Math.round((last.percentEnforced - first.percentEnforced) * 10) / 10).toFixed(1)} points), ${fmtInt(pts.length)} scans.`
      : 'Only one scan so far: each fleet discover adds a point to the history.';
  // Newest first; this report's own scan is always listed (and labelled), even when older.
  const newest = [...pts].reverse();
  const shown = newest.slice(0, LATEST_SCANS);
  const own = newest.find((p) => p.current);
  if (own && !shown.includes(own)) shown[shown.length - 1] = own;
  const rows = shown
    .map(
      (p) =>
        `<tr data-testid="latest-scan"${p.current ? ' data-current="1"' : ''}><td>${esc(`${fmtSecond(p.time)} UTC`)}${p.current ? ' <strong>(this report)</strong>' : ''}</td><td>${esc(p.source)}</td><td class="num">${fmtInt(p.instances)}</td><td class="num">${fmtInt(p.enforced)}</td><td class="num">${fmtInt(p.v1Allowed)}</td><td class="num">${fmtInt(p.disabled)}</td><td class="num">${fmtPct(p.percentEnforced)}</td><td class="num">${p.failures > 0 ? fmtInt(p.failures) : ''}</td></tr>`,
    )
    .join('');
  const heading =
    pts.length > shown.length
      ? `Latest scans, newest first (${fmtInt(shown.length)} of ${fmtInt(pts.length)})`
      : 'Latest scans, newest first';
  return `<section id="trend"><h2>Trend</h2><p class="note" data-testid="trend-summary">${esc(delta)}</p>${legend(
    [
      ['IMDSv2 enforced (% of instances)', COLORS.enforced],
      ['IMDSv1 allowed (% of instances)', COLORS.v1],
    ],
  )}${chart}<h3 data-testid="latest-scans-heading">${esc(heading)}</h3><div class="tablewrap"><table id="trend-table"><thead><tr><th>Scanned at</th><th>Recorded by</th><th class="num">Instances</th><th class="num">IMDSv2 enforced</th><th class="num">IMDSv1 allowed</th><th class="num">Endpoint disabled</th><th class="num">% enforced</th><th class="num">Scan failures</th></tr></thead><tbody>${rows}</tbody></table></div><span hidden data-testid="trend-points">${pts.length}</span></section>`;
}

function findings(doc: FleetReportDocument): string {
  const types = [...new Set(doc.findings.map((f) => f.resourceType))].sort();
  const rows = doc.findings
    .map(
      (f) =>
        `<tr data-testid="finding-row"><td data-v="${SEVERITY_RANK[f.severity]}" data-f="${esc(f.severity)}"><span class="sev sev-${esc(f.severity)}">${esc(f.severity)}</span></td><td><code>${esc(f.id)}</code></td><td class="mono">${esc(f.resourceId)}</td><td>${esc(f.resourceType)}</td><td class="mono">${esc(f.accountId)}</td><td>${esc(f.region)}</td><td>${esc(f.message)}</td></tr>`,
    )
    .join('');
  const omitted =
    doc.findingsOmitted > 0
      ? `<p class="note">${fmtInt(doc.findingsOmitted)} more findings are not listed here; use fleet discover --format json or csv for all of them.</p>`
      : '';
  const table =
    doc.findings.length === 0
      ? '<p class="empty">No findings.</p>'
      : `<div class="toolbar"><input type="search" placeholder="Filter findings (id, resource, account, region, text)…" aria-label="Filter findings" data-filter-for="findings-table" data-testid="findings-filter"><select data-filter-for="findings-table" data-filter-col="0" aria-label="Severity" data-testid="findings-severity"><option value="">All severities</option>${['high', 'medium', 'low', 'info'].map((s) => `<option value="${s}">${s}</option>`).join('')}</select><select data-filter-for="findings-table" data-filter-col="3" aria-label="Resource type"><option value="">All resource types</option>${types.map((t) => `<option value="${esc(t)}">${esc(t)}</option>`).join('')}</select><span class="count" data-count-for="findings-table" data-testid="findings-shown"></span></div><div class="tablewrap"><table id="findings-table" data-sortable><thead><tr><th data-key="severity">Severity</th><th data-key="id">Finding</th><th data-key="resource">Resource</th><th data-key="type">Type</th><th data-key="account">Account</th><th data-key="region">Region</th><th data-key="message">Details</th></tr></thead><tbody>${rows}</tbody></table></div>${omitted}`;
  const fs = doc.overview.findingsBySeverity;
  return `<section id="findings"><h2>Findings</h2><p class="note"><span data-testid="findings-total">${fmtInt(doc.overview.findings)}</span> findings: ${fmtInt(fs.high)} high, ${fmtInt(fs.medium)} medium, ${fmtInt(fs.low)} low, ${fmtInt(fs.info)} info. Click a column header to sort; type to filter. Each finding id and its fix are described in docs/findings.md.</p>${table}</section>`;
}

function failures(doc: FleetReportDocument): string {
  if (doc.failures.length === 0) return '';
  const rows = doc.failures
    .map(
      (f) =>
        `<tr><td class="mono">${esc(f.accountId ?? '-')}</td><td>${esc(f.region ?? '-')}</td><td>${esc(f.stage)}</td><td><code>${esc(f.code)}</code></td><td>${esc(f.message)}</td></tr>`,
    )
    .join('');
  return `<section id="failures"><h2>Scan failures</h2><p class="note">These parts of the fleet were not fully read; the numbers above leave them out.</p><div class="tablewrap"><table><thead><tr><th>Account</th><th>Region</th><th>Stage</th><th>Code</th><th>Message</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

export function renderFleetHtml(doc: FleetReportDocument): string {
  const o = doc.overview;
  return renderPage({
    title: 'IMDS fleet report',
    subtitle: `${fmtInt(o.instances)} instances in ${fmtInt(o.accounts)} account(s) and ${fmtInt(o.regions)} region(s), scanned ${fmtTime(doc.scannedAt)}. IMDSv2 enforced on ${fmtPct(o.percentEnforced)}.`,
    body: [
      overview(doc),
      enforcement(doc),
      readiness(doc),
      hostCallersSection(doc.hostEvidence),
      regression(doc),
      regionDefaultsSection(doc),
      trend(doc),
      findings(doc),
      failures(doc),
    ].join('\n'),
    data: doc,
    footer: `Generated by imdsguard on ${fmtTime(doc.generatedAt)} from a ${doc.source === 'discovery' ? 'live scan' : 'saved scan'} taken ${fmtTime(doc.scannedAt)}. The numbers of this page are embedded as JSON (script#report-data) and equal fleet report --format json.`,
  });
}
