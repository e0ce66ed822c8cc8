import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { compilePolicy } from '../../src/guard/policy/index.js';
import { classifyRequest } from '../../src/imds/classify.js';

/**
 * Step 1 of the policy judges the raw header list exactly as it will be forwarded: header count,
 * the whole head's size, repeats of any name in any casing, every forwarding header of the
 * configured list, the HTTP version, Metadata-Flavor when it is switched off.
 */

const LOCAL = { address: '127.0.0.1', port: 16925 };
const HOST = ['Host', '169.254.169.254'];
const TOKEN = ['X-aws-ec2-metadata-token', 'AQAEAtoken'];
const TTL = ['X-aws-ec2-metadata-token-ttl-seconds', '21600'];

function policy(guard: Record<string, unknown> = {}) {
  return compilePolicy(parseConfig({ guard }).guard, { attribution: false });
}
function req(method: string, target: string, rawHeaders: string[], httpVersion = '1.1') {
  return classifyRequest({ method, target, httpVersion, rawHeaders, local: LOCAL }, 'aws', 'x-meta-auth');
}
/** n padding headers with distinct names (a repeated name is refused on its own). */
const pad = (n: number, name = 'X-P-', value = 'x') =>
  Array.from({ length: n }, (_, i) => [`${name}${i}`, value]).flat();

describe('header count and head size', () => {
  const p = policy();
  it('more headers than limits.maxHeaderCount (32) get 431 in every mode, wherever the padding is', () => {
    expect(p.decide(req('PUT', '/latest/api/token', [...HOST, ...TTL, ...pad(30)]))).toMatchObject({
      decision: 'allow',
    });
    const d = p.decide(req('PUT', '/latest/api/token', [...HOST, ...TTL, ...pad(31)]));
    expect(d).toMatchObject({ decision: 'deny', rule: 'header-count', status: 431, everyMode: true });
    // a forwarding header behind padding is refused for the padding, before anything else
    const hidden = req('PUT', '/latest/api/token', [
      ...HOST,
      ...TTL,
      ...Array.from({ length: 1020 }, () => ['TE', 'x']).flat(),
      'X-Forwarded-For',
      '9',
    ]);
    expect(p.decide(hidden)).toMatchObject({ rule: 'header-count', status: 431 });
  });

  it('the configured count holds', () => {
    const q = policy({ limits: { maxHeaderCount: 8 } });
    expect(q.decide(req('GET', '/latest/meta-data/', [...HOST, ...TOKEN, ...pad(6)])).decision).toBe('allow');
    expect(q.decide(req('GET', '/latest/meta-data/', [...HOST, ...TOKEN, ...pad(7)])).rule).toBe(
      'header-count',
    );
  });

  it('counts the whole head: request line, separators and CRLFs, not only names and values', () => {
    const q = policy({ limits: { maxHeaderBytes: 1024 } });
    // 24 headers of 42 bytes on the wire ("X-Pad-NN: " + 30 + CRLF) carry 38 bytes of name and value
    const padding = Array.from({ length: 24 }, (_, i) => [
      `X-Pad-${String(i).padStart(2, '0')}`,
      'a'.repeat(30),
    ]);
    const headers = [...HOST, ...TOKEN, ...padding.flat()];
    const r = req('GET', '/latest/meta-data/', headers);
    const wire = `GET /latest/meta-data/ HTTP/1.1\r\n${Array.from({ length: headers.length / 2 }, (_, i) => `${headers[2 * i]}: ${headers[2 * i + 1]}\r\n`).join('')}\r\n`;
    expect(r.headBytes).toBe(wire.length);
    expect(wire.length).toBeGreaterThan(1024);
    const namesAndValues = headers.reduce((n, h) => n + h.length, 0);
    expect(namesAndValues).toBeLessThan(1024);
    expect(q.decide(r)).toMatchObject({ rule: 'header-overflow', status: 431, everyMode: true });
  });
});

describe('a repeated header is refused in every mode, whatever its name or casing', () => {
  const p = policy({ authSecret: 'guard-secret-1234' });
  const cases: Array<[string, string[]]> = [
    ['Host twice', ['Host', '169.254.169.254', 'host', 'evil.example', ...TOKEN]],
    ['the token twice', [...HOST, ...TOKEN, 'x-aws-ec2-metadata-token', 'AQAEAother']],
    ['a blank then a real token', [...HOST, 'X-aws-ec2-metadata-token', '', ...TOKEN]],
    ['the secret twice', [...HOST, 'X-Meta-Auth', 'guard-secret-1234', 'x-meta-auth', 'wrong']],
    ['Accept in two casings', [...HOST, ...TOKEN, 'Accept', 'x', 'accept', 'y']],
    ['Content-Length twice', [...HOST, ...TOKEN, 'Content-Length', '0', 'Content-Length', '0']],
  ];
  for (const [label, headers] of cases) {
    it(label, () => {
      expect(p.decide(req('GET', '/latest/meta-data/', headers))).toMatchObject({
        decision: 'deny',
        rule: 'duplicate-header',
        status: 400,
        everyMode: true,
      });
    });
  }
  it('the TTL twice on a token PUT', () => {
    const d = p.decide(
      req('PUT', '/latest/api/token', [...HOST, ...TTL, 'x-aws-ec2-metadata-token-ttl-seconds', '1']),
    );
    expect(d.rule).toBe('duplicate-header');
  });
});

