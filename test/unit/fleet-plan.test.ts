/** PURE: selection (ids, CSV, tags, exclusions, states, filters) and the change planners. */
import { describe, expect, it } from 'vitest';
import { isImdsguardError } from '../../src/errors.js';
import type { InstanceRecord, RegionScan } from '../../src/fleet/inventory/model.js';
import { parseCsvRecords, parseInstanceCsv } from '../../src/fleet/plan/csv.js';
import { planDefaults } from '../../src/fleet/plan/defaults.js';
import { planDisable } from '../../src/fleet/plan/disable.js';
import { planHarden } from '../../src/fleet/plan/harden.js';
import { planHopLimit } from '../../src/fleet/plan/hop-limit.js';
import { planRollback } from '../../src/fleet/plan/rollback.js';
import {
  EMPTY_CRITERIA,
  parseStates,
  parseTagPairs,
  type SelectionCriteria,
  selectInstances,
} from '../../src/fleet/plan/selection.js';
import { planTemplates } from '../../src/fleet/plan/templates.js';
import { countPlan, type InstanceItem } from '../../src/fleet/plan/types.js';
import { instanceRecord } from '../support/fleet-records.js';

let n = 0;
function inst(
  o: Partial<InstanceRecord> & { m?: Partial<InstanceRecord['metadataOptions']> } = {},
): InstanceRecord {
  n += 1;
  return instanceRecord({ instanceId: `i-${n.toString(16).padStart(17, '0')}`, ...o });
}

const crit = (c: Partial<SelectionCriteria>): SelectionCriteria => ({ ...EMPTY_CRITERIA, ...c });

function expectCode(fn: () => unknown, code: string, text: string): void {
  try {
    fn();
  } catch (err) {
    expect(isImdsguardError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message).toContain(text);
    return;
  }
  throw new Error('expected an error');
}

describe('CSV of --input-file', () => {
  it('reads every row of a large file, not only the first', () => {
    const ids = Array.from({ length: 5000 }, (_, k) => `i-${(k + 1).toString(16).padStart(17, '0')}`);
    const refs = parseInstanceCsv(`instance_id\n${ids.join('\n')}\n`, 'big.csv');
    expect(refs).toHaveLength(5000);
    expect(refs.map((r) => r.instanceId)).toEqual(ids);
  });

  it('handles a BOM, CRLF, quoted fields with commas, quotes and newlines, and blank lines', () => {
    const text =
      '\ufeff"Account ID",Region,InstanceId,comment\r\n' +
      '111111111111,us-east-1,i-0123456789abcdef0,"a, b"\r\n' +
      '\r\n' +
      ',,"i-0123456789abcdef1","say ""hi""\nsecond line"\r\n' +
      '   \r\n';
    expect(parseInstanceCsv(text, 'x.csv')).toEqual([
      { instanceId: 'i-0123456789abcdef0', accountId: '111111111111', region: 'us-east-1' },
      { instanceId: 'i-0123456789abcdef1', accountId: null, region: null },
    ]);
    const recs = parseCsvRecords(text);
    expect(recs[2]?.fields[3]).toBe('say "hi"\nsecond line');
  });

  it('a bad row is an error naming the file and its line', () => {
    expectCode(
      () => parseInstanceCsv('instance_id\ni-0123456789abcdef0\n\n\nnope\n', 'sel.csv'),
      'IMDSGUARD_E_INPUT_FILE',
      'sel.csv:5: "nope" is not an instance id',
    );
    expectCode(
      () => parseInstanceCsv('i-0123456789abcdef0\n', 'h.csv'),
      'IMDSGUARD_E_INPUT_FILE',
      'header row is required',
    );
    expectCode(() => parseInstanceCsv('', 'e.csv'), 'IMDSGUARD_E_INPUT_FILE', 'e.csv:1');
    expectCode(
      () => parseInstanceCsv('instance_id\n"i-0123456789abcdef0\n', 'q.csv'),
      'IMDSGUARD_E_INPUT_FILE',
      'q.csv:2: a quoted field is not closed',
    );
    expectCode(
      () => parseInstanceCsv('instance_id,account_id\ni-0123456789abcdef0,12\n', 'a.csv'),
      'IMDSGUARD_E_INPUT_FILE',
      'a.csv:2',
    );
  });

  it('accepts the CSV that fleet discover writes', () => {
    const text = 'account_id,region,instance_id,name\n222222222222,eu-west-1,i-0123456789abcdef0,web\n';
    expect(parseInstanceCsv(text)).toEqual([
      { instanceId: 'i-0123456789abcdef0', accountId: '222222222222', region: 'eu-west-1' },
    ]);
  });
});

