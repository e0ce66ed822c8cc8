import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import type { Caller } from '../../src/guard/attribution/types.js';
import { compilePolicy } from '../../src/guard/policy/index.js';
import { classifyRequest } from '../../src/imds/classify.js';
import type { Flavor } from '../../src/imds/flavors.js';
import { type HeaderMap, rawHeaderList } from '../support/header-list.js';

function policy(guard: Record<string, unknown> = {}, attribution = true) {
  const cfg = parseConfig({ guard });
  return { p: compilePolicy(cfg.guard, { attribution }), cfg };
}

const LOCAL = { address: '127.0.0.1', port: 16925 };
const TOKEN = { 'x-aws-ec2-metadata-token': 'AQAEAtoken' };

function req(
  method: string,
  target: string,
  headers: HeaderMap = {},
  flavor: Flavor = 'aws',
  rawHeaders?: string[],
) {
  const h: HeaderMap = { host: '169.254.169.254', ...headers };
  return classifyRequest(
    { method, target, rawHeaders: rawHeaders ?? rawHeaderList(h), local: LOCAL },
    flavor,
    'x-meta-auth',
  );
}

const tokenPut = (extra: HeaderMap = {}) =>
  req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '21600', ...extra });

const app: Caller = {
  resolved: 'full',
  pid: 10,
  exe: '/opt/app/bin/server',
  uid: 1000,
  user: 'app',
  netns: 'host',
};
const curl: Caller = {
  resolved: 'full',
  pid: 11,
  exe: '/usr/bin/curl',
  uid: 1001,
  user: 'bob',
  netns: 'host',
};
const container: Caller = {
  resolved: 'full',
  pid: 12,
  exe: '/usr/bin/python3',
  uid: 0,
  user: 'root',
  container: { id: 'abc123def', runtime: 'docker' },
  netns: 'other',
};
const unknown: Caller = { resolved: 'none', error: 'permission denied reading /proc/12/exe' };
const uidOnly: Caller = { resolved: 'partial', uid: 1000, error: 'process exited' };