describe('forwarding headers', () => {
  const p = policy();
  const names = [
    'X-Forwarded-For',
    'Forwarded',
    'X-Forwarded-Host',
    'X-Forwarded-Proto',
    'X-Forwarded-Port',
    'X-Original-Forwarded-For',
    'Via',
    'X-Real-IP',
    'True-Client-IP',
    'X-Client-IP',
    'CF-Connecting-IP',
    'x_forwarded_for',
    'VIA',
  ];
  for (const name of names) {
    it(`${name} on a token PUT is refused (403), also when empty`, () => {
      for (const value of ['203.0.113.7', '']) {
        expect(p.decide(req('PUT', '/latest/api/token', [...HOST, ...TTL, name, value]))).toMatchObject({
          decision: 'deny',
          rule: 'forwarding-header',
          status: 403,
          everyMode: false,
        });
      }
    });
  }
  it('the list is configurable: a name left out is forwarded, a name added is refused', () => {
    const q = policy({ forwardingHeaders: ['X-Forwarded-For', 'X-Custom-Proxy'] });
    expect(q.decide(req('PUT', '/latest/api/token', [...HOST, ...TTL, 'Via', '1.1 proxy'])).decision).toBe(
      'allow',
    );
    expect(q.decide(req('PUT', '/latest/api/token', [...HOST, ...TTL, 'X-Custom-Proxy', 'a'])).rule).toBe(
      'forwarding-header',
    );
  });
});

describe('request line', () => {
  const p = policy();
  it('HTTP/1.0 is judged like 1.1; other versions get 505', () => {
    expect(p.decide(req('GET', '/latest/meta-data/', [...HOST, ...TOKEN], '1.0')).decision).toBe('allow');
    for (const v of ['0.9', '2.0', '1.2']) {
      expect(p.decide(req('GET', '/latest/meta-data/', [...HOST, ...TOKEN], v))).toMatchObject({
        rule: 'http-version',
        status: 505,
        everyMode: true,
      });
    }
  });
  it('an absolute-form target is refused in every mode', () => {
    const d = p.decide(req('GET', 'http://169.254.169.254/latest/meta-data/', [...HOST, ...TOKEN]));
    expect(d).toMatchObject({ rule: 'absolute-form', everyMode: true });
  });
  it('Host forms: port, trailing dot, IPv6 literal and case are metadata addresses; others are not', () => {
    for (const host of ['169.254.169.254:80', '169.254.169.254.', '[FD00:EC2::254]', 'INSTANCE-DATA']) {
      expect(p.decide(req('GET', '/latest/meta-data/', ['Host', host, ...TOKEN])).decision, host).toBe(
        'allow',
      );
    }
    for (const host of [
      '169.254.169.254:8080',
      '0xa9fea9fe',
      'user@169.254.169.254',
      '',
      '169.254.169.254 x',
    ]) {
      expect(p.decide(req('GET', '/latest/meta-data/', ['Host', host, ...TOKEN])).rule, host).toBe('host');
    }
  });
});

describe('guard.allowMetadataFlavorAmazon', () => {
  const v1 = req('GET', '/latest/meta-data/', [...HOST, 'Metadata-Flavor', 'Amazon']);
  it('allows a tokenless request with the header by default', () => {
    expect(policy().decide(v1)).toMatchObject({ decision: 'allow', rule: 'metadata-flavor' });
  });
  it('false: the header allows nothing', () => {
    expect(policy({ allowMetadataFlavorAmazon: false }).decide(v1)).toMatchObject({
      decision: 'deny',
      rule: 'default-deny-v1',
    });
  });
});

describe('a blank token is no token', () => {
  const p = policy({ requireV2: true });
  it('under requireV2 it is refused like a tokenless request', () => {
    for (const blank of ['', '  ', '\t']) {
      const r = req('GET', '/latest/meta-data/iam/security-credentials/', [
        ...HOST,
        'X-aws-ec2-metadata-token',
        blank,
      ]);
      expect(p.decide(r)).toMatchObject({ decision: 'deny', rule: 'require-v2', status: 401 });
    }
  });
  it('it does not escape a version rule', () => {
    const q = policy({ rules: [{ name: 'no-v1', version: 'v1', action: 'deny' }] });
    const r = req('GET', '/latest/meta-data/', [
      ...HOST,
      'User-Agent',
      'aws-cli/2',
      'X-aws-ec2-metadata-token',
      ' ',
    ]);
    expect(q.decide(r)).toMatchObject({ decision: 'deny', rule: 'no-v1' });
  });
});
