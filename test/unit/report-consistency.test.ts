/**
 * Reports never contradict themselves: each number has one definition used by every output, what
 * could not be read is shown as unknown (never 0 and healthy), and "Latest scans" is ordered newest
 * first with this report's own scan labelled, whatever the history holds.
 */
import { describe, expect, it } from 'vitest';
import type { FleetSnapshot } from '../../src/fleet/history/snapshot.js';
import type { InstanceRecord, Inventory, RegionScan } from '../../src/fleet/inventory/model.js';
import { findFindings } from '../../src/fleet/posture/findings.js';
import type { KeyedReadiness } from '../../src/fleet/posture/readiness.js';
import { summarize } from '../../src/fleet/posture/summary.js';
import { discoverDocument, renderDiscover } from '../../src/report/fleet.js';
import { renderFleetHtml } from '../../src/report/html/fleet.js';
import { buildFleetReport, FLEET_REPORT_LIMITS } from '../../src/report/html/fleet-data.js';
import { instanceRecord, tinyRunStats } from '../support/fleet-records.js';

const A = '111111111111';
const B = '222222222222';
const SCANNED = '2026-03-01T12:00:00.000Z';

function scan(accountId: string, region: string, status: RegionScan['status'] = 'ok'): RegionScan {
  return {
    accountId,
    region,
    status,
    instanceCount: 0,
    defaults:
      status === 'ok'
        ? {
            httpTokens: 'required',
            httpPutResponseHopLimit: 2,
            httpEndpoint: null,
            instanceMetadataTags: null,
            httpTokensEnforced: null,
          }
        : null,
    defaultsManagement: status === 'ok' ? { managedBy: 'account', exceptionMessage: null } : null,
    launchTemplates: [],
    autoScalingGroups: [],
    launchConfigurations: [],
    images: [],
  } as RegionScan;
}

let n = 0;
function inst(
  m: Partial<InstanceRecord['metadataOptions']>,
  over: Partial<InstanceRecord> = {},
): InstanceRecord {
  n += 1;
  return instanceRecord({ instanceId: `i-${n.toString(16).padStart(17, '0')}`, m, ...over });
}

/** The fleet of the finding: 12 live instances, 4 tokens required, 2 endpoint disabled, 6 IMDSv1. */
function fleet(): Inventory {
  const instances = [
    ...Array.from({ length: 4 }, () => inst({ httpTokens: 'required' })),
    inst({ httpEndpoint: 'disabled', httpTokens: 'required' }),
    inst({ httpEndpoint: 'disabled', httpTokens: 'optional' }),
    ...Array.from({ length: 6 }, () => inst({ httpTokens: 'optional' })),
    inst({ httpTokens: 'optional' }, { state: 'terminated' }),
  ];
  return {
    schemaVersion: 1,
    generatedAt: SCANNED,
    regions: ['us-east-1'],
    accounts: [{ accountId: A, name: null, access: 'caller', roleArn: null, status: 'ok' }],
    scans: [scan(A, 'us-east-1')],
    instances,
    failures: [],
  } as Inventory;
}

function report(inv: Inventory, readiness: KeyedReadiness[] | null = null, history: FleetSnapshot[] = []) {
  return buildFleetReport({
    inventory: inv,
    summary: summarize(inv),
    findings: findFindings(inv),
    readiness,
    history,
    source: 'input',
    now: '2026-03-02T00:00:00.000Z',
  });
}

function testid(html: string, id: string): string {
  const m = new RegExp(`data-testid="${id}"[^>]*>([^<]*)<`).exec(html);
  if (!m) throw new Error(`no data-testid="${id}"`);
  return m[1] as string;
}

function key(i: InstanceRecord) {
  return { accountId: i.accountId, region: i.region, instanceId: i.instanceId };
}

