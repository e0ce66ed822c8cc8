/**
 * Guardrail policies: valid JSON, the documented condition keys and operators, the declarative policy
 * against a schema written from AWS's documentation, CLI options.
 */
import { describe, expect, it } from 'vitest';
import {
  buildDeclarativePolicy,
  DECLARATIVE_DEFAULTS,
  MAX_EXCEPTION_MESSAGE,
} from '../../src/fleet/guardrails/declarative.js';
import {
  buildGuardrails,
  GUARDRAIL_DEFAULTS,
  type PolicyDocument,
} from '../../src/fleet/guardrails/policies.js';
import { runInProcess } from '../support/cli.js';
import { ec2DeclarativePolicySchema } from '../support/declarative-policy-schema.js';

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

// The CLI runs in-process, the AWS SDK's first import included: seconds on a loaded machine.
describe('fleet guardrails (CLI)', { timeout: 60_000 }, () => {
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

  it('prints all three by default, both is scp and iam, and --policy declarative the declarative policy alone', async () => {
    const all = await runInProcess(['fleet', 'guardrails']);
    expect(all.code, all.stderr).toBe(0);
    const doc = JSON.parse(all.stdout) as Record<string, unknown>;
    expect(Object.keys(doc).sort()).toEqual(['declarative', 'iam', 'scp']);
    expect(ec2DeclarativePolicySchema.safeParse(doc['declarative']).success).toBe(true);
    const both = await runInProcess(['fleet', 'guardrails', '--policy', 'both']);
    expect(Object.keys(JSON.parse(both.stdout)).sort()).toEqual(['iam', 'scp']);
    const d = await runInProcess([
      'fleet',
      'guardrails',
      '--policy',
      'declarative',
      '--max-hop-limit',
      '1',
      '--exception-message',
      'IMDSv2 only: see go/imds',
      '--no-enforce',
    ]);
    expect(d.code, d.stderr).toBe(0);
    const policy = ec2DeclarativePolicySchema.parse(JSON.parse(d.stdout));
    expect(policy.ec2_attributes.instance_metadata_defaults).toEqual({
      http_tokens: { '@@assign': 'required' },
      http_put_response_hop_limit: { '@@assign': '1' },
      http_endpoint: { '@@assign': 'enabled' },
      instance_metadata_tags: { '@@assign': 'no_preference' },
    });
    expect(policy.ec2_attributes.exception_message).toEqual({ '@@assign': 'IMDSv2 only: see go/imds' });
  });

  it('refuses a bad role ARN or hop limit with a usage error', async () => {
    const a = await runInProcess(['fleet', 'guardrails', '--admin-role', 'ops']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--admin-role');
    const b = await runInProcess(['fleet', 'guardrails', '--max-hop-limit', '65']);
    expect(b.code).toBe(2);
    for (const bad of ['', ' ', 'x'.repeat(MAX_EXCEPTION_MESSAGE + 1)]) {
      const m = await runInProcess(['fleet', 'guardrails', '--exception-message', bad]);
      expect(m.code).toBe(2);
      expect(m.stderr).toContain('--exception-message');
    }
    const p = await runInProcess(['fleet', 'guardrails', '--policy', 'tag']);
    expect(p.code).toBe(2);
  });
});

describe('the declarative policy', () => {
  it('sets the four IMDS defaults, enforcement and the exception message, in the documented syntax', () => {
    const p = buildDeclarativePolicy();
    expect(ec2DeclarativePolicySchema.safeParse(p).error).toBeUndefined();
    expect(p).toEqual({
      ec2_attributes: {
        instance_metadata_defaults: {
          http_tokens: { '@@assign': 'required' },
          http_put_response_hop_limit: { '@@assign': '2' },
          http_endpoint: { '@@assign': 'enabled' },
          instance_metadata_tags: { '@@assign': 'no_preference' },
          http_tokens_enforced: { '@@assign': 'enabled' },
        },
        exception_message: { '@@assign': DECLARATIVE_DEFAULTS.exceptionMessage },
      },
    });
    const off = buildDeclarativePolicy({ enforce: false, hopLimit: 64, instanceMetadataTags: 'disabled' });
    expect(off.ec2_attributes.instance_metadata_defaults).not.toHaveProperty('http_tokens_enforced');
    expect(off.ec2_attributes.instance_metadata_defaults.http_put_response_hop_limit).toEqual({
      '@@assign': '64',
    });
    expect(ec2DeclarativePolicySchema.safeParse(off).success).toBe(true);
    for (const hopLimit of [0, 65, 1.5])
      expect(() => buildDeclarativePolicy({ hopLimit })).toThrow(RangeError);
    expect(() => buildDeclarativePolicy({ exceptionMessage: '' })).toThrow(RangeError);
    expect(() => buildDeclarativePolicy({ exceptionMessage: 'x'.repeat(MAX_EXCEPTION_MESSAGE + 1) })).toThrow(
      RangeError,
    );
  });

  it('the schema written from the documentation refuses what AWS would: a misspelt key, operator or value', () => {
    const good = buildDeclarativePolicy();
    type Doc = Record<string, unknown> & {
      ec2_attributes: Record<string, unknown> & { instance_metadata_defaults: Record<string, unknown> };
    };
    const variants: Array<(d: Doc) => void> = [
      (d) => {
        d['ec2'] = d.ec2_attributes;
        delete (d as Record<string, unknown>)['ec2_attributes'];
      },
      (d) => {
        d.ec2_attributes.instance_metadata_defaults.http_token = { '@@assign': 'required' };
      },
      (d) => {
        d.ec2_attributes.instance_metadata_defaults.http_tokens = { '@@assing': 'required' };
      },
      (d) => {
        d.ec2_attributes.instance_metadata_defaults.http_tokens = { '@@assign': 'require' };
      },
      // The API says no-preference; the policy syntax says no_preference.
      (d) => {
        d.ec2_attributes.instance_metadata_defaults.http_endpoint = { '@@assign': 'no-preference' };
      },
      (d) => {
        d.ec2_attributes.instance_metadata_defaults.http_put_response_hop_limit = { '@@assign': '65' };
      },
      (d) => {
        d.ec2_attributes.instance_metadata_defaults.http_tokens_enforced = { '@@assign': 'required' };
      },
      (d) => {
        d.ec2_attributes.exception_message = 'plain string';
      },
    ];
    for (const change of variants) {
      const d = structuredClone(good) as unknown as Doc;
      change(d);
      expect(ec2DeclarativePolicySchema.safeParse(d).success, JSON.stringify(d)).toBe(false);
    }
  });
});
