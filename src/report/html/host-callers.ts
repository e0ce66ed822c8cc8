/**
 * The fleet report's host evidence section: the executables that block IMDSv2
 * enforcement, ranked by the number of instances they block, then each not-ready instance with its
 * IMDSv1 callers (or why none are named).
 */
import { callerPhrase, type HostEvidenceReport } from '../../fleet/usage/host-join.js';
import { esc, fmtInt } from './escape.js';

export function hostCallersSection(h: HostEvidenceReport | null | undefined): string {
  if (!h) return '';
  const blockers = h.blockers
    .map(
      (b, i) =>
        `<tr><td class="num">${i + 1}</td><td class="mono">${esc(b.exe)}</td><td class="num">${fmtInt(b.instances)}</td><td class="num">${fmtInt(b.v1Calls)}</td><td class="mono">${esc(b.examples.slice(0, 3).join(', '))}${b.instances > 3 ? ', …' : ''}</td></tr>`,
    )
    .join('');
  const blockersTable =
    h.blockers.length === 0
      ? '<p class="note">No host evidence names an IMDSv1 caller on a not-ready instance.</p>'
      : `<div class="tablewrap"><table id="blockers-table"><thead><tr><th class="num">Rank</th><th>Executable</th><th class="num">Instances blocked</th><th class="num">IMDSv1 calls</th><th>Instances (first)</th></tr></thead><tbody>${blockers}</tbody></table></div>${h.blockersOmitted > 0 ? `<p class="note">${fmtInt(h.blockersOmitted)} more executables are in the JSON output.</p>` : ''}`;
  const rows = h.instances
    .map((r) => {
      const who =
        r.callers && r.callers.length > 0
          ? `<ul class="callers">${r.callers.map((c) => `<li class="mono">${esc(callerPhrase(c))}</li>`).join('')}</ul>`
          : esc(r.sentence);
      return `<tr data-status="${esc(r.status ?? 'none')}"><td class="mono">${esc(r.accountId)}</td><td>${esc(r.region)}</td><td class="mono">${esc(r.instanceId)}</td><td>${esc(r.name ?? '')}</td><td>${esc(r.readiness)}</td><td>${who}</td></tr>`;
    })
    .join('');
  const scanned =
    h.bytesScanned > 0 ? ` Logs Insights scanned ${esc((h.bytesScanned / 1e6).toFixed(3))} MB for it.` : '';
  return `<section id="host-callers"><h2>What still calls IMDSv1</h2><p class="note">From ${esc(h.source)}: the processes the imdsguard guard saw making IMDSv1 calls on each instance that is not ready to enforce IMDSv2.${scanned}</p><h3>Executables blocking enforcement</h3>${blockersTable}<h3>Not-ready instances and their IMDSv1 callers</h3><div class="tablewrap"><table id="host-callers-table"><thead><tr><th>Account</th><th>Region</th><th>Instance</th><th>Name</th><th>Readiness</th><th>IMDSv1 callers on the host</th></tr></thead><tbody>${rows}</tbody></table></div>${h.instancesOmitted > 0 ? `<p class="note">${fmtInt(h.instancesOmitted)} more instances are in the JSON output.</p>` : ''}</section>`;
}