describe('selection', () => {
  it('tags require key AND value, every pair', () => {
    const a = inst({ tags: { env: 'prod', team: 'web' } });
    const b = inst({ tags: { env: 'staging', team: 'web' } });
    const c = inst({ tags: { team: 'web' } });
    const sel = selectInstances([a, b, c], crit({ tags: parseTagPairs(['env=prod', 'team=web'], '--tags') }));
    expect(sel.selected.map((s) => s.instance.instanceId)).toEqual([a.instanceId]);
    expect(() => parseTagPairs(['env'], '--tags')).toThrow(/KEY=VALUE/);
    expect(parseTagPairs(['k=a=b'], '--tags')).toEqual([{ key: 'k', value: 'a=b' }]);
  });

  it('exclusions win over ids and tags; terminated and unselected states are skipped with reasons', () => {
    const a = inst({ tags: { env: 'prod' } });
    const b = inst({ tags: { env: 'prod', keep: 'yes' } });
    const c = inst({ tags: { env: 'prod' }, state: 'terminated' });
    const d = inst({ tags: { env: 'prod' }, state: 'stopped' });
    const e = inst({ tags: { env: 'prod' } });
    const sel = selectInstances(
      [a, b, c, d, e],
      crit({
        instances: [a, b, c, d, e].map((x) => ({ instanceId: x.instanceId, accountId: null, region: null })),
        tags: [{ key: 'env', value: 'prod' }],
        excludeTags: [{ key: 'keep', value: 'yes' }],
        excludeInstanceIds: [e.instanceId],
        states: parseStates(['running']),
      }),
    );
    const reason = (x: InstanceRecord) => sel.selected.find((s) => s.instance === x)?.skip?.reason ?? null;
    expect(reason(a)).toBeNull();
    expect(reason(b)).toBe('excluded');
    expect(reason(c)).toBe('terminated');
    expect(reason(d)).toBe('state-not-selected');
    expect(reason(e)).toBe('excluded');
    expect(() => parseStates(['terminated'])).toThrow(/terminated/);
  });

  it('ids scoped by account and region; ids not found are reported', () => {
    const a = inst({ accountId: '111111111111' });
    const a2 = { ...a, accountId: '222222222222' };
    const sel = selectInstances(
      [a, a2],
      crit({
        instances: [
          { instanceId: a.instanceId, accountId: '222222222222', region: null },
          { instanceId: 'i-0fffffffffffffff0', accountId: null, region: null },
        ],
      }),
    );
    expect(sel.selected.map((s) => s.instance.accountId)).toEqual(['222222222222']);
    expect(sel.missing).toEqual(['i-0fffffffffffffff0']);
  });

  it('extra filters (e.g. --only-ready) skip with their own sentence', () => {
    const a = inst();
    const b = inst({ tags: { busy: '1' } });
    const sel = selectInstances([a, b], EMPTY_CRITERIA, [
      { name: 'only-ready', check: (i) => (i.tags['busy'] ? 'made 12 IMDSv1 calls in 14 days' : null) },
    ]);
    expect(sel.selected[1]?.skip).toEqual({
      reason: 'filtered',
      detail: 'made 12 IMDSv1 calls in 14 days',
      filter: 'only-ready',
    });
    expect(sel.selected[0]?.skip).toBeNull();
  });
});

