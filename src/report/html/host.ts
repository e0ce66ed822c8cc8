/**
 * The host report (imdsguard report) as one self-contained HTML page, from a HostReportDocument
 * (host-data.ts), which is also embedded in the page as JSON.
 */
import { type CallerSummary, podLabel } from '../../guard/callers/summarize.js';
import { timeColumns } from './charts.js';
import { esc, fmtInt, fmtSecond, fmtTime } from './escape.js';
import type { HostReportDocument } from './host-data.js';
import { COLORS, card, legend, renderPage } from './page.js';

function bucketName(seconds: number): string {
  if (seconds % 604_800 === 0) return `${seconds / 604_800} week`;
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour`;
  return `${seconds / 60} minute`;
}

/** A path, escaped, with a line-break opportunity after each slash. */
function pathHtml(path: string): string {
  return esc(path).replace(/\//g, '/<wbr>');
}

function who(c: CallerSummary): string {
  return c.exe ?? (c.key === '(other callers)' ? '(other callers)' : '(unattributed)');
}

function callersTable(id: string, rows: readonly CallerSummary[], testid: string, empty: string): string {
  if (rows.length === 0) return `<p class="empty" data-testid="${esc(testid)}-empty">${esc(empty)}</p>`;
  const containers = rows.some((c) => c.container !== undefined);
  const pods = rows.some((c) => c.pod !== undefined);
  const body = rows
    .map(
      (c) =>
        `<tr data-testid="${esc(testid)}-row"><td class="mono">${esc(who(c))}</td><td class="nowrap">${esc(c.user ?? '')}</td>${pods ? `<td class="mono" data-testid="${esc(testid)}-pod">${esc(c.pod ? podLabel(c.pod) : '')}</td>` : ''}${containers ? `<td class="mono">${esc(c.container ? `${c.container.runtime}:${c.container.id.slice(0, 12)}` : '')}</td>` : ''}<td class="num" data-testid="${esc(testid)}-v1">${fmtInt(c.v1)}</td><td class="num">${fmtInt(c.v2)}</td><td class="num">${fmtInt(c.token)}</td><td class="num">${fmtInt(c.denied)}</td><td class="num" data-testid="${esc(testid)}-total">${fmtInt(c.total)}</td><td class="nowrap" data-v="${esc(c.lastSeen)}">${esc(fmtSecond(c.lastSeen))}</td><td class="mono path">${pathHtml(c.lastPath)}</td></tr>`,
    )
    .join('');
  return `<div class="tablewrap"><table id="${esc(id)}" data-sortable><thead><tr><th data-key="exe">Executable</th><th data-key="user">User</th>${pods ? '<th data-key="pod">Pod</th>' : ''}${containers ? '<th data-key="container">Container</th>' : ''}<th class="num" data-key="v1" data-type="num">IMDSv1</th><th class="num" data-key="v2" data-type="num">IMDSv2</th><th class="num" data-key="token" data-type="num">Token PUTs</th><th class="num" data-key="denied" data-type="num">Denied</th><th class="num" data-key="total" data-type="num">Total</th><th data-key="last">Last seen</th><th data-key="path">Last path</th></tr></thead><tbody>${body}</tbody></table></div>`;
}

/** Rows of a requests table (denied and alerted requests, header-allowed reads). */
function requestRowsHtml(rows: HostReportDocument['requests']['rows'], testid: string): string {
  return rows
    .map(
      (r) =>
        `<tr data-testid="${esc(testid)}"><td class="nowrap" data-v="${esc(r.time)}">${esc(fmtSecond(r.time))}</td><td data-f="${esc(r.decision)}"><span class="pill ${r.decision === 'deny' ? 'deny' : 'allow'}">${esc(r.decision)}</span><span class="sub2 nowrap">${esc(r.action)}${r.alert ? ' · alert' : ''} · ${r.status}</span></td><td>${esc(r.version)}</td><td class="mono path">${esc(r.method)} ${pathHtml(r.path)}</td><td><span class="mono">${esc(r.exe ?? '(unattributed)')}</span><span class="sub2">${esc(r.user ?? 'user unknown')}${r.pid !== null ? ` · pid ${r.pid}` : ''}</span></td><td><code>${esc(r.rule)}</code><span class="sub2">${esc(r.reason)}</span></td></tr>`,
    )
    .join('');
}

export function renderHostHtml(doc: HostReportDocument): string {
  const t = doc.totals;
  const hosts = doc.hosts.length > 0 ? doc.hosts.join(', ') : 'no events';
  const range = `${doc.window.since ? fmtTime(doc.window.since) : 'the first event'} to ${fmtTime(doc.window.until)}`;
  const cards = [
    card('Requests', fmtInt(t.events), 'host-events', { sub: range }),
    card('Allowed', fmtInt(t.allowed), 'host-allowed', {
      tone: 'good',
      sub: `${fmtInt(t.forwarded)} forwarded`,
    }),
    card('Denied', fmtInt(t.denied), 'host-denied', {
      tone: t.denied > 0 ? 'bad' : 'good',
      sub: `${fmtInt(t.refused)} refused, ${fmtInt(t.flagged)} flagged`,
    }),
    card('Alerted', fmtInt(t.alerted), 'host-alerted', { tone: t.alerted > 0 ? 'warn' : 'good' }),
    card('IMDSv1 requests', fmtInt(t.v1), 'host-v1', {
      tone: t.v1 > 0 ? 'bad' : 'good',
      sub: 'tokenless GETs',
    }),
    card('IMDSv2 requests', fmtInt(t.v2), 'host-v2', {
      tone: 'good',
      sub: `plus ${fmtInt(t.token)} token PUTs`,
    }),
    card('Callers', fmtInt(t.callers), 'host-callers', { sub: 'distinct exe, user, pod, container' }),
    card('IMDSv1 callers', fmtInt(t.v1Callers), 'host-v1-callers', {
      tone: t.v1Callers > 0 ? 'bad' : 'good',
      sub: 'break when IMDSv2 is required',
    }),
  ];
  if (t.headerReads > 0) {
    cards.push(
      card('Secrets read on a header', fmtInt(t.headerReads), 'host-header-reads', {
        tone: 'bad',
        sub: 'IMDSv1, User-Agent or Metadata-Flavor alone',
      }),
    );
  }
  if (t.trapped > 0) cards.push(card('Trapped', fmtInt(t.trapped), 'host-trapped', { tone: 'bad' }));
  const buckets = doc.timeline.buckets;
  const chart =
    buckets.length === 0
      ? '<p class="empty">No events in this window.</p>'
      : timeColumns(
          'Guard decisions over time',
          buckets.map((b) => ({ startMs: Date.parse(b.start), values: [b.allow, b.deny] })),
          [
            { name: 'allowed', color: COLORS.allow },
            { name: 'denied', color: COLORS.deny },
          ],
          doc.timeline.bucketSeconds * 1000,
        );
  const reqRows = requestRowsHtml(doc.requests.rows, 'request-row');
  const headerReadRows = requestRowsHtml(doc.headerReads.rows, 'header-read-row');
  const headerReads =
    doc.headerReads.rows.length === 0
      ? '<p class="empty" data-testid="header-reads-empty">No credential or user-data read was allowed on a header alone.</p>'
      : `<div class="tablewrap"><table id="header-reads-table" data-sortable><thead><tr><th data-key="time">Time</th><th data-key="decision">Decision</th><th data-key="version">Version</th><th data-key="request">Request</th><th data-key="caller">Caller</th><th data-key="rule">Rule and reason</th></tr></thead><tbody>${headerReadRows}</tbody></table></div>${doc.headerReads.total > doc.headerReads.rows.length ? `<p class="note">The newest ${fmtInt(doc.headerReads.rows.length)} of ${fmtInt(doc.headerReads.total)} are listed.</p>` : ''}`;
  const requests =
    doc.requests.rows.length === 0
      ? '<p class="empty">No denied or alerted request in this window.</p>'
      : `<div class="toolbar"><input type="search" placeholder="Filter requests (path, executable, user, rule)…" aria-label="Filter requests" data-filter-for="requests-table" data-testid="requests-filter"><select data-filter-for="requests-table" data-filter-col="1" aria-label="Decision"><option value="">All decisions</option><option value="deny">deny</option><option value="allow">allow</option></select><span class="count" data-count-for="requests-table" data-testid="requests-shown"></span></div><div class="tablewrap"><table id="requests-table" data-sortable><thead><tr><th data-key="time">Time</th><th data-key="decision">Decision</th><th data-key="version">Version</th><th data-key="request">Request</th><th data-key="caller">Caller</th><th data-key="rule">Rule and reason</th></tr></thead><tbody>${reqRows}</tbody></table></div>${doc.requests.total > doc.requests.rows.length ? `<p class="note">The newest ${fmtInt(doc.requests.rows.length)} of ${fmtInt(doc.requests.total)} are listed; use imdsguard events --decision deny for all of them.</p>` : ''}`;
  const body = `<section id="overview"><h2>Overview</h2><p class="note">Every request to the instance metadata service on ${esc(hosts)} that went through the imdsguard guard, ${esc(range)}.</p><div class="cards">${cards.join('')}</div></section>
<section id="timeline"><h2>Decisions over time</h2><p class="note">Requests per ${esc(bucketName(doc.timeline.bucketSeconds))}, allowed and denied (in monitor mode, denied means flagged).</p>${legend(
    [
      ['Allowed', COLORS.allow],
      ['Denied', COLORS.deny],
    ],
  )}${chart}</section>
<section id="v1-callers"><h2>IMDSv1 callers</h2><p class="note">Processes that made tokenless (IMDSv1) requests: they stop working when IMDSv2 is required on this instance. Update them to an SDK that uses IMDSv2, or allow them explicitly.</p>${callersTable('v1-callers-table', doc.v1Callers, 'v1-caller', 'No IMDSv1 caller: every process here already uses IMDSv2.')}</section>
<section id="header-reads"><h2>Credential and user-data reads allowed on a header alone</h2><p class="note"><span data-testid="header-reads-total">${fmtInt(doc.headerReads.total)}</span> tokenless reads of credentials or user-data were allowed only by a User-Agent prefix or <code>Metadata-Flavor: Amazon</code>, headers any process can send. Move these callers to IMDSv2, or allow them by executable or user.</p>${headerReads}</section>
<section id="top-callers"><h2>Top callers</h2><p class="note">The ${fmtInt(doc.topCallers.length)} most active processes.</p>${callersTable('top-callers-table', doc.topCallers, 'top-caller', 'No caller.')}</section>
<section id="requests"><h2>Denied and alerted requests</h2><p class="note"><span data-testid="requests-total">${fmtInt(doc.requests.total)}</span> requests were denied or raised an alert. Click a column header to sort; type to filter.</p>${requests}</section>`;
  return renderPage({
    title: 'IMDS guard report',
    subtitle: `${hosts} · ${fmtInt(t.events)} requests, ${fmtInt(t.denied)} denied, ${fmtInt(t.v1Callers)} IMDSv1 caller(s) · ${range}`,
    body,
    data: doc,
    footer: `Generated by imdsguard on ${fmtTime(doc.generatedAt)} from the guard's event store. The numbers of this page are embedded as JSON (script#report-data) and equal imdsguard report --format json.`,
  });
}
