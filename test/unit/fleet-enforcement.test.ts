/**
 * Account-level IMDSv2 enforcement, the pure parts: launches judged against the
 * region's state (posture/launch.ts, findings), plans that mark what AWS would refuse as blocked
 * (plan/blocked.ts), and readiness to enforce (posture/enforcement.ts).
 */
import { describe, expect, it } from 'vitest';
import type {
  AccountDefaultsRecord,
  InstanceRecord,
  LaunchTemplateRecord,
  RegionScan,
} from '../../src/fleet/inventory/model.js';
import { markBlocked } from '../../src/fleet/plan/blocked.js';
import { planDefaults } from '../../src/fleet/plan/defaults.js';
import { planDisable } from '../../src/fleet/plan/disable.js';
import { planHopLimit } from '../../src/fleet/plan/hop-limit.js';
import { planRollback } from '../../src/fleet/plan/rollback.js';
import { EMPTY_CRITERIA, selectInstances } from '../../src/fleet/plan/selection.js';
import { planTemplates } from '../../src/fleet/plan/templates.js';
import type { ChangePlan, InstanceItem } from '../../src/fleet/plan/types.js';
import { countPlan } from '../../src/fleet/plan/types.js';
import { enforcementReadiness, regionEnforcement } from '../../src/fleet/posture/enforcement.js';
import { findFindings } from '../../src/fleet/posture/findings.js';
import { launchOutcome } from '../../src/fleet/posture/launch.js';
import { instanceRecord } from '../support/fleet-records.js';

const A = '111111111111';
const R = 'us-east-1';

function defaults(over: Partial<AccountDefaultsRecord> = {}): AccountDefaultsRecord {
  return {
    httpTokens: null,
    httpEndpoint: null,
    httpPutResponseHopLimit: null,
    instanceMetadataTags: null,
    httpTokensEnforced: null,
    ...over,
  };
}

function scan(over: Partial<RegionScan> = {}): RegionScan {
  return {
    accountId: A,
    region: R,
    status: 'ok',
    instanceCount: 0,
    defaults: defaults(),
    defaultsManagement: { managedBy: 'account', exceptionMessage: null },
    launchTemplates: [],
    autoScalingGroups: [],
    launchConfigurations: [],
    images: [],
    ...over,
  };
}

const ENFORCED = defaults({ httpTokensEnforced: 'enabled' });

function template(id: string, tokens: 'optional' | 'required' | null): LaunchTemplateRecord {
  return {
    accountId: A,
    region: R,
    launchTemplateId: id,
    launchTemplateName: `${id}-name`,
    defaultVersionNumber: 1,
    latestVersionNumber: 1,
    versions: [
      {
        versionNumber: 1,
        isDefault: true,
        imageId: null,
        instanceProfileArn: null,
        metadataOptions:
          tokens === null
            ? null
            : {
                httpTokens: tokens,
                httpEndpoint: 'enabled',
                httpPutResponseHopLimit: 1,
                httpProtocolIpv6: null,
                instanceMetadataTags: null,
              },
        createTime: null,
      },
    ],
  };
}