describe('instance plans', () => {
  it('harden keeps every other field and never re-enables a disabled endpoint', () => {
    const a = inst({
      m: { httpPutResponseHopLimit: 3, httpProtocolIpv6: 'enabled', instanceMetadataTags: 'enabled' },
    });
    const b = inst({ m: { httpEndpoint: 'disabled' } });
    const c = inst({ m: { httpTokens: 'required' } });
    const plan = planHarden(selectInstances([a, b, c], EMPTY_CRITERIA));
    const [pa, pb, pc] = plan.items as InstanceItem[];
    expect(pa?.after).toEqual({
      httpTokens: 'required',
      httpEndpoint: 'enabled',
      httpPutResponseHopLimit: 3,
      httpProtocolIpv6: 'enabled',
      instanceMetadataTags: 'enabled',
    });
    expect(pb?.skip?.reason).toBe('endpoint-disabled');
    expect(pb?.after.httpEndpoint).toBe('disabled');
    expect(pc?.skip?.reason).toBe('already-compliant');
    expect(countPlan(plan)).toMatchObject({ change: 1, skip: 2 });
  });

  it('disable and hop-limit change only their own field', () => {
    const a = inst({ m: { httpTokens: 'required', httpPutResponseHopLimit: 2 } });
    const d = planDisable(selectInstances([a], EMPTY_CRITERIA)).items[0] as InstanceItem;
    expect(d.after).toEqual({ ...d.before, httpEndpoint: 'disabled' });
    const h = planHopLimit(selectInstances([a], EMPTY_CRITERIA), 1).items[0] as InstanceItem;
    expect(h.after).toEqual({ ...h.before, httpPutResponseHopLimit: 1 });
    expect(planHopLimit(selectInstances([a], EMPTY_CRITERIA), 2).items[0]?.skip?.reason).toBe(
      'already-compliant',
    );
    expect(() => planHopLimit(selectInstances([a], EMPTY_CRITERIA), 65)).toThrow(RangeError);
  });
});

describe('rollback plan', () => {
  it('restores the exact previous values, skipping instances already back or changed since', () => {
    const a = inst({ m: { httpEndpoint: 'disabled', httpPutResponseHopLimit: 4 } });
    const b = inst();
    const c = inst();
    const aBefore = { ...a, metadataOptions: { ...a.metadataOptions, httpEndpoint: 'enabled' as const } };
    const orig = planDisable(selectInstances([aBefore, b, c], EMPTY_CRITERIA));
    expect(orig.items.every((i) => i.action === 'change')).toBe(true);
    // Now: a disabled (as the change left it), b back to enabled by someone, c changed since (tokens).
    const cNow = {
      ...c,
      metadataOptions: {
        ...c.metadataOptions,
        httpEndpoint: 'disabled' as const,
        httpTokens: 'required' as const,
      },
    };
    const recorded = orig.items.map((item) => ({ item, sent: true, createdVersion: null }));
    const plan = planRollback('cs-1', recorded, { instances: [a, b, cNow], scans: [] });
    const [ra, rb, rc] = plan.items as InstanceItem[];
    expect(ra?.action).toBe('change');
    expect(ra?.after).toEqual({ ...(orig.items[0] as InstanceItem).before });
    expect(ra?.after.httpPutResponseHopLimit).toBe(4);
    expect(rb?.skip?.reason).toBe('already-compliant');
    expect(rc?.skip?.reason).toBe('changed-since');
    const forced = planRollback('cs-1', recorded, { instances: [a, b, cNow], scans: [] }, { force: true });
    expect(forced.items[2]?.action).toBe('change');
    expect(plan.rollbackOf).toBe('cs-1');
    // Items never sent are not rolled back.
    expect(
      planRollback(
        'cs-1',
        recorded.map((r) => ({ ...r, sent: false })),
        { instances: [a], scans: [] },
      ).items,
    ).toEqual([]);
  });
});