describe('one definition per number', () => {
  it('IMDSv2 enforced is HttpTokens=required with the endpoint enabled, in the overview and in readiness', () => {
    const inv = fleet();
    const doc = report(inv);
    expect(doc.overview).toMatchObject({ instances: 12, enforced: 4, disabled: 2, v1Allowed: 6 });
    expect(doc.overview.percentEnforced).toBe(33.3);
    // Not "Enforced 6 (50.0%)": the endpoint-disabled instances are their own group.
    expect(doc.readiness.counts).toMatchObject({ enforced: 4, disabled: 2, unknown: 6, broken: 0 });
    expect(doc.readiness.percent.enforced).toBe(33.3);
    const html = renderFleetHtml(doc);
    expect(testid(html, 'overview-percent-enforced')).toBe('33.3%');
    expect(testid(html, 'readiness-enforced')).toBe('4');
    expect(testid(html, 'readiness-pct-enforced')).toBe('33.3%');
    expect(testid(html, 'readiness-disabled')).toBe('2');
    expect(html).toContain('IMDSv2 enforced 4 = 4 with no IMDSv1 call refused + 0 broken');
  });

  it('a measured readiness from another time still partitions the instances the overview counts', () => {
    const inv = fleet();
    const [r1, r2, r3, r4, d1, d2, o1, o2, o3] = inv.instances as InstanceRecord[];
    const measured: KeyedReadiness[] = [
      { ...key(r1 as InstanceRecord), readiness: 'broken' },
      { ...key(r2 as InstanceRecord), readiness: 'ready' }, // stale: it is required now
      { ...key(d1 as InstanceRecord), readiness: 'enforced' }, // an old document's disabled
      { ...key(o1 as InstanceRecord), readiness: 'ready' },
      { ...key(o2 as InstanceRecord), readiness: 'not-ready' },
      { ...key(o3 as InstanceRecord), readiness: 'enforced' }, // stale: it allows IMDSv1 now
      { accountId: B, region: 'us-east-1', instanceId: 'i-0ffffffffffffffff', readiness: 'ready' },
    ];
    void r3;
    void r4;
    void d2;
    const doc = report(inv, measured);
    const c = doc.readiness.counts;
    expect(c).toEqual({ enforced: 3, broken: 1, disabled: 2, ready: 1, 'not-ready': 1, unknown: 4 });
    expect(c.enforced + c.broken).toBe(doc.overview.enforced);
    expect(c.disabled).toBe(doc.overview.disabled);
    expect(c.ready + c['not-ready'] + c.unknown).toBe(doc.overview.v1Allowed);
    expect(doc.readiness.total).toBe(doc.overview.instances);
    expect(doc.readiness.measured).toBe(true);
  });
});

describe('unknown is shown as unknown', () => {
  function partlyRead(): Inventory {
    const inv = fleet();
    inv.regions = ['eu-west-1', 'us-east-1'];
    inv.accounts.push({ accountId: B, name: null, access: 'assumed', roleArn: null, status: 'failed' });
    inv.scans = [
      { ...scan(A, 'us-east-1', 'partial'), defaults: null },
      scan(A, 'eu-west-1'),
      scan(B, 'us-east-1', 'failed'),
      scan(B, 'eu-west-1', 'failed'),
    ];
    inv.failures = [
      {
        accountId: A,
        region: 'us-east-1',
        stage: 'account-defaults',
        code: 'IMDSGUARD_E_AWS_ACCESS',
        awsCode: 'UnauthorizedOperation',
        message: 'not authorized',
        hint: null,
      },
      {
        accountId: B,
        region: null,
        stage: 'assume-role',
        code: 'IMDSGUARD_E_AWS_ASSUME_ROLE',
        awsCode: 'AccessDenied',
        message: 'cannot assume',
        hint: null,
      },
    ] as Inventory['failures'];
    return inv;
  }

  it('account defaults that could not be read are unknown, never "0" and healthy', () => {
    const doc = report(partlyRead());
    const defaults = doc.regressionSources.find((c) => c.key === 'account-defaults');
    // A us-east-1 (denied) and both regions of B (not assumed).
    expect(defaults).toMatchObject({ count: 0, unread: 3 });
    expect(doc.regressionSources.find((c) => c.key === 'images')?.unread).toBe(2);
    const html = renderFleetHtml(doc);
    expect(testid(html, 'regression-account-defaults')).toBe('unknown');
    expect(html).not.toMatch(/class="card good"><div class="label">Account defaults/);
    expect(testid(html, 'overview-regression-sources')).toMatch(/\+$/);
    // With everything readable the same card says 0, and is healthy.
    const clean = renderFleetHtml(report(fleet()));
    expect(testid(clean, 'regression-account-defaults')).toBe('0');
  });

  it("each region's defaults, enforcement and who manages them; unread regions say so", () => {
    const inv = partlyRead();
    const eu = inv.scans[1] as RegionScan;
    inv.scans[1] = {
      ...eu,
      defaults: { ...(eu.defaults as NonNullable<RegionScan['defaults']>), httpTokensEnforced: 'enabled' },
      defaultsManagement: { managedBy: 'declarative-policy', exceptionMessage: 'IMDSv2 only <see go/imds>' },
    };
    const doc = report(inv);
    const row = (account: string, region: string) =>
      doc.regionDefaults.find((r) => r.accountId === account && r.region === region);
    expect(row(A, 'eu-west-1')).toEqual({
      accountId: A,
      region: 'eu-west-1',
      read: true,
      httpTokens: 'required',
      httpTokensEnforced: 'enabled',
      managedBy: 'declarative-policy',
      exceptionMessage: 'IMDSv2 only <see go/imds>',
    });
    expect(row(A, 'us-east-1')).toMatchObject({ read: false, managedBy: null, httpTokensEnforced: null });
    expect(row(B, 'eu-west-1')).toMatchObject({ read: false });
    const html = renderFleetHtml(doc);
    const section = html.slice(
      html.indexOf('id="region-defaults"'),
      html.indexOf('</section>', html.indexOf('id="region-defaults"')),
    );
    expect(section).toContain(
      '<td>enforced</td><td>declarative-policy</td><td>IMDSv2 only &lt;see go/imds&gt;</td>',
    );
    expect(section.match(/not read/g)?.length).toBe(9); // three unread regions x three columns
    const text = renderDiscover(discoverDocument(inv, summarize(inv), [], tinyRunStats()), 'table');
    expect(text).toMatch(/eu-west-1 .*required .*yes .*declarative-policy/);
  });

  it('an account whose scans all failed shows "not read", not 0 instances at 0%', () => {
    const doc = report(partlyRead());
    const b = doc.byAccount.find((a) => a.accountId === B);
    expect(b).toMatchObject({ instances: 0, scansFailed: 2 });
    expect(doc.overview.scansFailed).toBe(2);
    const html = renderFleetHtml(doc);
    expect(testid(html, `account-instances-${B}`)).toBe('not read');
    expect(testid(html, `account-pct-${B}`)).toBe('not read');
    expect(testid(html, `account-instances-${A}`)).toBe('12');
    const text = renderDiscover(
      discoverDocument(partlyRead(), summarize(partlyRead()), [], tinyRunStats()),
      'table',
    );
    expect(text).toContain('2 account/region scan(s) not read');
    const row = text.split('\n').find((l) => l.startsWith(B) && l.includes('eu-west-1'));
    expect(row).toContain('not read');
    expect(row).not.toMatch(/\b0 \(0%\)/);
  });
});

