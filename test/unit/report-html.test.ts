/**
 * The HTML reports without a browser: the documents' numbers, escaping, the Content-Security-Policy
 * (no external resource, only the one hashed script), and the fleet report CLI on a saved inventory.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FleetSnapshot } from '../../src/fleet/history/snapshot.js';
import { findFindings } from '../../src/fleet/posture/findings.js';
import { summarize } from '../../src/fleet/posture/summary.js';
import { esc, jsonForScript } from '../../src/report/html/escape.js';
import { renderFleetHtml } from '../../src/report/html/fleet.js';
import {
  buildFleetReport,
  FLEET_REPORT_LIMITS,
  type FleetReportDocument,
  type FleetReportInput,
} from '../../src/report/html/fleet-data.js';
import { CONTENT_SECURITY_POLICY } from '../../src/report/html/page.js';
import { runInProcess } from '../support/cli.js';
import { smallInventory } from '../support/fleet-records.js';

const inventory = smallInventory();

const dir = mkdtempSync(join(tmpdir(), 'imdsguard-report-html-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function input(over: Partial<FleetReportInput> = {}): FleetReportInput {
  const summary = summarize(inventory);
  return {
    inventory,
    summary,
    findings: findFindings(inventory),
    readiness: null,
    history: [],
    source: 'input',
    now: '2026-01-02T00:00:00.000Z',
    ...over,
  };
}

function snapshot(time: string, instances: number, enforced: number): FleetSnapshot {
  return {
    schemaVersion: 1,
    time,
    source: 'fleet discover',
    failures: 0,
    overall: {
      instances,
      tokensRequired: enforced,
      tokensOptional: instances - enforced,
      endpointDisabled: 0,
      percentEnforced: Math.round((enforced / instances) * 1000) / 10,
    },
    byAccount: [],
    byRegion: [],
    findings: { high: 0, medium: 0, low: 0, info: 0 },
    readiness: null,
  };
}

/** The text content of the element with this data-testid (the renderer writes no nested tags there). */
function testid(html: string, id: string): string {
  const m = new RegExp(`data-testid="${id}"[^>]*>([^<]*)<`).exec(html);
  if (!m) throw new Error(`no data-testid="${id}"`);
  return m[1] as string;
}

