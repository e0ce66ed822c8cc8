import { describe, expect, it } from 'vitest';
import { classifyRequest, framingProblem } from '../../src/imds/classify.js';
import { rawHeaderList } from '../support/header-list.js';

const base = { host: '169.254.169.254' };

describe('classifyRequest', () => {
  it('classifies the AWS token PUT, token-bearing GETs and tokenless GETs', () => {
    const put = classifyRequest(
      {
        method: 'PUT',
        target: '/latest/api/token',
        rawHeaders: rawHeaderList({ ...base, 'x-aws-ec2-metadata-token-ttl-seconds': '21600' }),
      },
      'aws',
      'x-meta-auth',
    );
    expect(put.version).toBe('token');
    expect(put.ttl).toBe('21600');
    const v2 = classifyRequest(
      {
        method: 'GET',
        target: '/latest/meta-data/',
        rawHeaders: rawHeaderList({ ...base, 'x-aws-ec2-metadata-token': 'T' }),
      },
      'aws',
      'x-meta-auth',
    );
    expect(v2.version).toBe('v2');
    expect(v2.hasToken).toBe(true);
    expect(JSON.stringify(v2)).not.toContain('"T"');
    const v1 = classifyRequest(
      { method: 'GET', target: '/latest/meta-data/', rawHeaders: rawHeaderList(base) },
      'aws',
      'x-meta-auth',
    );
    expect(v1.version).toBe('v1');
  });

  it('a GET on the token path is not a token request', () => {
    const r = classifyRequest(
      { method: 'GET', target: '/latest/api/token', rawHeaders: rawHeaderList(base) },
      'aws',
      'x-meta-auth',
    );
    expect(r.version).toBe('v1');
    expect(r.tokenPath).toBe(true);
  });

  it('uses the flavour scheme: Alibaba tokens and the GCP required header', () => {
    const ali = classifyRequest(
      {
        method: 'PUT',
        target: '/latest/api/token',
        rawHeaders: rawHeaderList({
          host: '100.100.100.200',
          'x-aliyun-ecs-metadata-token-ttl-seconds': '60',
        }),
      },
      'alibaba',
      'x-meta-auth',
    );
    expect(ali.version).toBe('token');
    expect(ali.ttl).toBe('60');
    const awsHeaderOnAli = classifyRequest(
      {
        method: 'GET',
        target: '/latest/meta-data/',
        rawHeaders: rawHeaderList({ ...base, 'x-aws-ec2-metadata-token': 'x' }),
      },
      'alibaba',
      'x-meta-auth',
    );
    expect(awsHeaderOnAli.version).toBe('v1');
    const gcp = classifyRequest(
      {
        method: 'GET',
        target: '/computeMetadata/v1/',
        rawHeaders: rawHeaderList({ ...base, 'metadata-flavor': 'Google' }),
      },
      'gcp',
      'x-meta-auth',
    );
    expect(gcp.version).toBe('v2');
    const gcpNo = classifyRequest(
      { method: 'GET', target: '/computeMetadata/v1/', rawHeaders: rawHeaderList(base) },
      'gcp',
      'x-meta-auth',
    );
    expect(gcpNo.version).toBe('v1');
    const d = classifyRequest(
      { method: 'GET', target: '/metadata/v1/', rawHeaders: rawHeaderList(base) },
      'digitalocean',
      'x-meta-auth',
    );
    expect(d.version).toBe('v1');
  });

  it('lists every header name from the raw list, finds repeats in any casing, reads the secret and Metadata-Flavor', () => {
    const r = classifyRequest(
      {
        method: 'GET',
        target: '/latest/meta-data/',
        rawHeaders: rawHeaderList({
          host: ['a', 'b'],
          'x-forwarded-for': '10.0.0.1',
          forwarded: 'for=1.2.3.4',
          'x-meta-auth': 's3cret-value',
          'metadata-flavor': 'Amazon',
        }),
      },
      'aws',
      'x-meta-auth',
    );
    expect(r.names).toEqual([
      'host',
      'host',
      'x-forwarded-for',
      'forwarded',
      'x-meta-auth',
      'metadata-flavor',
    ]);
    expect(r.duplicates).toEqual(['host']);
    expect(r.host).toBe('a');
    expect(r.headerCount).toBe(6);
    expect(r.authValue).toBe('s3cret-value');
    expect(r.metadataFlavorAmazon).toBe(true);
  });

  it('sees a second casing of a name as a repeat, and counts the whole head', () => {
    const rawHeaders = ['Host', '169.254.169.254', 'Accept', 'x', 'accept', 'y'];
    const r = classifyRequest({ method: 'GET', target: '/latest/', rawHeaders }, 'aws', 'x-meta-auth');
    expect(r.duplicates).toEqual(['accept']);
    const head = 'GET /latest/ HTTP/1.1\r\nHost: 169.254.169.254\r\nAccept: x\r\naccept: y\r\n\r\n';
    expect(r.headBytes).toBe(head.length);
  });

  it('a blank token header is no token', () => {
    for (const blank of ['', '   ', '\t']) {
      const r = classifyRequest(
        {
          method: 'GET',
          target: '/latest/meta-data/',
          rawHeaders: ['Host', '169.254.169.254', 'X-aws-ec2-metadata-token', blank],
        },
        'aws',
        'x-meta-auth',
      );
      expect(r.version, JSON.stringify(blank)).toBe('v1');
      expect(r.hasToken).toBe(false);
    }
  });

  it('marks unparseable targets unknown', () => {
    const r = classifyRequest(
      { method: 'GET', target: '/latest/%zz', rawHeaders: rawHeaderList(base) },
      'aws',
      'x-meta-auth',
    );
    expect(r.version).toBe('unknown');
    expect(r.pathError).toBeDefined();
  });
});

describe('framingProblem', () => {
  it('flags CL with TE, duplicate CL, duplicate TE and non-chunked TE', () => {
    expect(framingProblem(['Content-Length', '0', 'Transfer-Encoding', 'chunked'])).toContain('both');
    expect(framingProblem(['Content-Length', '0', 'content-length', '0'])).toContain(
      'duplicate Content-Length',
    );
    expect(framingProblem(['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'])).toContain(
      'duplicate',
    );
    expect(framingProblem(['Transfer-Encoding', 'gzip'])).toContain('unsupported');
    expect(framingProblem(['Content-Length', '5', 'Host', 'x'])).toBeUndefined();
    expect(framingProblem(['Transfer-Encoding', 'chunked'])).toBeUndefined();
  });
});
