import { describe, expect, it } from 'vitest';
import { readFleetOptions } from '../../src/cli/fleet-options.js';
import { isImdsguardError } from '../../src/errors.js';
import { awsErrorCode, wrapAwsError } from '../../src/fleet/aws/errors.js';
import { validateSelection } from '../../src/fleet/aws/targets.js';
import { runInProcess } from '../support/cli.js';

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isImdsguardError(err, 'IMDSGUARD_E_USAGE')) return err.message;
    throw err;
  }
  throw new Error('no usage error');
}

describe('fleet options', () => {
  it('refuses inconsistent account selections', () => {
    expect(usage(() => validateSelection({ org: true }))).toContain('--role');
    expect(usage(() => validateSelection({ accounts: ['123456789012'] }))).toContain('--role');
    expect(usage(() => validateSelection({ role: 'Audit' }))).toContain('--org or --accounts');
    expect(usage(() => validateSelection({ org: true, accounts: ['123456789012'], role: 'A' }))).toContain(
      'together',
    );
    expect(usage(() => validateSelection({ accounts: ['12345'], role: 'A' }))).toContain('12-digit');
    expect(usage(() => validateSelection({ org: true, role: 'arn:aws:iam::1:role/x' }))).toContain(
      'role name',
    );
    expect(usage(() => validateSelection({ regions: ['us-east-1'], allRegions: true }))).toContain(
      'together',
    );
    expect(usage(() => validateSelection({ regions: ['useast1'] }))).toContain('region name');
    expect(() =>
      validateSelection({ org: true, role: 'OrganizationAccountAccessRole', regions: ['eu-west-1'] }),
    ).not.toThrow();
  });

  it('checks --endpoint-url and fills defaults', () => {
    expect(usage(() => readFleetOptions({ endpointUrl: 'ftp://x' }))).toContain('http');
    expect(usage(() => readFleetOptions({ endpointUrl: 'not a url' }))).toContain('not a URL');
    const o = readFleetOptions({ regions: ['us-east-1'], endpointUrl: 'http://127.0.0.1:1234' });
    expect(o.concurrency).toBe(8);
    expect(o.maxAttempts).toBe(8);
    expect(o.allRegions).toBe(false);
  });

  it('rejects a bad --format and --concurrency at parse time', async () => {
    const r = await runInProcess(['fleet', 'discover', '--format', 'xml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--format: expected one of table, json, csv, ndjson');
    const r2 = await runInProcess(['fleet', 'discover', '--concurrency', '0']);
    expect(r2.code).toBe(2);
  });

  it('registers every fleet subcommand (change commands validate their options first)', async () => {
    const r = await runInProcess(['fleet', 'hop-limit', '65', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hop-limit <n>: 65 is out of range 1..64');
    const help = await runInProcess(['fleet', '--help']);
    for (const n of [
      'discover',
      'roles',
      'usage',
      'harden',
      'rollback',
      'templates',
      'defaults',
      'guardrails',
    ]) {
      expect(help.stdout).toContain(n);
    }
  });
});

describe('AWS error wrapping', () => {
  const svc = (name: string) =>
    Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: 400 } });

  it('maps AWS codes to stable imdsguard codes with context and hints', () => {
    const ctx = { operation: 'ec2:DescribeInstances', accountId: '123456789012', region: 'eu-west-1' };
    const expired = wrapAwsError(svc('ExpiredToken'), ctx);
    expect(expired.code).toBe('IMDSGUARD_E_AWS_AUTH');
    expect(expired.hint).toContain('refresh your SSO session');
    expect(expired.message).toBe(
      'account 123456789012 eu-west-1 ec2:DescribeInstances: ExpiredToken: ExpiredToken happened',
    );
    expect(wrapAwsError(svc('RequestExpired'), ctx).code).toBe('IMDSGUARD_E_AWS_AUTH');
    expect(wrapAwsError(svc('OptInRequired'), ctx).code).toBe('IMDSGUARD_E_AWS_REGION');
    expect(wrapAwsError(svc('UnauthorizedOperation'), ctx).code).toBe('IMDSGUARD_E_AWS_ACCESS');
    expect(wrapAwsError(svc('RequestLimitExceeded'), ctx).code).toBe('IMDSGUARD_E_AWS_THROTTLED');
    expect(wrapAwsError(svc('AccessDenied'), { operation: 'sts:AssumeRole', accountId: '1' }).code).toBe(
      'IMDSGUARD_E_AWS_ASSUME_ROLE',
    );
    expect(wrapAwsError(svc('InternalError'), ctx).code).toBe('IMDSGUARD_E_AWS');
    const wrapped = wrapAwsError(svc('InvalidInstanceID.NotFound'), { ...ctx, instanceId: 'i-1' });
    expect(wrapped.details).toMatchObject({ instanceId: 'i-1', awsCode: 'InvalidInstanceID.NotFound' });
    expect(awsErrorCode(new Error('plain'))).toBeNull();
  });
});
