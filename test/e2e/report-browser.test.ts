/**
 * The reports in a real browser: Debian's /usr/bin/chromium driven by playwright-core opens the HTML
 * files that the real CLI binary (dist/cli/main.js) wrote, and the test checks that
 *   - every number on the page (read from the DOM by data-testid) equals the --format json output
 *     of the same data, and the embedded JSON equals it too;
 *   - the console shows no error and the page throws none;
 *   - the page makes no network request (only its own file:// URL and data: URIs);
 *   - the findings table sorts on a header click and filters as one types;
 *   - a full-page screenshot is kept in test-artifacts/.
 * Fleet data: fake-aws (seeded fleet + CloudWatch metrics), two `fleet discover` runs recorded in a
 * history file with a change in between. Host data: an event store populated with guard events.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HistoryStore } from '../../src/fleet/history/store.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { SqliteEventStore } from '../../src/guard/store/index.js';
import type { FleetReportDocument } from '../../src/report/html/fleet-data.js';
import type { HostReportDocument } from '../../src/report/html/host-data.js';
import { type CliRun, emptyAwsConfig, requireBuild, runBin } from '../support/bin.js';
import { seedUsage } from '../support/fake-aws/cloudwatch.js';
import { allInstances, type FakeAws, startFakeAws } from '../support/fake-aws/index.js';
import { makeEvent } from '../support/guard-events.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) {
  console.warn(`report-browser: ${CHROMIUM} is absent (apt-get install chromium); browser tests skipped`);
}
const ARTIFACTS = resolve('test-artifacts');
const REGIONS = ['eu-west-1', 'us-east-1'];
const DAY = 86_400_000;

let aws: FakeAws;
let dir: string;
let env: Record<string, string>;
let browser: Browser;

function run(args: string[]): Promise<CliRun> {
  return runBin(args, { env });
}

const int = (n: number) => n.toLocaleString('en-US');
const pct = (p: number) => `${p.toFixed(1)}%`;
const slug = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_');

interface Opened {
  page: Page;
  consoleErrors: string[];
  pageErrors: string[];
  requests: string[];
  dialogs: string[];
}

async function open(file: string): Promise<Opened> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const o: Opened = { page, consoleErrors: [], pageErrors: [], requests: [], dialogs: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') o.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => o.pageErrors.push(e.message));
  page.on('request', (r) => o.requests.push(r.url()));
  page.on('dialog', (d) => {
    o.dialogs.push(d.message());
    void d.dismiss();
  });
  const url = pathToFileURL(file).href;
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('html[data-ready="1"]', { timeout: 10_000 });
  return o;
}

function expectClean(o: Opened, file: string): void {
  expect(o.consoleErrors).toEqual([]);
  expect(o.pageErrors).toEqual([]);
  expect(o.dialogs).toEqual([]);
  const url = pathToFileURL(file).href;
  expect(o.requests.filter((r) => r !== url && !r.startsWith('data:'))).toEqual([]);
}

async function text(page: Page, testid: string): Promise<string> {
  const el = page.locator(`[data-testid="${testid}"]`);
  expect(await el.count(), `one element with data-testid=${testid}`).toBe(1);
  return ((await el.textContent()) ?? '').trim();
}

async function embedded<T>(page: Page): Promise<T> {
  return JSON.parse((await page.locator('script#report-data').textContent()) ?? 'null') as T;
}

function withoutGeneratedAt<T extends { generatedAt: string }>(d: T): Omit<T, 'generatedAt'> {
  const { generatedAt: _g, ...rest } = d;
  return rest;
}

beforeAll(async () => {
  if (!HAVE_CHROMIUM) return;
  requireBuild();
  mkdirSync(ARTIFACTS, { recursive: true });
  aws = await startFakeAws({
    generate: { accounts: 2, regions: REGIONS, instancesPerRegion: 60, seed: 2026, requiredShare: 0.3 },
  });
  const now = Date.now();
  let k = 0;
  seedUsage(aws.fleet, (e) => {
    k += 1;
    const from = now - 40 * DAY;
    if (e.instance.metadataOptions.httpTokens === 'required') {
      return k % 9 === 0
        ? {
            kind: 'rejected',
            fromMs: from,
            toMs: now,
            rejectedFromMs: now - 2 * DAY,
            rejectedToMs: now - DAY,
            perSample: 1,
          }
        : { kind: 'quiet', fromMs: from, toMs: now };
    }
    if (k % 3 === 0) {
      return {
        kind: 'v1',
        fromMs: from,
        toMs: now,
        callsFromMs: now - 5 * DAY,
        callsToMs: now - 4 * DAY,
        perSample: 3,
      };
    }
    return k % 5 === 0 ? { kind: 'none' } : { kind: 'quiet', fromMs: from, toMs: now };
  });
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-report-e2e-'));
  env = emptyAwsConfig(dir);
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await aws?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function scope(): string[] {
  const accounts = [...aws.fleet.accounts.keys()];
  return [
    '--endpoint-url',
    aws.url,
    '--regions',
    REGIONS.join(','),
    '--accounts',
    accounts.join(','),
    '--role',
    'ImdsguardAudit',
  ];
}

describe.skipIf(!HAVE_CHROMIUM)('fleet report in headless Chromium', () => {
  let history: string;
  let doc: FleetReportDocument;
  let htmlFile: string;

  beforeAll(async () => {
    history = join(dir, 'history.db');
    // Six weekly scans from before (as earlier `fleet discover` runs would have left them).
    const seeded = new HistoryStore({ path: history });
    for (let w = 6; w >= 1; w--) {
      const instances = 200 + w;
      const enforced = 30 + (6 - w) * 7;
      const disabled = 5;
      const counts = (n: number, e: number) => ({
        instances: n,
        tokensRequired: e,
        tokensOptional: n - e - disabled,
        endpointDisabled: disabled,
        percentEnforced: Math.round((e / n) * 1000) / 10,
      });
      seeded.add({
        schemaVersion: 1,
        time: new Date(Date.now() - w * 7 * DAY).toISOString(),
        source: 'seeded',
        failures: 0,
        overall: counts(instances, enforced),
        byAccount: [],
        byRegion: [],
        findings: { high: 80, medium: 50, low: 10, info: 30 },
        readiness: null,
      });
    }
    seeded.close();
    // Scan 1, then harden some instances in the fake fleet, then scan 2: two points of history.
    const d1 = await run([
      'fleet',
      'discover',
      ...scope(),
      '--format',
      'json',
      '--output',
      join(dir, 'd1.json'),
      '--history',
      history,
      '--fail-on',
      'none',
    ]);
    expect(d1.stderr).toBe('');
    expect(d1.code).toBe(0);
    let changed = 0;
    for (const e of allInstances(aws.fleet)) {
      if (e.instance.metadataOptions.httpTokens === 'optional' && changed < 40) {
        e.instance.metadataOptions.httpTokens = 'required';
        changed += 1;
      }
    }
    const d2 = await run([
      'fleet',
      'discover',
      ...scope(),
      '--format',
      'json',
      '--output',
      join(dir, 'd2.json'),
      '--history',
      history,
      '--fail-on',
      'none',
    ]);
    expect(d2.code).toBe(0);
    const usage = await run([
      'fleet',
      'usage',
      ...scope(),
      '--format',
      'json',
      '--output',
      join(dir, 'u.json'),
    ]);
    expect(usage.stderr).toBe('');
    const common = [
      'fleet',
      'report',
      '--input',
      join(dir, 'd2.json'),
      '--usage-input',
      join(dir, 'u.json'),
      '--history',
      history,
    ];
    const j = await run([...common, '--format', 'json', '--output', join(dir, 'report.json')]);
    expect(j.stderr).toBe('');
    expect(j.code).toBe(0);
    htmlFile = join(dir, 'report.html');
    const h = await run([...common, '--format', 'html', '--output', htmlFile]);
    expect(h.stderr).toBe('');
    expect(h.code).toBe(0);
    doc = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as FleetReportDocument;
  }, 180_000);

  it('the JSON report carries the scan, the readiness from usage, and the trend of every recorded scan', () => {
    const discover = JSON.parse(readFileSync(join(dir, 'd2.json'), 'utf8')) as {
      summary: { overall: { instances: number; tokensRequired: number; tokensOptional: number } };
      findings: unknown[];
    };
    const usage = JSON.parse(readFileSync(join(dir, 'u.json'), 'utf8')) as { counts: Record<string, number> };
    expect(doc.kind).toBe('imdsguard.fleet.report');
    expect(doc.overview.instances).toBe(discover.summary.overall.instances);
    expect(doc.overview.enforced).toBe(discover.summary.overall.tokensRequired);
    expect(doc.overview.v1Allowed).toBe(discover.summary.overall.tokensOptional);
    expect(doc.overview.findings).toBe(discover.findings.length);
    expect(doc.readiness.measured).toBe(true);
    expect(doc.readiness.counts).toEqual(usage.counts);
    expect(doc.readiness.counts['not-ready']).toBeGreaterThan(0);
    expect(doc.trend).toHaveLength(8);
    expect(doc.trend.slice(0, 6).map((p) => p.enforced)).toEqual([30, 37, 44, 51, 58, 65]);
    expect((doc.trend[7]?.enforced ?? 0) - (doc.trend[6]?.enforced ?? 0)).toBe(40);
    expect(doc.trend[7]?.current).toBe(true);
    expect(doc.overview.regressionSources).toBeGreaterThan(0);
  });

  it('every number on the page equals the JSON output; no console error, no network request', async () => {
    const o = await open(htmlFile);
    const { page } = o;
    const ov = doc.overview;
    expect(await text(page, 'overview-instances')).toBe(int(ov.instances));
    expect(await text(page, 'overview-percent-enforced')).toBe(pct(ov.percentEnforced));
    expect(await text(page, 'overview-enforced')).toBe(String(ov.enforced));
    expect(await text(page, 'overview-v1-allowed')).toBe(int(ov.v1Allowed));
    expect(await text(page, 'overview-v1-with-profile')).toBe(int(ov.v1WithProfile));
    expect(await text(page, 'overview-disabled')).toBe(int(ov.disabled));
    expect(await text(page, 'overview-findings')).toBe(int(ov.findings));
    expect(await text(page, 'overview-findings-high')).toBe(String(ov.findingsBySeverity.high));
    expect(await text(page, 'overview-regression-sources')).toBe(int(ov.regressionSources));
    expect(await text(page, 'overview-accounts')).toBe(String(ov.accounts));
    expect(await text(page, 'overview-regions')).toBe(String(ov.regions));
    expect(doc.byAccount).toHaveLength(2);
    for (const a of doc.byAccount) {
      const k = slug(a.accountId);
      expect(await text(page, `account-instances-${k}`)).toBe(int(a.instances));
      expect(await text(page, `account-enforced-${k}`)).toBe(int(a.enforced));
      expect(await text(page, `account-v1-${k}`)).toBe(int(a.v1Allowed));
      expect(await text(page, `account-pct-${k}`)).toBe(pct(a.percentEnforced));
      expect(await text(page, `account-chart-pct-${k}`)).toBe(`${pct(a.percentEnforced)} enforced`);
    }
    expect(doc.byRegion.map((r) => r.region)).toEqual(REGIONS);
    for (const r of doc.byRegion) {
      const k = slug(r.region);
      expect(await text(page, `region-instances-${k}`)).toBe(int(r.instances));
      expect(await text(page, `region-pct-${k}`)).toBe(pct(r.percentEnforced));
      expect(await text(page, `region-chart-pct-${k}`)).toBe(`${pct(r.percentEnforced)} enforced`);
    }
    for (const [state, n] of Object.entries(doc.readiness.counts)) {
      expect(await text(page, `readiness-${state}`)).toBe(int(n));
      expect(await text(page, `readiness-pct-${state}`)).toBe(
        pct(doc.readiness.percent[state as keyof typeof doc.readiness.percent]),
      );
    }
    expect(await text(page, 'readiness-total')).toBe(int(doc.readiness.total));
    for (const c of doc.regressionSources) {
      expect(await text(page, `regression-${c.key}`)).toBe(int(c.count));
    }
    expect(await text(page, 'trend-points')).toBe(String(doc.trend.length));
    expect(await text(page, 'findings-total')).toBe(int(doc.overview.findings));
    expect(await page.locator('tr[data-testid="finding-row"]').count()).toBe(doc.findings.length);
    expect(await text(page, 'findings-shown')).toBe(`${doc.findings.length} of ${doc.findings.length} shown`);
    // The embedded data is the JSON output (made by another run: only generatedAt differs).
    expect(withoutGeneratedAt(await embedded<FleetReportDocument>(page))).toEqual(withoutGeneratedAt(doc));
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-report.png'), fullPage: true });
    await page.emulateMedia({ media: 'print' });
    await page.screenshot({
      path: join(ARTIFACTS, 'fleet-report-print.png'),
      clip: { x: 0, y: 0, width: 1280, height: 1600 },
    });
    await page.pdf({ path: join(ARTIFACTS, 'fleet-report.pdf'), format: 'A4', printBackground: true });
    await page.emulateMedia({ media: 'screen' });
    await page.setViewportSize({ width: 420, height: 900 });
    await page.locator('#by-account').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-report-narrow.png'), fullPage: false });
    expectClean(o, htmlFile);
    await page.close();
  }, 120_000);

  it('shows the same numbers with JavaScript switched off', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(htmlFile).href, { waitUntil: 'load' });
    expect(await page.locator('html').getAttribute('data-ready')).toBeNull();
    expect(await text(page, 'overview-instances')).toBe(int(doc.overview.instances));
    expect(await text(page, 'overview-percent-enforced')).toBe(pct(doc.overview.percentEnforced));
    expect(await text(page, 'readiness-total')).toBe(int(doc.readiness.total));
    expect(await page.locator('tr[data-testid="finding-row"]').count()).toBe(doc.findings.length);
    expect(errors).toEqual([]);
    await context.close();
  }, 120_000);

  it('the findings table sorts on a header click and filters as one types', async () => {
    const o = await open(htmlFile);
    const { page } = o;
    const rows = page.locator('#findings-table tbody tr');
    const column = async (n: number) =>
      (await rows.evaluateAll(
        (trs, col) =>
          trs
            .filter((tr) => !(tr as unknown as { hidden: boolean }).hidden)
            .map((tr) =>
              (
                (tr as unknown as { cells: ArrayLike<{ textContent: string | null }> }).cells[col as number]
                  ?.textContent ?? ''
              ).trim(),
            ),
        n,
      )) as string[];
    // Resource column (2): ascending, then descending.
    await page.locator('#findings-table th[data-key="resource"]').click();
    const asc = await column(2);
    expect(asc).toEqual([...asc].sort((a, b) => a.localeCompare(b)));
    expect(await page.locator('#findings-table th[data-key="resource"]').getAttribute('aria-sort')).toBe(
      'ascending',
    );
    await page.locator('#findings-table th[data-key="resource"]').click();
    const desc = await column(2);
    expect(desc).toEqual([...asc].reverse());
    // Severity sorts by rank, not alphabetically: high first.
    await page.locator('#findings-table th[data-key="severity"]').click();
    const sev = await column(0);
    const rank = { high: 0, medium: 1, low: 2, info: 3 } as Record<string, number>;
    expect(sev.map((s) => rank[s])).toEqual([...sev.map((s) => rank[s] as number)].sort((a, b) => a - b));
    expect(sev[0]).toBe('high');
    // Type a filter: one instance id.
    const target = doc.findings.find((f) => f.resourceType === 'instance');
    expect(target).toBeDefined();
    const id = target?.resourceId ?? '';
    await page.locator('[data-testid="findings-filter"]').fill(id);
    const shown = await column(2);
    const expected = doc.findings.filter((f) =>
      [f.severity, f.id, f.resourceId, f.resourceType, f.accountId, f.region, f.message]
        .join(' ')
        .toLowerCase()
        .includes(id.toLowerCase()),
    ).length;
    expect(shown.length).toBe(expected);
    expect(shown.every((s) => s === id)).toBe(true);
    expect(await text(page, 'findings-shown')).toBe(`${expected} of ${doc.findings.length} shown`);
    // Clear it and filter by severity.
    await page.locator('[data-testid="findings-filter"]').fill('');
    await page.locator('[data-testid="findings-severity"]').selectOption('medium');
    const medium = await column(0);
    expect(medium.length).toBe(doc.findings.filter((f) => f.severity === 'medium').length);
    expect(new Set(medium)).toEqual(new Set(['medium']));
    expectClean(o, htmlFile);
    await page.close();
  }, 120_000);

  it('a live fleet report scans, measures usage, records the scan, and draws it as the newest point', async () => {
    const live = join(dir, 'live.json');
    const r = await run([
      'fleet',
      'report',
      ...scope(),
      '--usage',
      '--history',
      history,
      '--format',
      'json',
      '--output',
      live,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const d = JSON.parse(readFileSync(live, 'utf8')) as FleetReportDocument;
    expect(d.source).toBe('discovery');
    expect(d.readiness.measured).toBe(true);
    expect(d.readiness.counts).toEqual(doc.readiness.counts);
    expect(d.overview).toEqual(doc.overview);
    expect(d.trend).toHaveLength(9);
    expect(d.trend[8]?.current).toBe(true);
    const store = new HistoryStore({ path: history, readonly: true });
    try {
      const snaps = store.list();
      expect(snaps.map((s) => s.source)).toEqual([
        ...Array(6).fill('seeded'),
        'fleet discover',
        'fleet discover',
        'fleet report',
      ]);
      expect(snaps[8]?.readiness).toEqual(d.readiness.counts);
      expect(snaps[8]?.overall.instances).toBe(d.overview.instances);
    } finally {
      store.close();
    }
    // The same run as HTML opens cleanly and shows its numbers.
    const htmlLive = join(dir, 'live.html');
    const h = await run(['fleet', 'report', ...scope(), '--usage', '--no-history', '--output', htmlLive]);
    expect(h.code).toBe(0);
    const o = await open(htmlLive);
    expect(await text(o.page, 'overview-instances')).toBe(int(d.overview.instances));
    expect(await text(o.page, 'readiness-ready')).toBe(int(d.readiness.counts.ready));
    expectClean(o, htmlLive);
    await o.page.close();
  }, 120_000);
});

describe.skipIf(!HAVE_CHROMIUM)('imdsguard report (host) in headless Chromium', () => {
  let doc: HostReportDocument;
  let htmlFile: string;
  let events: GuardEvent[];

  beforeAll(async () => {
    const db = join(dir, 'events.db');
    const now = Date.now();
    const ago = (ms: number) => new Date(now - ms).toISOString();
    events = [];
    // 6 hours of traffic: an IMDSv2 agent, an IMDSv1 script that is refused, an allowed v1 caller,
    // a hostile request with markup in its path, and one event older than the window.
    for (let h = 0; h < 6; h++) {
      for (let k = 0; k < 5; k++) {
        events.push(
          makeEvent({
            time: ago(h * 3_600_000 + k * 60_000 + 1000),
            decision: 'allow',
            action: 'forwarded',
            rule: 'imdsv2',
            alert: false,
            status: 200,
            request: {
              method: 'GET',
              path: '/latest/meta-data/instance-id',
              version: 'v2',
              userAgent: 'aws-sdk-js/3',
            },
            caller: { resolved: 'full', pid: 100, exe: '/usr/bin/node', user: 'app', uid: 1000 },
          }),
        );
      }
      events.push(
        makeEvent({
          time: ago(h * 3_600_000 + 30_000),
          decision: 'allow',
          action: 'forwarded',
          rule: 'token',
          alert: false,
          status: 200,
          request: { method: 'PUT', path: '/latest/api/token', version: 'token' },
          caller: { resolved: 'full', pid: 100, exe: '/usr/bin/node', user: 'app', uid: 1000 },
        }),
      );
      events.push(makeEvent({ time: ago(h * 3_600_000 + 90_000) }));
      if (h % 2 === 0) {
        events.push(
          makeEvent({
            time: ago(h * 3_600_000 + 120_000),
            decision: 'allow',
            action: 'forwarded',
            rule: 'ua-allowlist',
            alert: false,
            status: 200,
            request: {
              path: '/latest/meta-data/placement/region',
              version: 'v1',
              userAgent: 'legacy-agent/1.0',
            },
            caller: { resolved: 'full', pid: 300, exe: '/opt/legacy/agent', user: 'root', uid: 0 },
          }),
        );
      }
    }
    events.push(
      makeEvent({
        time: ago(10 * 60_000),
        rule: 'forwarding-header',
        reason: 'request carried X-Forwarded-For <b>',
        request: { path: '/latest/meta-data/<script>alert(1)</script>', version: 'v1' },
        caller: { resolved: 'partial', uid: 33, user: 'www-data' },
      }),
    );
    events.push(makeEvent({ time: ago(9 * DAY) }));
    const store = new SqliteEventStore({ path: db });
    await store.insert(events);
    await store.close();
    const common = ['report', '--db', db, '--since', '24h'];
    const j = await run([...common, '--format', 'json', '--output', join(dir, 'host.json')]);
    expect(j.stderr).toBe('');
    expect(j.code).toBe(0);
    htmlFile = join(dir, 'host.html');
    const h = await run([...common, '--output', htmlFile]);
    expect(h.stderr).toBe('');
    expect(h.code).toBe(0);
    doc = JSON.parse(readFileSync(join(dir, 'host.json'), 'utf8')) as HostReportDocument;
  }, 120_000);

  it('the JSON report counts the window: decisions, callers, v1 callers, denied and alerted', () => {
    const inWindow = events.filter((e) => Date.parse(e.time) >= Date.now() - DAY);
    expect(doc.kind).toBe('imdsguard.host.report');
    expect(doc.totals.events).toBe(inWindow.length);
    expect(doc.totals.denied).toBe(inWindow.filter((e) => e.decision === 'deny').length);
    expect(doc.totals.v1).toBe(inWindow.filter((e) => e.request.version === 'v1').length);
    expect(doc.v1Callers.map((c) => c.exe ?? null).sort()).toEqual(
      ['/opt/legacy/agent', '/usr/bin/curl', null].sort(),
    );
    expect(doc.requests.total).toBe(inWindow.filter((e) => e.decision === 'deny' || e.alert).length);
    const buckets = doc.timeline.buckets.reduce((n, b) => n + b.allow + b.deny, 0);
    expect(buckets).toBe(inWindow.length);
    const html = readFileSync(htmlFile, 'utf8');
    expect(html).not.toContain('SECRET-ARGV-VALUE');
    expect(html).not.toContain('<script>alert(1)</script>');
  });

  it('every number on the page equals the JSON output; no console error, no network request', async () => {
    const o = await open(htmlFile);
    const { page } = o;
    const t = doc.totals;
    expect(await text(page, 'host-events')).toBe(int(t.events));
    expect(await text(page, 'host-allowed')).toBe(int(t.allowed));
    expect(await text(page, 'host-denied')).toBe(int(t.denied));
    expect(await text(page, 'host-alerted')).toBe(int(t.alerted));
    expect(await text(page, 'host-v1')).toBe(int(t.v1));
    expect(await text(page, 'host-v2')).toBe(int(t.v2));
    expect(await text(page, 'host-callers')).toBe(int(t.callers));
    expect(await text(page, 'host-v1-callers')).toBe(int(t.v1Callers));
    expect(await text(page, 'requests-total')).toBe(int(doc.requests.total));
    expect(await page.locator('tr[data-testid="request-row"]').count()).toBe(doc.requests.rows.length);
    const v1 = await page.locator('[data-testid="v1-caller-v1"]').allTextContents();
    expect(v1).toEqual(doc.v1Callers.map((c) => int(c.v1)));
    const totals = await page.locator('[data-testid="top-caller-total"]').allTextContents();
    expect(totals).toEqual(doc.topCallers.map((c) => int(c.total)));
    // The markup in the hostile path is text on the page, not an element.
    expect(await page.locator('#requests-table').textContent()).toContain('<script>alert(1)</script>');
    expect(await page.locator('#requests-table script').count()).toBe(0);
    expect(await page.locator('svg.chart rect').count()).toBeGreaterThan(0);
    // The embedded data is the JSON output (made by another run a moment apart: only the times of
    // the window, and so the bucket edges, may differ).
    const emb = await embedded<HostReportDocument>(page);
    const comparable = (d: HostReportDocument) => ({
      ...withoutGeneratedAt(d),
      window: null,
      timeline: d.timeline.buckets.reduce((n, b) => n + b.allow + b.deny, 0),
    });
    expect(comparable(emb)).toEqual(comparable(doc));
    // Filter the requests to one executable.
    await page.locator('[data-testid="requests-filter"]').fill('/usr/bin/curl');
    const shownCurl = doc.requests.rows.filter((r) => r.exe === '/usr/bin/curl').length;
    expect(await text(page, 'requests-shown')).toBe(`${shownCurl} of ${doc.requests.rows.length} shown`);
    await page.locator('[data-testid="requests-filter"]').fill('');
    await page.screenshot({ path: join(ARTIFACTS, 'host-report.png'), fullPage: true });
    expectClean(o, htmlFile);
    await page.close();
  }, 120_000);
});