describe('escaping', () => {
  it('esc escapes the five HTML metacharacters and renders null as empty', () => {
    expect(esc(`<a href="x" onclick='y'>&`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;');
    expect(esc(null)).toBe('');
    expect(esc(42)).toBe('42');
  });

  it('jsonForScript cannot close the script element and parses back to the same value', () => {
    const v = {
      a: '</script><script>alert(1)</script>',
      b: '<!-- x -->',
      c: 'line\u2028sep\u2029',
      d: 'a&b',
    };
    const s = jsonForScript(v);
    expect(s).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(s)).toEqual(v);
  });
});

describe('buildFleetReport', () => {
  it('carries the posture summary, the findings and the readiness counts of its input', () => {
    const i = input();
    const doc = buildFleetReport(i);
    const o = i.summary.overall;
    expect(doc.overview).toMatchObject({
      instances: o.instances,
      enforced: o.tokensRequired,
      v1Allowed: o.tokensOptional,
      disabled: o.endpointDisabled,
      v1WithProfile: o.imdsV1WithProfile,
      percentEnforced: o.percent.tokensRequired,
      accounts: 2,
      regions: 1,
      findings: i.findings.length,
    });
    expect(doc.byAccount.map((a) => [a.accountId, a.name, a.instances])).toEqual(
      i.summary.byAccount.map((a) => [
        a.accountId,
        inventory.accounts.find((x) => x.accountId === a.accountId)?.name,
        a.instances,
      ]),
    );
    expect(doc.readiness.total).toBe(o.instances);
    expect(doc.readiness.counts.enforced).toBe(o.tokensRequired);
    expect(doc.readiness.counts.disabled).toBe(o.endpointDisabled);
    expect(doc.readiness.counts.unknown).toBe(o.tokensOptional);
    expect(doc.readiness.measured).toBe(false);
    expect(doc.readiness.percent.enforced).toBe(
      Math.round((doc.readiness.counts.enforced / doc.readiness.total) * 1000) / 10,
    );
    expect(doc.trend.at(-1)?.percentV1Allowed).toBe(o.percent.tokensOptional);
    // Every regression finding is in exactly one category.
    const regressionIds = new Set([
      'template-default-imdsv1',
      'template-latest-imdsv1',
      'asg-launches-imdsv1',
      'launch-config-imdsv1',
      'account-default-imdsv1',
      'image-no-imdsv2-support',
    ]);
    expect(doc.overview.regressionSources).toBe(i.findings.filter((f) => regressionIds.has(f.id)).length);
    expect(doc.overview.regressionSources).toBeGreaterThan(0);
    // Findings: high first.
    const ranks = doc.findings.map((f) => ['high', 'medium', 'low', 'info'].indexOf(f.severity));
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  });

  it('draws the trend from the history and adds the current scan once, in time order', () => {
    const history = [
      snapshot('2025-12-18T00:00:00.000Z', 10, 2),
      snapshot('2025-12-25T00:00:00.000Z', 10, 4),
    ];
    const doc = buildFleetReport(input({ history }));
    expect(doc.trend.map((p) => p.time)).toEqual([
      '2025-12-18T00:00:00.000Z',
      '2025-12-25T00:00:00.000Z',
      inventory.generatedAt,
    ]);
    expect(doc.trend.map((p) => p.current)).toEqual([false, false, true]);
    // When the history already holds this scan (fleet discover recorded it), it is not added again.
    const recorded = snapshot(inventory.generatedAt, doc.overview.instances, doc.overview.enforced);
    const again = buildFleetReport(input({ history: [...history, recorded, recorded] }));
    expect(again.trend).toHaveLength(3);
    expect(again.trend[2]?.current).toBe(true);
  });

  it('lists at most maxFindings findings and counts the rest', () => {
    const base = findFindings(inventory);
    const many = Array.from({ length: FLEET_REPORT_LIMITS.maxFindings + 7 }, (_, k) => ({
      ...(base[k % base.length] as (typeof base)[number]),
      resourceId: `r-${k}`,
    }));
    const doc = buildFleetReport(input({ findings: many }));
    expect(doc.findings).toHaveLength(FLEET_REPORT_LIMITS.maxFindings);
    expect(doc.findingsOmitted).toBe(7);
    expect(doc.overview.findings).toBe(many.length);
  });
});

describe('renderFleetHtml', () => {
  const doc = buildFleetReport(input({ history: [snapshot('2025-12-25T00:00:00.000Z', 10, 4)] }));
  const html = renderFleetHtml(doc);

  it('shows the document numbers server-side, so they are right without JavaScript', () => {
    expect(testid(html, 'overview-instances')).toBe(String(doc.overview.instances));
    expect(testid(html, 'overview-percent-enforced')).toBe(`${doc.overview.percentEnforced.toFixed(1)}%`);
    expect(testid(html, 'overview-v1-allowed')).toBe(String(doc.overview.v1Allowed));
    for (const a of doc.byAccount) {
      expect(testid(html, `account-pct-${a.accountId}`)).toBe(`${a.percentEnforced.toFixed(1)}%`);
      expect(testid(html, `account-chart-pct-${a.accountId}`)).toBe(
        a.instances === 0 ? 'no instances' : `${a.percentEnforced.toFixed(1)}% enforced`,
      );
    }
    expect(testid(html, 'readiness-unknown')).toBe(String(doc.readiness.counts.unknown));
    expect(testid(html, 'trend-points')).toBe('2');
    expect(html.match(/data-testid="finding-row"/g)?.length).toBe(doc.findings.length);
  });

  it('embeds the document as JSON that parses back to it', () => {
    const m = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html);
    expect(JSON.parse(m?.[1] ?? 'null')).toEqual(doc);
  });

  it('loads nothing from outside: no src, no external href, no url(), and a CSP that allows only its own script', () => {
    expect(html).not.toMatch(/\ssrc=/i);
    expect(html).not.toMatch(/@import|url\(/i);
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    expect(hrefs.every((h) => h?.startsWith('data:'))).toBe(true);
    expect(html).toContain(
      `<meta http-equiv="Content-Security-Policy" content="${esc(CONTENT_SECURITY_POLICY)}">`,
    );
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] as string);
    expect(scripts).toHaveLength(1);
    const hash = createHash('sha256')
      .update(scripts[0] as string)
      .digest('base64');
    expect(CONTENT_SECURITY_POLICY).toContain(`'sha256-${hash}'`);
  });

  it('escapes hostile values from the inventory', () => {
    const evil = '<img src=x onerror=alert(1)>';
    const bad = buildFleetReport(
      input({
        inventory: { ...inventory, accounts: inventory.accounts.map((a) => ({ ...a, name: evil })) },
        findings: findFindings(inventory).map((f) => ({ ...f, message: `${f.message} </script>${evil}` })),
      }),
    );
    const out = renderFleetHtml(bad);
    expect(out).not.toContain(evil);
    expect(out).toContain(esc(evil));
    expect(out.match(/<\/script>/g)?.length).toBe(2);
  });
});