describe('default policy (aws, enforce), no process resolver', () => {
  const { p } = policy({}, false);

  it('allows the IMDSv2 token PUT and token-bearing GET/HEAD', () => {
    expect(p.decide(tokenPut())).toMatchObject({ decision: 'allow', rule: 'imdsv2-token' });
    expect(p.decide(req('GET', '/latest/meta-data/iam/security-credentials/r', TOKEN))).toMatchObject({
      decision: 'allow',
      rule: 'imdsv2',
    });
    expect(p.decide(req('HEAD', '/latest/meta-data/', TOKEN)).decision).toBe('allow');
  });

  it('refuses forwarding headers on token and data requests alike', () => {
    for (const name of ['x-forwarded-for', 'forwarded', 'x-forwarded-host']) {
      const d = p.decide(tokenPut({ [name]: '10.1.2.3' }));
      expect(d).toMatchObject({ decision: 'deny', rule: 'forwarding-header', status: 403, alert: true });
      expect(d.reason).toContain(name);
      expect(p.decide(req('GET', '/latest/meta-data/', { ...TOKEN, [name]: 'x' })).rule).toBe(
        'forwarding-header',
      );
    }
  });

  it('refuses a Host that is not a metadata address, and accepts its own and the metadata ones', () => {
    expect(p.decide(req('GET', '/latest/meta-data/', { ...TOKEN, host: 'attacker.example' }))).toMatchObject({
      decision: 'deny',
      rule: 'host',
    });
    expect(p.decide(req('GET', '/', { ...TOKEN, host: 'rebind.attacker.example:16925' })).rule).toBe('host');
    for (const host of [
      '169.254.169.254',
      '169.254.169.254:80',
      '[fd00:ec2::254]',
      'instance-data',
      'instance-data.ec2.internal.',
      '127.0.0.1:16925',
      'localhost:16925',
    ]) {
      expect(p.decide(req('GET', '/latest/meta-data/', { ...TOKEN, host })).decision, host).toBe('allow');
    }
    expect(p.decide(req('GET', '/', { ...TOKEN, host: '127.0.0.1:9999' })).rule).toBe('host');
    expect(p.decide(req('GET', '/', { ...TOKEN, host: undefined }))).toMatchObject({
      rule: 'host',
      decision: 'deny',
    });
    expect(p.decide(req('GET', '/', { ...TOKEN, host: ['169.254.169.254', 'evil'] }))).toMatchObject({
      rule: 'duplicate-header',
      status: 400,
      everyMode: true,
    });
  });

  it('refuses other methods, and PUT outside the token path', () => {
    expect(p.decide(req('POST', '/latest/api/token', TOKEN))).toMatchObject({ rule: 'method', status: 405 });
    expect(p.decide(req('DELETE', '/latest/meta-data/', TOKEN)).rule).toBe('method');
    expect(
      p.decide(req('PUT', '/2021-03-23/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' })).rule,
    ).toBe('method');
    expect(p.decide(req('CONNECT', '169.254.169.254:80'))).toMatchObject({ rule: 'connect', status: 405 });
  });

  it('refuses a token PUT without a valid TTL', () => {
    expect(p.decide(req('PUT', '/latest/api/token'))).toMatchObject({ rule: 'token-ttl', status: 400 });
    for (const ttl of ['0', '21601', 'abc', '-1', '1e3']) {
      expect(p.decide(tokenPut({ 'x-aws-ec2-metadata-token-ttl-seconds': ttl })).rule, ttl).toBe('token-ttl');
    }
  });

  it('refuses absolute-form, malformed paths and ambiguous framing', () => {
    expect(p.decide(req('GET', 'http://169.254.169.254/latest/meta-data/', TOKEN)).rule).toBe(
      'absolute-form',
    );
    expect(p.decide(req('GET', '/latest/%zz', TOKEN)).rule).toBe('malformed-path');
    expect(
      p.decide(
        req('GET', '/latest/meta-data/', TOKEN, 'aws', [
          'Content-Length',
          '0',
          'Transfer-Encoding',
          'chunked',
        ]),
      ),
    ).toMatchObject({ rule: 'smuggling', status: 400 });
  });

  it('allows tokenless requests only from known callers', () => {
    for (const ua of [
      'Botocore/1.29.27 Python/3.11',
      'aws-cli/2.15.0',
      'aws-sdk-java/1.12',
      'Cloud-Init/23.1',
    ]) {
      expect(p.decide(req('GET', '/latest/meta-data/', { 'user-agent': ua }))).toMatchObject({
        decision: 'allow',
        rule: 'ua-allowlist',
      });
    }
    expect(p.decide(req('GET', '/latest/meta-data/', { 'metadata-flavor': 'Amazon' })).rule).toBe(
      'metadata-flavor',
    );
    const d = p.decide(req('GET', '/latest/meta-data/', { 'user-agent': 'curl/8.5.0' }));
    expect(d).toMatchObject({ decision: 'deny', rule: 'default-deny-v1', status: 401, alert: true });
    expect(p.decide(req('GET', '/latest/meta-data/')).rule).toBe('default-deny-v1');
    expect(p.decide(req('GET', '/latest/meta-data/', { 'user-agent': 'botocore/1.0' })).rule).toBe(
      'default-deny-v1',
    );
  });

  it('never needs the caller without a resolver', () => {
    expect(p.usesCaller).toBe(false);
    expect(p.needsCaller(req('GET', '/latest/meta-data/'))).toBe(false);
    expect(p.needsCaller(tokenPut())).toBe(false);
  });

  it('with a resolver, only token requests need the caller (container rule)', () => {
    const { p: q } = policy();
    expect(q.needsCaller(tokenPut())).toBe(true);
    expect(q.needsCaller(req('GET', '/latest/meta-data/', TOKEN))).toBe(false);
    expect(q.needsCaller(req('GET', '/latest/meta-data/', { 'user-agent': 'curl/8' }))).toBe(false);
    expect(q.needsCaller(tokenPut({ 'x-forwarded-for': '1.2.3.4' }))).toBe(false);
  });

  it('caller rules without a resolver fail to compile', () => {
    expect(() => policy({ allowExe: ['/usr/bin/x'] }, false)).toThrow(/no process resolver/);
  });
});

describe('the secret header', () => {
  const { p } = policy({ authSecret: 'correct horse battery' });
  it('allows a tokenless request with the right secret and refuses a wrong one', () => {
    expect(
      p.decide(req('GET', '/latest/meta-data/', { 'x-meta-auth': 'correct horse battery' })),
    ).toMatchObject({
      decision: 'allow',
      rule: 'auth-header',
    });
    const wrong = p.decide(req('GET', '/latest/meta-data/', { 'x-meta-auth': 'correct horse batterx' }));
    expect(wrong).toMatchObject({ decision: 'deny', rule: 'auth-header' });
    expect(wrong.reason).not.toContain('batter');
    expect(p.decide(req('GET', '/', { ...TOKEN, 'x-meta-auth': 'short' })).rule).toBe('auth-header');
  });
});