describe('"Latest scans"', () => {
  function snap(time: string, enforced: number, source = 'fleet discover'): FleetSnapshot {
    return {
      schemaVersion: 1,
      time,
      source,
      failures: 0,
      overall: {
        instances: 12,
        tokensRequired: enforced,
        tokensOptional: 12 - enforced,
        endpointDisabled: 0,
        percentEnforced: Math.round((enforced / 12) * 1000) / 10,
      },
      byAccount: [],
      byRegion: [],
      findings: { high: 0, medium: 0, low: 0, info: 0 },
      readiness: null,
    };
  }

  it('newest first, with this report labelled, even when it reports on an older saved scan', () => {
    // 30 scans after this report's (a saved scan from 1 March), recorded out of order.
    const later = Array.from({ length: 30 }, (_, k) =>
      snap(new Date(Date.parse(SCANNED) + (k + 1) * 3_600_000).toISOString(), k % 12),
    ).reverse();
    const doc = report(fleet(), null, later);
    expect(doc.trend.map((p) => p.time)).toEqual([...doc.trend.map((p) => p.time)].sort());
    expect(doc.trend.filter((p) => p.current).map((p) => p.time)).toEqual([SCANNED]);
    const html = renderFleetHtml(doc);
    const rows = [...html.matchAll(/<tr data-testid="latest-scan"( data-current="1")?><td>([^<]*)/g)].map(
      (m) => ({ current: m[1] !== undefined, time: (m[2] as string).trim() }),
    );
    expect(rows).toHaveLength(20);
    const times = rows.map((r) => r.time);
    expect(times).toEqual([...times].sort().reverse());
    expect(rows[0]?.time).toBe('2026-03-02 18:00:00 UTC');
    expect(rows.filter((r) => r.current)).toEqual([{ current: true, time: '2026-03-01 12:00:00 UTC' }]);
    expect(html).toContain('(this report)');
    expect(testid(html, 'latest-scans-heading')).toBe('Latest scans, newest first (20 of 31)');
  });

  it('keeps this report in the trend when the history alone fills it', () => {
    const many = Array.from({ length: FLEET_REPORT_LIMITS.maxTrendPoints + 50 }, (_, k) =>
      snap(new Date(Date.parse(SCANNED) + (k + 1) * 60_000).toISOString(), 5),
    );
    const doc = report(fleet(), null, many);
    expect(doc.trend).toHaveLength(FLEET_REPORT_LIMITS.maxTrendPoints);
    expect(doc.trend[0]).toMatchObject({ time: SCANNED, current: true, source: 'saved scan (--input)' });
    expect(doc.trend.at(-1)?.time).toBe(many.at(-1)?.time);
  });
});
