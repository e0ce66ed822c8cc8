/**
 * An endpoint that does not support a call (an HTML 500, an answer that is not AWS
 * XML, InvalidAction) is classified once as unsupported, not retried, and said so, through the real
 * CLI code and the real SDK against fake-aws.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { unsupportedReason } from '../../src/fleet/aws/unsupported.js';
import { runInProcess } from '../support/cli.js';
import { mixedUsageFleet, onlyKinds } from '../support/fake-aws/cloudwatch.js';
import { type FakeAws, fakeCredentialsEnv, startFakeAws } from '../support/fake-aws/index.js';

// Whole commands run in-process against fake-aws over HTTP through the real SDK (whose first import
// the first test pays): seconds each on a quiet machine, many times that on a loaded one.
vi.setConfig({ testTimeout: 60_000 });

let aws: FakeAws | undefined;

afterEach(async () => {
  await aws?.close();
  aws = undefined;
});

const HTML =
  '<html><head><title>500 Internal Server Error</title></head><body><h1>Oops</h1><br></body></html>';

interface Failure {
  accountId: string | null;
  region: string | null;
  stage: string;
  code: string;
  message: string;
  hint: string | null;
}

async function discover(a: FakeAws, regions: string) {
  const r = await runInProcess(
    [
      'fleet',
      'discover',
      '--endpoint-url',
      a.url,
      '--regions',
      regions,
      '--format',
      'json',
      '--fail-on',
      'none',
    ],
    { env: fakeCredentialsEnv('us-east-1') },
  );
  return { ...r, doc: JSON.parse(r.stdout) as { failures: Failure[]; instances: unknown[] } };
}

describe('calls an endpoint does not support', () => {
  it('an HTML 500 to GetInstanceMetadataDefaults: one call for the whole run, no retry, said plainly', async () => {
    aws = await startFakeAws({ generate: { regions: ['us-east-1', 'eu-west-1'], instancesPerRegion: 5 } });
    aws.faults.raw({
      action: 'GetInstanceMetadataDefaults',
      status: 500,
      contentType: 'text/html',
      body: HTML,
    });
    const r = await discover(aws, 'us-east-1,eu-west-1');
    expect(r.code).toBe(1);
    // Not retried (the SDK would make 8 attempts per region): at most one call per region, fewer when
    // one region's answer is known before the other region asks the same endpoint.
    expect(aws.calls.count({ action: 'GetInstanceMetadataDefaults' })).toBeLessThanOrEqual(2);
    const f = r.doc.failures.filter((x) => x.stage === 'account-defaults');
    expect(f.map((x) => x.region).sort()).toEqual(['eu-west-1', 'us-east-1']);
    for (const x of f) {
      expect(x.code).toBe('IMDSGUARD_E_AWS_UNSUPPORTED');
      expect(x.message).toContain('GetInstanceMetadataDefaults is not supported by this endpoint');
      expect(x.message).toContain('HTML');
      expect(x.message).not.toMatch(/mismatched tags/);
    }
    // Everything else was scanned.
    expect(r.doc.instances).toHaveLength(10);
    expect(r.stderr).toContain('GetInstanceMetadataDefaults is not supported by this endpoint');
  });

  it('a 200 whose body is not AWS XML, and InvalidAction: unsupported, one call each', async () => {
    aws = await startFakeAws({ generate: { instancesPerRegion: 3 } });
    aws.faults.raw({
      action: 'DescribeLaunchTemplates',
      status: 200,
      contentType: 'text/xml',
      body: '<DescribeLaunchTemplatesResponse><launchTemplates><item></launchTemplates>',
    });
    aws.faults.fail({
      action: 'GetInstanceMetadataDefaults',
      code: 'InvalidAction',
      status: 400,
      message: 'The action GetInstanceMetadataDefaults is not valid for this web service.',
    });
    const r = await discover(aws, 'us-east-1');
    expect(aws.calls.count({ action: 'DescribeLaunchTemplates' })).toBe(1);
    expect(aws.calls.count({ action: 'GetInstanceMetadataDefaults' })).toBe(1);
    const byStage = new Map(r.doc.failures.map((x) => [x.stage, x]));
    expect(byStage.get('launch-templates')).toMatchObject({ code: 'IMDSGUARD_E_AWS_UNSUPPORTED' });
    expect(byStage.get('launch-templates')?.message).toContain(
      'DescribeLaunchTemplates is not supported by this endpoint',
    );
    expect(byStage.get('account-defaults')?.message).toContain(
      'GetInstanceMetadataDefaults is not supported by this endpoint',
    );
    expect(byStage.get('account-defaults')?.message).toContain('InvalidAction');
  });

  it('CloudWatch (JSON protocol) answering an HTML 500: usage says unsupported after one call', async () => {
    const m = mixedUsageFleet({ nowMs: Date.now(), perRegion: onlyKinds({ quiet: 2, v1: 1 }) });
    aws = await startFakeAws({ fleet: m.fleet });
    aws.faults.raw({ action: 'GetMetricData', status: 500, contentType: 'text/html', body: HTML });
    const r = await runInProcess(['fleet', 'usage', '--endpoint-url', aws.url, '--format', 'json'], {
      env: fakeCredentialsEnv('us-east-1'),
    });
    expect(r.code).toBe(1);
    expect(aws.calls.count({ action: 'GetMetricData' })).toBe(1);
    const doc = JSON.parse(r.stdout) as { failures: Failure[]; counts: Record<string, number> };
    expect(doc.failures[0]).toMatchObject({ code: 'IMDSGUARD_E_AWS_UNSUPPORTED' });
    expect(doc.failures[0]?.message).toContain('GetMetricData is not supported by this endpoint');
    expect(doc.counts.ready).toBe(0);
  });

  it('a real 500 InternalError (AWS XML) is not unsupported: it stays retryable', () => {
    expect(
      unsupportedReason({
        name: 'InternalError',
        message: 'An internal error has occurred',
        $metadata: { httpStatusCode: 500 },
        $response: { statusCode: 500, headers: { 'content-type': 'text/xml;charset=UTF-8' } },
      }),
    ).toBeNull();
    expect(
      unsupportedReason({
        name: 'RequestLimitExceeded',
        message: 'Request limit exceeded.',
        $metadata: { httpStatusCode: 503 },
      }),
    ).toBeNull();
    expect(unsupportedReason(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBeNull();
  });
});