describe('path rules match the normalized path', () => {
  const { p } = policy({
    rules: [
      {
        name: 'creds-v2-only',
        path: '/latest/meta-data/iam/security-credentials/*',
        version: 'v1',
        action: 'deny',
      },
      { name: 'no-user-data', path: '/latest/user-data', action: 'deny', reason: 'user-data is off limits' },
    ],
  });
  const ua = { 'user-agent': 'aws-cli/2.0' };
  it.each([
    '/latest/meta-data/iam/security-credentials/',
    '/latest/meta-data/iam/security-credentials',
    '/latest/meta-data/iam/security-credentials/role',
    '/latest/meta-data/iam/%73ecurity-credentials/role',
    '/latest/meta-data/iam/info/..%2Fsecurity-credentials/role',
    '/latest/meta-data/iam/info/%2e%2e/security-credentials/',
    '//latest//meta-data/iam/security-credentials//role',
    '/latest/meta-data/IAM/Security-Credentials/role',
    '/latest/meta-data/iam\\security-credentials\\role',
  ])('denies %s', (target) => {
    expect(p.decide(req('GET', target, ua))).toMatchObject({
      decision: 'deny',
      rule: 'creds-v2-only',
      status: 403,
    });
  });
  it('lets other paths and IMDSv2 through', () => {
    expect(p.decide(req('GET', '/latest/meta-data/iam/info', ua)).rule).toBe('ua-allowlist');
    expect(p.decide(req('GET', '/latest/meta-data/iam/security-credentials/role', TOKEN)).rule).toBe(
      'imdsv2',
    );
    expect(p.decide(req('GET', '/latest/user-data/', TOKEN))).toMatchObject({
      rule: 'no-user-data',
      reason: 'user-data is off limits',
    });
    expect(p.decide(req('GET', '/latest/user-datax', TOKEN)).rule).toBe('imdsv2');
  });
});

describe('caller rules', () => {
  const { p } = policy({
    allowExe: ['/opt/app/*'],
    allowUser: ['deploy', 0],
    rules: [
      {
        name: 'creds-app-only',
        path: '/latest/meta-data/iam/security-credentials/',
        exe: '/opt/app/**',
        action: 'allow',
      },
      { name: 'creds-deny', path: '/latest/meta-data/iam/security-credentials/', action: 'deny' },
      { name: 'no-curl', exe: '/usr/bin/curl', action: 'deny' },
    ],
  });
  const creds = () => req('GET', '/latest/meta-data/iam/security-credentials/r', TOKEN);

  it('needs the caller only when a rule can depend on it', () => {
    expect(p.usesCaller).toBe(true);
    expect(p.needsCaller(creds())).toBe(true);
    expect(p.needsCaller(req('GET', '/', { ...TOKEN, 'x-forwarded-for': '1' }))).toBe(false);
    expect(p.needsCaller(req('GET', '/latest/meta-data/', TOKEN))).toBe(true); // no-curl applies everywhere
  });

  it('allows by exe prefix and denies others', () => {
    expect(p.decide(creds(), app)).toMatchObject({ decision: 'allow', rule: 'creds-app-only' });
    expect(p.decide(creds(), curl)).toMatchObject({ decision: 'deny', rule: 'creds-deny' });
    expect(p.decide(req('GET', '/latest/meta-data/', TOKEN), curl)).toMatchObject({
      decision: 'deny',
      rule: 'no-curl',
    });
    expect(p.decide(req('GET', '/latest/meta-data/', TOKEN), app).rule).toBe('imdsv2');
  });

  it('fails closed when attribution failed', () => {
    const d = p.decide(creds(), unknown);
    expect(d).toMatchObject({ decision: 'deny', rule: 'attribution-required', status: 403 });
    expect(d.reason).toContain('permission denied reading /proc/12/exe');
    expect(p.decide(creds()).rule).toBe('attribution-required');
    expect(p.decide(creds()).reason).toContain('attribution did not run');
  });

  it('lets allowed exes and users make tokenless requests', () => {
    const v1 = req('GET', '/latest/meta-data/instance-id', { 'user-agent': 'curl/8' });
    expect(p.decide(v1, { ...app, exe: '/opt/app/lib/agent' })).toMatchObject({
      decision: 'allow',
      rule: 'allowed-caller',
    });
    expect(p.decide(v1, { resolved: 'full', exe: '/usr/bin/wget', uid: 0, netns: 'host' }).rule).toBe(
      'allowed-caller',
    );
    expect(
      p.decide(v1, { resolved: 'full', exe: '/usr/bin/wget', uid: 7, user: 'deploy', netns: 'host' }).rule,
    ).toBe('allowed-caller');
    expect(
      p.decide(v1, { resolved: 'full', exe: '/usr/bin/wget', uid: 7, user: 'x', netns: 'host' }).rule,
    ).toBe('default-deny-v1');
    // a uid alone does not say whether the user is named "deploy"
    expect(p.decide(v1, { resolved: 'partial', uid: 7, exe: '/usr/bin/wget' }).rule).toBe(
      'attribution-required',
    );
    // the UA allowlist does not need the caller
    expect(p.needsCaller(req('GET', '/latest/meta-data/instance-id', { 'user-agent': 'Botocore/1' }))).toBe(
      true,
    );
  });

  it('user rules by uid work with a partial caller', () => {
    const { p: q } = policy({ rules: [{ user: 1000, action: 'deny', name: 'uid-1000' }] });
    expect(q.decide(req('GET', '/', TOKEN), uidOnly).rule).toBe('uid-1000');
    expect(q.decide(req('GET', '/', TOKEN), { resolved: 'partial', uid: 5 }).rule).toBe('imdsv2');
  });

  it('matches the parent executable and containers', () => {
    const { p: q } = policy({
      rules: [
        { parentExe: '/usr/sbin/cron', action: 'deny', name: 'no-cron' },
        { container: ['abc'], action: 'allow', name: 'trusted-container' },
        { container: true, path: '/latest/user-data', action: 'deny', name: 'no-container-userdata' },
      ],
    });
    const child: Caller = {
      ...app,
      parents: [
        { pid: 2, exe: '/bin/sh' },
        { pid: 1, exe: '/usr/sbin/cron' },
      ],
    };
    expect(q.decide(req('GET', '/', TOKEN), child).rule).toBe('no-cron');
    expect(q.decide(req('GET', '/', TOKEN), { ...app, parents: [] }).rule).toBe('imdsv2');
    expect(q.decide(req('GET', '/latest/user-data', TOKEN), { ...container, parents: [] }).rule).toBe(
      'trusted-container',
    );
    const other: Caller = { ...container, container: { id: 'zzz', runtime: 'docker' }, parents: [] };
    expect(q.decide(req('GET', '/latest/user-data', TOKEN), other).rule).toBe('no-container-userdata');
  });
});