describe('launches under account-level enforcement', () => {
  it('omitted HttpTokens is compliant under enforcement; optional is refused; no enforcement: optional allows IMDSv1', () => {
    expect(launchOutcome(null, ENFORCED, null)).toMatchObject({
      tokens: 'required',
      refused: false,
      allowsV1: false,
      source: 'account enforcement',
    });
    expect(launchOutcome({ httpTokens: 'optional', httpEndpoint: null }, ENFORCED, null)).toMatchObject({
      refused: true,
      allowsV1: false,
    });
    // An account default of optional: launches that set nothing get optional, and are refused.
    expect(launchOutcome(null, { ...ENFORCED, httpTokens: 'optional' }, null).refused).toBe(true);
    expect(launchOutcome(null, defaults(), null)).toMatchObject({ tokens: 'optional', allowsV1: true });
    expect(launchOutcome(null, null, null).source).toContain('not read');
  });

  it('findings: a template that omits tokens is fine under enforcement; one that asks for optional, its group and a launch configuration are refused', () => {
    const s = scan({
      defaults: ENFORCED,
      launchTemplates: [template('lt-omits', null), template('lt-optional', 'optional')],
      autoScalingGroups: [
        {
          accountId: A,
          region: R,
          name: 'asg-1',
          arn: null,
          launchTemplate: { launchTemplateId: 'lt-optional', launchTemplateName: null, version: '$Default' },
          mixedInstancesPolicy: false,
          launchConfigurationName: null,
          desiredCapacity: 2,
          instanceIds: [],
        },
      ],
      launchConfigurations: [
        {
          accountId: A,
          region: R,
          name: 'lc-1',
          arn: null,
          imageId: null,
          instanceProfile: null,
          metadataOptions: { httpTokens: 'optional', httpEndpoint: null, httpPutResponseHopLimit: null },
        },
      ],
    });
    const ids = findFindings({ instances: [], scans: [s] }).map((f) => `${f.id}:${f.resourceId}`);
    expect(ids).toContain('template-launch-refused:lt-optional');
    expect(ids).toContain('asg-launch-refused:asg-1');
    expect(ids).toContain('launch-config-launch-refused:lc-1');
    expect(ids.filter((x) => x.includes('lt-omits'))).toEqual([]);
    expect(
      ids.filter((x) => x.startsWith('template-default-imdsv1') || x.startsWith('asg-launches')),
    ).toEqual([]);
    // A default of no preference is fine under enforcement: no account-default finding.
    expect(ids.some((x) => x.startsWith('account-default-imdsv1'))).toBe(false);
    // The template fix still plans a required version for the refused one, and skips the compliant one.
    const plan = planTemplates({ instances: [], scans: [s] }).plan;
    expect(plan.items.map((i) => `${i.resourceId}:${i.action}`)).toEqual([
      'lt-omits:skip',
      'lt-optional:change',
    ]);
  });
});

function instances(): InstanceRecord[] {
  return [
    instanceRecord({ instanceId: 'i-00000000000000001', m: { httpTokens: 'optional' } }),
    instanceRecord({ instanceId: 'i-00000000000000002', m: { httpTokens: 'required' } }),
  ];
}