function scan(partial: Partial<RegionScan>): RegionScan {
  return {
    accountId: '111111111111',
    region: 'us-east-1',
    status: 'ok',
    instanceCount: 0,
    defaults: null,
    defaultsManagement: null,
    launchTemplates: [],
    autoScalingGroups: [],
    launchConfigurations: [],
    images: [],
    ...partial,
  };
}

describe('templates and defaults plans', () => {
  const meta = {
    httpTokens: null,
    httpEndpoint: null,
    httpPutResponseHopLimit: 2,
    httpProtocolIpv6: 'enabled' as const,
    instanceMetadataTags: null,
  };
  const version = (n: number, m: typeof meta | null) => ({
    versionNumber: n,
    isDefault: false,
    imageId: null,
    instanceProfileArn: null,
    metadataOptions: m,
    createTime: null,
  });

  it('fixes a default version that allows IMDSv1 from its own source, keeping its other options', () => {
    const s = scan({
      defaults: {
        httpTokens: null,
        httpEndpoint: null,
        httpPutResponseHopLimit: null,
        instanceMetadataTags: null,
        httpTokensEnforced: null,
      },
      launchTemplates: [
        {
          accountId: '111111111111',
          region: 'us-east-1',
          launchTemplateId: 'lt-1',
          launchTemplateName: 'a',
          defaultVersionNumber: 1,
          latestVersionNumber: 1,
          versions: [version(1, meta)],
        },
        {
          accountId: '111111111111',
          region: 'us-east-1',
          launchTemplateId: 'lt-2',
          launchTemplateName: 'b',
          defaultVersionNumber: 1,
          latestVersionNumber: 2,
          versions: [version(1, null), version(2, null)],
        },
        {
          accountId: '111111111111',
          region: 'us-east-1',
          launchTemplateId: 'lt-3',
          launchTemplateName: 'c',
          defaultVersionNumber: 1,
          latestVersionNumber: 1,
          versions: [version(1, { ...meta, httpTokens: 'required' as never })],
        },
      ],
    });
    const { plan } = planTemplates({ instances: [], scans: [s] });
    const [a, b, c] = plan.items;
    expect(a?.action).toBe('change');
    expect(a?.type === 'launch-template' && a.after).toEqual({
      op: 'fix',
      sourceVersion: 1,
      metadataOptions: { ...meta, httpTokens: 'required' },
    });
    expect(b?.skip?.reason).toBe('latest-not-default');
    expect(c?.skip?.reason).toBe('already-compliant');
    // An account default of required makes a version without options compliant.
    const s2 = {
      ...s,
      defaults: {
        httpTokens: 'required' as const,
        httpEndpoint: null,
        httpPutResponseHopLimit: null,
        instanceMetadataTags: null,
        httpTokensEnforced: null,
      },
    };
    expect(planTemplates({ instances: [], scans: [s2] }).plan.items[1]?.skip?.reason).toBe(
      'already-compliant',
    );
  });

  it('defaults: required per region, keeping the other fields; already required is skipped', () => {
    const none = {
      httpTokens: null,
      httpEndpoint: null,
      httpPutResponseHopLimit: 2,
      instanceMetadataTags: null,
      httpTokensEnforced: null,
    };
    const plan = planDefaults(
      [
        scan({ defaults: none }),
        scan({ region: 'eu-west-1', defaults: { ...none, httpTokens: 'required' } }),
        scan({ region: 'x', status: 'failed' }),
      ],
      { httpTokens: 'required' },
    );
    expect(plan.items).toHaveLength(2);
    expect(plan.items[0]?.type === 'account-defaults' && plan.items[0].after).toEqual({
      ...none,
      httpTokens: 'required',
    });
    expect(plan.items[1]?.skip?.reason).toBe('already-compliant');
  });
});
