import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import { compilePolicy } from '../../src/guard/policy/index.js';
import { configFile } from '../../src/host/files.js';
import { classifyRequest } from '../../src/imds/classify.js';
import { isSecretPath } from '../../src/imds/secret-paths.js';
import { rawHeaderList } from '../support/header-list.js';

describe('isSecretPath', () => {
  it.each([
    '/latest/meta-data/iam/security-credentials',
    '/latest/meta-data/iam/security-credentials/',
    '/latest/meta-data/iam/security-credentials/app-role',
    '/2021-07-15/meta-data/iam/security-credentials/app-role',
    '/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance',
    '/latest/meta-data/ram/security-credentials/role',
    '/latest/user-data',
    '/latest/user-data/',
    '/2009-04-04/user-data',
  ])('%s is a secret', (p) => {
    expect(isSecretPath(p)).toBe(true);
  });
  it.each([
    '/latest/meta-data/instance-id',
    '/latest/meta-data/iam/info',
    '/latest/meta-data/iam/',
    '/latest/dynamic/instance-identity/document',
    '/latest/meta-data/iam/security-credentials-x',
    '/latest/user-data-x',
    '/latest/meta-data/user-data',
  ])('%s is not', (p) => {
    expect(isSecretPath(p)).toBe(false);
  });
});

function decide(guard: Record<string, unknown>, target: string, headers: Record<string, string>) {
  const cfg = parseConfig({ guard }).guard;
  const cls = classifyRequest(
    { method: 'GET', target, rawHeaders: rawHeaderList({ host: '169.254.169.254', ...headers }) },
    'aws',
    cfg.authHeader,
  );
  return compilePolicy(cfg, { attribution: false }).decide(cls);
}

describe('header-allowed reads in the policy', () => {
  const CREDS = '/latest/meta-data/iam/security-credentials/r';
  it('a User-Agent-allowed credentials read alerts; the option turns it off; other paths stay quiet', () => {
    expect(decide({}, CREDS, { 'user-agent': 'Boto3/1.34' })).toMatchObject({
      rule: 'ua-allowlist',
      alert: true,
    });
    expect(decide({ alertHeaderAllowedReads: false }, CREDS, { 'user-agent': 'Boto3/1.34' }).alert).toBe(
      false,
    );
    expect(decide({}, '/latest/meta-data/instance-id', { 'user-agent': 'Boto3/1.34' }).alert).toBe(false);
  });
  it('a Metadata-Flavor-allowed user-data read alerts, also through a non-canonical spelling', () => {
    const d = decide({}, '/latest/./user-data', { 'metadata-flavor': 'Amazon' });
    expect(d).toMatchObject({ decision: 'allow', rule: 'metadata-flavor', alert: true });
  });
  it('a configured rule or the secret allowing the same read is no header-allowed read', () => {
    const rule = { name: 'legacy', action: 'allow', version: 'v1', path: '/latest/user-data' };
    expect(decide({ rules: [rule] }, '/latest/user-data', { 'user-agent': 'aws-cli/2' })).toMatchObject({
      rule: 'legacy',
      alert: false,
    });
    const secret = 'Zx81Qm4Lp0Tr7Wd2';
    expect(decide({ authSecret: secret }, CREDS, { 'x-meta-auth': secret }).alert).toBe(false);
  });
});

describe('the config install writes', () => {
  const opts = { port: 16925, ipv6: true, bridges: [] } as unknown as Parameters<typeof configFile>[0];
  it('states the real IMDSv1 default, which its own config then decides', () => {
    const text = configFile(opts);
    expect(text).not.toMatch(/IMDSv1 refused\s*(#\s*)?unless a caller rule/);
    expect(text).toContain('IMDSv1 allowed for the AWS SDK and CLI User-Agents');
    expect(text).toContain('a credentials or user-data read allowed on a header alone raises an alert');
    // and it is true of the generated config itself
    const guard = (parseYaml(text) as { guard: Record<string, unknown> }).guard;
    const d = decide({ ...guard, stateDir: undefined }, '/latest/meta-data/iam/security-credentials/', {
      'user-agent': 'aws-cli/2.15.0',
    });
    expect(d).toMatchObject({ decision: 'allow', rule: 'ua-allowlist', alert: true });
    expect(decide({ ...guard, stateDir: undefined }, '/latest/meta-data/', {}).rule).toBe('default-deny-v1');
  });
});