describe('markBlocked', () => {
  it('blocks changes that leave HttpTokens optional where IMDSv2 is enforced; allows them elsewhere', () => {
    const plan = planHopLimit(selectInstances(instances(), EMPTY_CRITERIA), 2);
    const enforced = markBlocked(plan, [scan({ defaults: ENFORCED })]);
    expect(enforced.items.map((i) => `${i.resourceId}:${i.action}`)).toEqual([
      'i-00000000000000001:blocked',
      'i-00000000000000002:change',
    ]);
    const b = enforced.items[0];
    expect(b?.blocked?.reason).toBe('tokens-enforced');
    expect(b?.blocked?.detail).toContain('UnsupportedOperation');
    // It stays on optional (a hop-limit change keeps its tokens): hardening it first lets the change go ahead.
    expect(b?.blocked?.detail).toContain('fleet harden --instances i-00000000000000001 --regions us-east-1');
    expect(countPlan(enforced)).toMatchObject({
      change: 1,
      blocked: 1,
      byBlockReason: { 'tokens-enforced': 1 },
    });
    // Not enforced, or the defaults not read: nothing blocked (AWS's answer decides there).
    expect(countPlan(markBlocked(plan, [scan()])).blocked).toBe(0);
    expect(countPlan(markBlocked(plan, [scan({ defaults: null, defaultsManagement: null })])).blocked).toBe(
      0,
    );
    // Another region's enforcement does not leak.
    expect(countPlan(markBlocked(plan, [scan({ region: 'eu-west-1', defaults: ENFORCED })])).blocked).toBe(0);
    // The plan passed in is not changed.
    expect(plan.items.every((i) => i.action !== 'blocked')).toBe(true);
  });

  it('a rollback of a harden in a region enforced since then is blocked, with the policy message when a policy enforces it', () => {
    const before = instances()[0] as InstanceRecord;
    const hardened: InstanceRecord = {
      ...before,
      metadataOptions: { ...before.metadataOptions, httpTokens: 'required' },
    };
    const harden: InstanceItem = {
      type: 'instance',
      seq: 0,
      accountId: A,
      region: R,
      resourceId: before.instanceId,
      name: null,
      state: 'running',
      action: 'change',
      skip: null,
      before: { ...before.metadataOptions, state: undefined } as never,
      after: { ...before.metadataOptions, httpTokens: 'required' } as never,
    };
    const managed = scan({
      defaults: ENFORCED,
      defaultsManagement: { managedBy: 'declarative-policy', exceptionMessage: 'IMDSv2 only, ask #platform' },
    });
    const plan: ChangePlan = planRollback('cs-1', [{ item: harden, sent: true, createdVersion: null }], {
      instances: [hardened],
      scans: [managed],
    });
    const blocked = markBlocked(plan, [managed]);
    expect(blocked.items[0]?.action).toBe('blocked');
    expect(blocked.items[0]?.blocked?.detail).toContain('declarative policy');
    expect(blocked.items[0]?.blocked?.detail).toContain('IMDSv2 only, ask #platform');
    // Enforced by the account itself: the way back is to turn enforcement off first.
    const own = scan({ defaults: ENFORCED });
    expect(markBlocked(plan, [own]).items[0]?.blocked?.detail).toContain(
      'fleet defaults --no-enforce --regions us-east-1',
    );
  });

  it('defaults: a region a declarative policy manages is blocked, quoting its message; others are planned', () => {
    const scans = [
      scan({
        defaultsManagement: {
          managedBy: 'declarative-policy',
          exceptionMessage: 'Managed by the org: see go/imds',
        },
      }),
      scan({ region: 'eu-west-1' }),
    ];
    const plan = markBlocked(planDefaults(scans, { httpTokensEnforced: 'enabled' }), scans);
    expect(plan.items.map((i) => `${i.region}:${i.action}`)).toEqual([
      'us-east-1:blocked',
      'eu-west-1:change',
    ]);
    expect(plan.items[0]?.blocked).toMatchObject({ reason: 'managed-by-policy' });
    expect(plan.items[0]?.blocked?.detail).toContain('"Managed by the org: see go/imds"');
    // Enforcement on with HttpTokens=optional as the default would refuse every launch relying on it.
    const optional = [scan({ defaults: defaults({ httpTokens: 'optional' }) })];
    expect(
      markBlocked(planDefaults(optional, { httpTokensEnforced: 'enabled' }), optional).items[0]?.blocked
        ?.reason,
    ).toBe('tokens-enforced');
  });

  it('disable on an instance still on optional is blocked under enforcement (it sends HttpTokens=optional)', () => {
    const plan = markBlocked(planDisable(selectInstances(instances(), EMPTY_CRITERIA)), [
      scan({ defaults: ENFORCED }),
    ]);
    expect(plan.items.map((i) => i.action)).toEqual(['blocked', 'change']);
  });
});

