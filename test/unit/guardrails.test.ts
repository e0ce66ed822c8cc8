/** Guardrail policies: valid JSON, the documented condition keys and operators, CLI options. */
import { describe, expect, it } from 'vitest';
import {
  buildGuardrails,
  GUARDRAIL_DEFAULTS,
  type PolicyDocument,
} from '../../src/fleet/guardrails/policies.js';
import { runInProcess } from '../support/cli.js';

function statement(doc: PolicyDocument, sid: string) {
  const s = doc.Statement.find((x) => x.Sid === sid);
  if (!s) throw new Error(`no statement ${sid}`);
  return s;
}

describe('buildGuardrails', () => {
  it('denies launches without tokens, caps the hop limit, reserves metadata changes to the admin role, and requires v2 role credentials', () => {
    const g = buildGuardrails({
      adminRoleArn: 'arn:aws:iam::123456789012:role/platform-admin',
      maxHopLimit: 1,
    });
    for (const doc of [g.scp, g.iam]) {
      expect(doc.Version).toBe('2012-10-17');
      expect(statement(doc, 'RequireImdsV2OnLaunch')).toMatchObject({
        Effect: 'Deny',
        Action: 'ec2:RunInstances',
        Resource: 'arn:aws:ec2:*:*:instance/*',
        Condition: { StringNotEquals: { 'ec2:MetadataHttpTokens': 'required' } },
      });
      expect(statement(doc, 'CapImdsHopLimitOnLaunch').Condition).toEqual({
        NumericGreaterThan: { 'ec2:MetadataHttpPutResponseHopLimit': '1' },
      });
      expect(statement(doc, 'OnlyAdminChangesImdsOptions')).toMatchObject({
        Action: ['ec2:ModifyInstanceMetadataOptions', 'ec2:ModifyInstanceMetadataDefaults'],
        Condition: { ArnNotLike: { 'aws:PrincipalArn': 'arn:aws:iam::123456789012:role/platform-admin' } },
      });
      expect(statement(doc, 'DenyImdsV1RoleCredentials')).toMatchObject({
        Action: '*',
        Condition: { NumericLessThan: { 'ec2:RoleDelivery': '2.0' } },
      });
    }
    const d = buildGuardrails();
    expect(d.adminRoleArn).toBe(GUARDRAIL_DEFAULTS.adminRoleArn);
    expect(statement(d.scp, 'CapImdsHopLimitOnLaunch').Condition).toEqual({
      NumericGreaterThan: { 'ec2:MetadataHttpPutResponseHopLimit': '2' },
    });
    expect(() => buildGuardrails({ maxHopLimit: 0 })).toThrow(RangeError);
    expect(() => buildGuardrails({ adminRoleArn: 'platform-admin' })).toThrow(RangeError);
  });
});

describe('fleet guardrails (CLI)', () => {
  it('prints both policies as valid JSON, or one with --policy', async () => {
    const r = await runInProcess([
      'fleet',
      'guardrails',
      '--admin-role',
      'arn:aws:iam::*:role/ops',
      '--max-hop-limit',
      '3',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { scp: PolicyDocument; iam: PolicyDocument };
    expect(statement(doc.scp, 'OnlyAdminChangesImdsOptions').Condition).toEqual({
      ArnNotLike: { 'aws:PrincipalArn': 'arn:aws:iam::*:role/ops' },
    });
    expect(r.stdout).toContain('"ec2:MetadataHttpPutResponseHopLimit": "3"');
    const scp = await runInProcess(['fleet', 'guardrails', '--policy', 'scp', '--format', 'json']);
    expect((JSON.parse(scp.stdout) as PolicyDocument).Statement).toHaveLength(4);
  });

  it('refuses a bad role ARN or hop limit with a usage error', async () => {
    const a = await runInProcess(['fleet', 'guardrails', '--admin-role', 'ops']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--admin-role');
    const b = await runInProcess(['fleet', 'guardrails', '--max-hop-limit', '65']);
    expect(b.code).toBe(2);
  });
});