describe('token requests and the socket-derived namespace', () => {
  const { p } = policy({ allowExe: ['/usr/local/bin/agent'] });
  const put = (ns: 'host' | 'other') =>
    classifyRequest(
      {
        method: 'PUT',
        target: '/latest/api/token',
        rawHeaders: ['host', '169.254.169.254', 'x-aws-ec2-metadata-token-ttl-seconds', '60'],
        local: LOCAL,
        clientNetns: ns,
      },
      'aws',
      'x-meta-auth',
    );
  it('a client at one of the host addresses needs no attribution and is allowed even if attribution failed', () => {
    expect(p.needsCaller(put('host'))).toBe(false);
    expect(p.decide(put('host'), unknown).rule).toBe('imdsv2-token');
    expect(p.decide(put('host')).rule).toBe('imdsv2-token');
  });
  it('a client from another namespace is refused unless allowed, and needs the caller to know', () => {
    expect(p.needsCaller(put('other'))).toBe(true);
    expect(p.decide(put('other'), unknown)).toMatchObject({ decision: 'deny', rule: 'container-token' });
    expect(p.decide(put('other'))).toMatchObject({ decision: 'deny', rule: 'container-token' });
    expect(p.decide(put('other'), { ...container, exe: '/usr/local/bin/agent' }).rule).toBe('imdsv2-token');
  });
});

describe('token requests from containers', () => {
  it('are refused unless the caller is allowed, once attribution is on', () => {
    const { p } = policy({ allowExe: ['/usr/local/bin/agent'] });
    expect(p.needsCaller(tokenPut())).toBe(true);
    expect(p.decide(tokenPut(), container)).toMatchObject({
      decision: 'deny',
      rule: 'container-token',
      status: 403,
    });
    expect(p.decide(tokenPut(), { ...container, exe: '/usr/local/bin/agent' }).rule).toBe('imdsv2-token');
    expect(p.decide(tokenPut(), app).rule).toBe('imdsv2-token');
    expect(p.decide(tokenPut(), unknown).rule).toBe('attribution-required');
    expect(p.decide(tokenPut(), { resolved: 'partial', uid: 1, netns: 'other' }).rule).toBe(
      'container-token',
    );
  });
  it('are allowed with containerTokens: allow or when attribution is off', () => {
    expect(policy({ containerTokens: 'allow' }).p.decide(tokenPut(), container).rule).toBe('imdsv2-token');
    const off = policy({ attribution: { enabled: false } }).p;
    expect(policy({}).p.decide(tokenPut(), { resolved: 'partial', uid: 3, netns: 'host' }).rule).toBe(
      'imdsv2-token',
    );
    expect(off.usesCaller).toBe(false);
    expect(off.decide(tokenPut()).rule).toBe('imdsv2-token');
  });
});

