import { describe, expect, it } from 'vitest';
import {
  effectiveLaunchTokens,
  FINDINGS,
  findFindings,
  hasContainerHint,
} from '../../src/fleet/posture/findings.js';
import { groupByRole } from '../../src/fleet/posture/roles.js';
import { summarize } from '../../src/fleet/posture/summary.js';
import { smallInventory } from '../support/fleet-records.js';

const inventory = smallInventory();

describe('posture summary', () => {
  it('counts live instances only, in three exclusive buckets, with percentages', () => {
    const s = summarize(inventory);
    const a = s.byAccount.find((x) => x.accountId === '111111111111');
    expect(a).toMatchObject({
      instances: 7,
      tokensRequired: 4,
      tokensOptional: 2,
      endpointDisabled: 1,
      pending: 1,
      withInstanceProfile: 2,
      imdsV1WithProfile: 1,
      hopLimit: { '1': 5, '2': 2, '>2': 0 },
      ipv6Enabled: 1,
      tagsInMetadata: 1,
      percent: { tokensRequired: 57.1, tokensOptional: 28.6, endpointDisabled: 14.3 },
    });
    expect(s.overall.instances).toBe(8);
    expect(s.overall.tokensRequired).toBe(5);
    expect(s.byRegion).toHaveLength(1);
    expect(s.byAccountRegion.map((r) => r.accountId)).toEqual(['111111111111', '222222222222']);
  });

  it('gives every scanned account and region a row even without instances', () => {
    const s = summarize({ instances: [], scans: inventory.scans });
    expect(s.byAccountRegion).toHaveLength(2);
    expect(s.overall.percent.tokensRequired).toBe(0);
  });
});

describe('findings', () => {
  const findings = findFindings(inventory);
  const ids = findings.map((f) => `${f.id}:${f.resourceId}`);

  it('finds exactly the expected findings of the fixture', () => {
    expect(ids.sort()).toEqual(
      [
        'instance-imdsv1-with-role:i-a',
        'instance-imdsv1-no-role:i-b',
        'instance-hop-limit:i-c',
        'instance-metadata-pending:i-e',
        'instance-ipv6-endpoint:i-f',
        'instance-tags-in-metadata:i-f',
        'template-default-imdsv1:lt-1',
        'template-latest-imdsv1:lt-3',
        'asg-launches-imdsv1:asg-web',
        'asg-launches-imdsv1:asg-ci',
        'asg-launches-imdsv1:asg-lc',
        'launch-config-imdsv1:lc-old',
        'account-default-imdsv1:111111111111/us-east-1',
        'image-no-imdsv2-support:ami-2',
      ].sort(),
    );
  });

  it('sorts by severity and gives each finding its catalogue severity', () => {
    const ranks = findings.map((f) => ['high', 'medium', 'low', 'info'].indexOf(f.severity));
    expect([...ranks].sort((x, y) => x - y)).toEqual(ranks);
    for (const f of findings) expect(f.severity).toBe(FINDINGS[f.id].severity);
    expect(findings[0]?.severity).toBe('high');
  });

  it('never reports terminated instances, endpoint-disabled instances as v1, or container hosts for hop limit', () => {
    expect(ids.some((x) => x.endsWith(':i-h'))).toBe(false);
    expect(ids.some((x) => x.endsWith(':i-g'))).toBe(false);
    expect(ids.some((x) => x.endsWith(':i-d'))).toBe(false);
  });

  it('counts only live users of an AMI', () => {
    const f = findings.find((x) => x.id === 'image-no-imdsv2-support');
    expect(f?.details['instances']).toBe(2);
  });

  it('resolves launch tokens: launch settings, then account default, then AMI, then optional', () => {
    const noDefaults = {
      httpTokens: null,
      httpEndpoint: null,
      httpPutResponseHopLimit: null,
      instanceMetadataTags: null,
      httpTokensEnforced: null,
    };
    expect(
      effectiveLaunchTokens({ httpTokens: 'optional' }, { ...noDefaults, httpTokens: 'required' }, 'v2.0'),
    ).toBe('optional');
    expect(effectiveLaunchTokens(null, { ...noDefaults, httpTokens: 'required' }, null)).toBe('required');
    expect(effectiveLaunchTokens(null, { ...noDefaults, httpTokens: 'optional' }, 'v2.0')).toBe('optional');
    expect(effectiveLaunchTokens(null, noDefaults, 'v2.0')).toBe('required');
    expect(effectiveLaunchTokens(null, null, 'unknown')).toBe('optional');
  });

  it('recognises container hints in tags', () => {
    expect(hasContainerHint({ 'eks:cluster-name': 'x' })).toBe(true);
    expect(hasContainerHint({ 'kubernetes.io/cluster/main': 'owned' })).toBe(true);
    expect(hasContainerHint({ Name: 'eks-ish', env: 'prod' })).toBe(false);
  });
});

describe('role groups', () => {
  it('groups live instances per account and profile, no-profile last', () => {
    const groups = groupByRole(inventory.instances);
    expect(groups.map((g) => [g.accountId, g.instanceProfileName, g.instances, g.imdsV1Allowed])).toEqual([
      ['111111111111', 'eks-node', 1, 0],
      ['111111111111', 'web', 1, 1],
      ['111111111111', null, 5, 1],
      ['222222222222', null, 1, 0],
    ]);
    expect(groups[1]?.instanceIds).toEqual(['i-a']);
  });
});