describe('readiness to enforce', () => {
  it('names each refused launch: a template version, a group launching from it, a launch configuration', () => {
    const lc = {
      accountId: A,
      region: R,
      name: 'lc-optional',
      arn: null,
      imageId: null,
      instanceProfile: null,
      metadataOptions: {
        httpTokens: 'optional' as const,
        httpEndpoint: 'enabled' as const,
        httpPutResponseHopLimit: 1,
      },
    };
    const group = (name: string, over: object) => ({
      accountId: A,
      region: R,
      name,
      arn: null,
      launchTemplate: null,
      mixedInstancesPolicy: false,
      launchConfigurationName: null,
      desiredCapacity: 1,
      instanceIds: [],
      ...over,
    });
    const s = scan({
      launchTemplates: [template('lt-optional', 'optional'), template('lt-required', 'required')],
      autoScalingGroups: [
        group('asg-template', {
          launchTemplate: { launchTemplateId: 'lt-optional', launchTemplateName: null, version: '$Default' },
        }),
        group('asg-required', {
          launchTemplate: { launchTemplateId: 'lt-required', launchTemplateName: null, version: '1' },
        }),
        group('asg-config', { launchConfigurationName: 'lc-optional' }),
      ],
      launchConfigurations: [lc],
    });
    const [r] = enforcementReadiness({ instances: [], scans: [s] });
    expect(r?.launches).toEqual([
      {
        kind: 'launch-template',
        resourceId: 'lt-optional',
        name: 'lt-optional-name',
        detail:
          'default version 1 asks for HttpTokens=optional (from launch settings): its launches are refused',
      },
      {
        kind: 'auto-scaling-group',
        resourceId: 'asg-template',
        name: 'asg-template',
        detail:
          'launches from launch template lt-optional-name version 1 ($Default), which asks for HttpTokens=optional (from launch settings): it cannot scale out or replace instances',
      },
      {
        kind: 'auto-scaling-group',
        resourceId: 'asg-config',
        name: 'asg-config',
        detail:
          'launches from launch configuration lc-optional, which asks for HttpTokens=optional (from launch settings): it cannot scale out or replace instances',
      },
      {
        kind: 'launch-configuration',
        resourceId: 'lc-optional',
        name: 'lc-optional',
        detail: 'asks for HttpTokens=optional (from launch settings): its launches are refused',
      },
    ]);
  });

  it('says what would break: refused launches, instances on optional with IMDSv1 calls; ready when nothing', () => {
    const optionalCaller = instanceRecord({
      instanceId: 'i-0000000000000000c',
      m: { httpTokens: 'optional' },
    });
    const optionalQuiet = instanceRecord({
      instanceId: 'i-0000000000000000d',
      m: { httpTokens: 'optional' },
    });
    const s = scan({ launchTemplates: [template('lt-optional', 'optional'), template('lt-omits', null)] });
    const usage = new Map([
      [
        `${A}/${R}/i-0000000000000000c`,
        { v1Calls: 12, lastV1: '2026-11-22T18:00:00.000Z', readiness: 'not-ready' },
      ],
      [`${A}/${R}/i-0000000000000000d`, { v1Calls: 0, lastV1: null, readiness: 'ready' }],
    ]);
    const [r] = enforcementReadiness({ instances: [optionalCaller, optionalQuiet], scans: [s] }, usage);
    expect(r?.verdict).toBe('would-break');
    expect(r?.launches.map((b) => b.resourceId)).toEqual(['lt-optional']);
    expect(r?.counts).toEqual({ optional: 2, v1Calls: 1, unknownUse: 0 });
    expect(r?.instances.find((b) => b.resourceId === 'i-0000000000000000c')?.detail).toContain(
      'makes IMDSv1 calls (12',
    );
    // Nothing refused, nobody calling IMDSv1: ready.
    const clean = enforcementReadiness({ instances: [optionalQuiet], scans: [scan()] }, usage);
    expect(clean[0]?.verdict).toBe('ready');
    // Instances on optional whose use was not measured: unknown, never ready.
    expect(enforcementReadiness({ instances: [optionalQuiet], scans: [scan()] })[0]?.verdict).toBe('unknown');
    // Already enforced, and defaults not read.
    expect(enforcementReadiness({ instances: [], scans: [scan({ defaults: ENFORCED })] })[0]?.verdict).toBe(
      'enforced',
    );
    expect(
      enforcementReadiness({ instances: [], scans: [scan({ defaults: null, defaultsManagement: null })] })[0]
        ?.verdict,
    ).toBe('unknown');
    expect(regionEnforcement(scan({ defaults: null, defaultsManagement: null }))).toMatchObject({
      enforcement: 'unknown',
      managedBy: 'unknown',
    });
  });
});