describe('requireV2', () => {
  const { p } = policy({ requireV2: true, allowUser: ['ops'], authSecret: 'a-long-secret' });
  it('refuses tokenless requests except from allowed callers, even with an allowed User-Agent', () => {
    const v1 = req('GET', '/latest/meta-data/', { 'user-agent': 'aws-cli/2' });
    expect(p.decide(v1, app)).toMatchObject({ decision: 'deny', rule: 'require-v2', status: 401 });
    expect(p.decide(v1, { ...app, user: 'ops' }).rule).toBe('allowed-caller');
    expect(p.decide(v1, unknown).rule).toBe('attribution-required');
    expect(p.decide(req('GET', '/', { 'x-meta-auth': 'a-long-secret' }), app).rule).toBe('auth-header');
    expect(p.decide(req('GET', '/', TOKEN), app).rule).toBe('imdsv2');
  });
});

describe('flavour-aware defaults', () => {
  it('gcp requires Metadata-Flavor: Google', () => {
    const { p } = policy({ flavor: 'gcp' });
    const ok = req(
      'GET',
      '/computeMetadata/v1/instance/id',
      { 'metadata-flavor': 'Google', host: 'metadata.google.internal' },
      'gcp',
    );
    expect(p.decide(ok)).toMatchObject({ decision: 'allow', rule: 'imdsv2' });
    const no = req('GET', '/computeMetadata/v1/instance/id', { 'user-agent': 'aws-cli/1' }, 'gcp');
    expect(p.decide(no)).toMatchObject({ decision: 'deny', rule: 'required-header', status: 403 });
    expect(p.decide(req('PUT', '/latest/api/token', { 'metadata-flavor': 'Google' }, 'gcp')).rule).toBe(
      'method',
    );
  });
  it('azure and oci use their headers and statuses', () => {
    expect(
      policy({ flavor: 'azure' }).p.decide(
        req('GET', '/metadata/instance?api-version=2021-02-01', {}, 'azure'),
      ).status,
    ).toBe(400);
    expect(
      policy({ flavor: 'azure' }).p.decide(
        req('GET', '/metadata/instance?api-version=2021-02-01', { metadata: 'true' }, 'azure'),
      ).rule,
    ).toBe('imdsv2');
    expect(policy({ flavor: 'oci' }).p.decide(req('GET', '/opc/v2/instance/', {}, 'oci')).status).toBe(401);
    expect(
      policy({ flavor: 'oci' }).p.decide(
        req('GET', '/opc/v2/instance/', { authorization: 'Bearer Oracle' }, 'oci'),
      ).rule,
    ).toBe('imdsv2');
  });
  it('alibaba uses its own address and token headers', () => {
    const { p } = policy({ flavor: 'alibaba' });
    const put = req(
      'PUT',
      '/latest/api/token',
      { host: '100.100.100.200', 'x-aliyun-ecs-metadata-token-ttl-seconds': '60' },
      'alibaba',
    );
    expect(p.decide(put, app).rule).toBe('imdsv2-token');
    expect(p.decide(req('GET', '/latest/meta-data/', { host: '169.254.169.254' }, 'alibaba')).rule).toBe(
      'host',
    );
    expect(
      p.decide(
        req('GET', '/latest/meta-data/', { host: '100.100.100.200', 'user-agent': 'curl/8' }, 'alibaba'),
      ).rule,
    ).toBe('default-deny-v1');
  });
  it('digitalocean has no token scheme: tokenless allowed unless requireV2', () => {
    expect(
      policy({ flavor: 'digitalocean' }).p.decide(req('GET', '/metadata/v1/id', {}, 'digitalocean')).rule,
    ).toBe('no-token-scheme');
    expect(
      policy({ flavor: 'digitalocean', requireV2: true }).p.decide(
        req('GET', '/metadata/v1/id', {}, 'digitalocean'),
        app,
      ).rule,
    ).toBe('require-v2');
  });
});

describe('compile-time errors', () => {
  it('refuses caller rules when attribution is off, quoting the rule', () => {
    expect(() =>
      policy({ attribution: { enabled: false }, rules: [{ exe: '/bin/x', action: 'deny', name: 'x' }] }),
    ).toThrow(/guard\.rules\[0\] \(x\) needs the caller's executable/);
    expect(() => policy({ attribution: { enabled: false }, allowUser: ['a'] })).toThrow(/attribution/);
  });
});