describe('fleet report --input (in-process CLI)', () => {
  const discover = {
    kind: 'imdsguard.fleet.discover',
    ...inventory,
    summary: summarize(inventory),
    findings: findFindings(inventory),
  };
  const file = join(dir, 'discover.json');
  writeFileSync(file, JSON.stringify(discover));

  // In-process, over a fleet report with history: seconds when loaded.
  it('writes the JSON document and the HTML page with the same numbers; --no-history reads no history', async () => {
    const j = await runInProcess(['fleet', 'report', '--input', file, '--format', 'json', '--no-history']);
    expect(j.stderr).toBe('');
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as FleetReportDocument;
    expect(doc.kind).toBe('imdsguard.fleet.report');
    expect(doc.source).toBe('input');
    expect(doc.trend).toHaveLength(1);
    const out = join(dir, 'r.html');
    const h = await runInProcess(['fleet', 'report', '--input', file, '--output', out, '--no-history']);
    expect(h.code).toBe(0);
    expect(h.stdout).toBe('');
    const html = readFileSync(out, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(testid(html, 'overview-instances')).toBe(String(doc.overview.instances));
    expect(testid(html, 'overview-findings')).toBe(String(doc.overview.findings));
  }, 60_000);

  it('reads the trend from --history without writing to it', async () => {
    const { HistoryStore } = await import('../../src/fleet/history/store.js');
    const path = join(dir, 'h.db');
    const s = new HistoryStore({ path });
    s.add(snapshot('2025-12-01T00:00:00.000Z', 8, 1));
    s.close();
    const j = await runInProcess(['fleet', 'report', '--input', file, '--format', 'json', '--history', path]);
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as FleetReportDocument;
    expect(doc.trend.map((p) => p.enforced)).toEqual([1, doc.overview.enforced]);
    const again = new HistoryStore({ path, readonly: true });
    expect(again.count()).toBe(1);
    again.close();
  });

  it('refuses a file that is not a discover document, --usage with --input, and an unknown format', async () => {
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ kind: 'imdsguard.fleet.roles', schemaVersion: 1 }));
    const a = await runInProcess(['fleet', 'report', '--input', other, '--no-history']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('IMDSGUARD_E_CONFIG_READ');
    const missing = await runInProcess([
      'fleet',
      'report',
      '--input',
      join(dir, 'nope.json'),
      '--no-history',
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('IMDSGUARD_E_CONFIG_READ');
    const b = await runInProcess(['fleet', 'report', '--input', file, '--usage', '--no-history']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('IMDSGUARD_E_USAGE');
    const c = await runInProcess(['fleet', 'report', '--input', file, '--format', 'csv', '--no-history']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('--format');
  });
});
