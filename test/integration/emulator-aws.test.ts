import { request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulator, defaultInstance } from '../../src/emulator/index.js';
import { isImdsguardError } from '../../src/errors.js';
import { getToken, raw, startEmulator, stopEmulators, TOKEN, TTL } from '../support/emulator-http.js';

afterEach(stopEmulators);

describe.each([
  ['IPv4', '127.0.0.1'],
  ['IPv6', '::1'],
])('AWS emulator over %s', (_label, host) => {
  it('issues a token and serves metadata with the remaining TTL and Connection: close', async () => {
    const e = await startEmulator({ listen: [{ host, port: 0 }] });
    expect(e.addresses[0]?.host).toBe(host);
    const put = await raw(`${e.url}/latest/api/token`, { method: 'PUT', headers: { [TTL]: '300' } });
    expect(put.status).toBe(200);
    expect(put.headers[TTL]).toBe('300');
    expect(put.headers['connection']).toBe('close');
    expect(put.body).toMatch(/^AQAEA[A-Za-z0-9+/]+=*$/);
    const get = await raw(`${e.url}/latest/meta-data/instance-id`, { headers: { [TOKEN]: put.body } });
    expect(get.status).toBe(200);
    expect(get.body).toBe(defaultInstance().instanceId);
    expect(get.headers['connection']).toBe('close');
    expect(Number(get.headers[TTL])).toBeGreaterThan(295);
    expect(Number(get.headers[TTL])).toBeLessThanOrEqual(300);
  });
});

describe('AWS emulator status codes', () => {
  it('400 for a token PUT without a TTL, with a non-integer TTL, or out of range', async () => {
    const e = await startEmulator();
    for (const ttl of [undefined, '0', '21601', 'abc', '1.5', '-1', '']) {
      const headers: Record<string, string> = ttl === undefined ? {} : { [TTL]: ttl };
      const r = await raw(`${e.url}/latest/api/token`, { method: 'PUT', headers });
      expect(r.status, `ttl=${String(ttl)}`).toBe(400);
      expect(r.headers['content-type']).toBe('text/html');
    }
    for (const ttl of ['1', '21600']) {
      const r = await raw(`${e.url}/latest/api/token`, { method: 'PUT', headers: { [TTL]: ttl } });
      expect(r.status).toBe(200);
    }
  });

  it('405 with Allow: OPTIONS, PUT for a GET on the token path', async () => {
    const e = await startEmulator();
    const r = await raw(`${e.url}/latest/api/token`);
    expect(r.status).toBe(405);
    expect(r.headers['allow']).toBe('OPTIONS, PUT');
    const head = await raw(`${e.url}/latest/api/token`, { method: 'HEAD' });
    expect(head.status).toBe(405);
    const options = await raw(`${e.url}/latest/api/token`, { method: 'OPTIONS' });
    expect(options.status).toBe(200);
    expect(options.headers['allow']).toBe('OPTIONS, PUT');
  });

  it('403 for a token PUT on a versioned path', async () => {
    const e = await startEmulator();
    const r = await raw(`${e.url}/2021-03-23/api/token`, { method: 'PUT', headers: { [TTL]: '60' } });
    expect(r.status).toBe(403);
  });

  it('403 for a token PUT or a token-bearing GET carrying X-Forwarded-For; a v1 GET with it is served', async () => {
    const e = await startEmulator();
    const put = await raw(`${e.url}/latest/api/token`, {
      method: 'PUT',
      headers: { [TTL]: '60', 'x-forwarded-for': '203.0.113.9' },
    });
    expect(put.status).toBe(403);
    const token = await getToken(e.url);
    const get = await raw(`${e.url}/latest/meta-data/`, {
      headers: { [TOKEN]: token, 'x-forwarded-for': '203.0.113.9' },
    });
    expect(get.status).toBe(403);
    const v1 = await raw(`${e.url}/latest/meta-data/ami-id`, {
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(v1.status).toBe(200);
  });

  it('401 without a token when tokens are required; the token PUT still works', async () => {
    const e = await startEmulator({ settings: { tokens: 'required' } });
    const r = await raw(`${e.url}/latest/meta-data/`);
    expect(r.status).toBe(401);
    expect(r.body).toContain('401 - Unauthorized');
    const token = await getToken(e.url);
    expect((await raw(`${e.url}/latest/meta-data/`, { headers: { [TOKEN]: token } })).status).toBe(200);
  });

  it('401 for an invalid token, in both token modes', async () => {
    for (const tokens of ['optional', 'required'] as const) {
      const e = await startEmulator({ settings: { tokens } });
      const good = await getToken(e.url);
      const forged = `${good.slice(0, -6)}${good.slice(-6, -3) === 'AAA' ? 'BBB' : 'AAA'}${good.slice(-3)}`;
      for (const bad of ['not-a-token', forged, 'A'.repeat(5000)]) {
        const r = await raw(`${e.url}/latest/meta-data/`, { headers: { [TOKEN]: bad } });
        expect(r.status, tokens).toBe(401);
      }
      // A token from another emulator instance is not valid here.
      const other = await startEmulator();
      const foreign = await getToken(other.url);
      expect((await raw(`${e.url}/latest/meta-data/`, { headers: { [TOKEN]: foreign } })).status).toBe(401);
    }
  });

  it('401 for an expired token (injected clock)', async () => {
    let now = Date.parse('2026-06-01T00:00:00Z');
    const e = await startEmulator({ now: () => now });
    const token = await getToken(e.url, 10);
    now += 9_000;
    const ok = await raw(`${e.url}/latest/meta-data/ami-id`, { headers: { [TOKEN]: token } });
    expect(ok.status).toBe(200);
    expect(ok.headers[TTL]).toBe('1');
    now += 1_000;
    expect((await raw(`${e.url}/latest/meta-data/ami-id`, { headers: { [TOKEN]: token } })).status).toBe(401);
  });

  it('403 for everything when the endpoint is disabled', async () => {
    const e = await startEmulator({ settings: { endpoint: 'disabled' } });
    expect((await raw(`${e.url}/latest/meta-data/`)).status).toBe(403);
    expect((await raw(`${e.url}/latest/api/token`, { method: 'PUT', headers: { [TTL]: '60' } })).status).toBe(
      403,
    );
    expect((await raw(`${e.url}/nope`)).status).toBe(403);
  });

  it('404 with a small HTML body for an unknown path', async () => {
    const e = await startEmulator();
    for (const path of [
      '/latest/meta-data/nope',
      '/nope',
      '/1999-01-01/meta-data/',
      '/latest/meta-data/iam/security-credentials/other-role',
    ]) {
      const r = await raw(`${e.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.headers['content-type']).toBe('text/html');
      expect(r.body).toContain('<title>404 - Not Found</title>');
      expect(r.body.length).toBeLessThan(1024);
    }
  });

  it('405 for methods other than GET and HEAD on data paths', async () => {
    const e = await startEmulator();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await raw(`${e.url}/latest/meta-data/`, { method });
      expect(r.status, method).toBe(405);
    }
  });

  it('HEAD answers like GET without a body', async () => {
    const e = await startEmulator();
    const r = await raw(`${e.url}/latest/meta-data/instance-type`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(r.headers['content-length']).toBe(String(defaultInstance().instanceType.length));
  });
});

describe('AWS emulator data', () => {
  it('serves text/plain listings with sub-directories ending in /', async () => {
    const e = await startEmulator();
    const root = await raw(`${e.url}/`);
    expect(root.body.split('\n')).toContain('latest');
    const latest = await raw(`${e.url}/latest/`);
    expect(latest.body.split('\n')).toEqual(['dynamic', 'meta-data', 'user-data']);
    const md = await raw(`${e.url}/latest/meta-data/`);
    expect(md.headers['content-type']).toBe('text/plain');
    const entries = md.body.split('\n');
    for (const leaf of [
      'ami-id',
      'instance-id',
      'instance-type',
      'hostname',
      'local-hostname',
      'local-ipv4',
      'public-ipv4',
      'mac',
      'security-groups',
    ]) {
      expect(entries).toContain(leaf);
    }
    for (const dir of ['iam/', 'network/', 'placement/', 'tags/', 'block-device-mapping/'])
      expect(entries).toContain(dir);
    expect((await raw(`${e.url}/latest/meta-data/placement/`)).body.split('\n')).toEqual([
      'availability-zone',
      'availability-zone-id',
      'region',
    ]);
  });

  it('serves placement, network interfaces, security groups and the same data under a versioned prefix', async () => {
    const i = defaultInstance();
    const e = await startEmulator();
    const get = async (p: string) => (await raw(`${e.url}${p}`)).body;
    expect(await get('/latest/meta-data/placement/availability-zone')).toBe(i.availabilityZone);
    expect(await get('/latest/meta-data/placement/region')).toBe(i.region);
    expect(await get('/latest/meta-data/security-groups')).toBe(
      i.securityGroups.map((g) => g.name).join('\n'),
    );
    expect(await get('/latest/meta-data/network/interfaces/macs/')).toBe(`${i.mac}/`);
    expect(await get(`/latest/meta-data/network/interfaces/macs/${i.mac}/vpc-id`)).toBe(i.vpcId);
    expect(await get(`/latest/meta-data/network/interfaces/macs/${i.mac}/subnet-ipv4-cidr-block`)).toBe(
      i.subnetCidr,
    );
    expect(await get('/2021-03-23/meta-data/instance-id')).toBe(i.instanceId);
    expect(await get('/2021-03-23/meta-data/')).toBe(await get('/latest/meta-data/'));
  });

  it('serves user-data verbatim, and 404 when there is none', async () => {
    const e = await startEmulator();
    expect((await raw(`${e.url}/latest/user-data`)).body).toBe(defaultInstance().userData);
    const none = await startEmulator({ instance: { ...defaultInstance(), userData: null } });
    expect((await raw(`${none.url}/latest/user-data`)).status).toBe(404);
    expect((await raw(`${none.url}/latest/`)).body).toBe('dynamic\nmeta-data');
  });

  it('serves the identity document as JSON, and its signature', async () => {
    const i = defaultInstance();
    const e = await startEmulator();
    const doc = JSON.parse((await raw(`${e.url}/latest/dynamic/instance-identity/document`)).body);
    expect(doc).toMatchObject({
      accountId: i.accountId,
      instanceId: i.instanceId,
      imageId: i.amiId,
      region: i.region,
      availabilityZone: i.availabilityZone,
      privateIp: i.localIpv4,
      instanceType: i.instanceType,
    });
    const sig = await raw(`${e.url}/latest/dynamic/instance-identity/signature`);
    expect(sig.status).toBe(200);
    expect(sig.body.replace(/\n/g, '')).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it('serves tags only when instance metadata tags are enabled', async () => {
    const on = await startEmulator({ instance: { ...defaultInstance(), instanceMetadataTags: 'enabled' } });
    expect((await raw(`${on.url}/latest/meta-data/tags/instance/`)).body).toBe('Name\nEnvironment');
    expect((await raw(`${on.url}/latest/meta-data/tags/instance/Name`)).body).toBe('imdsguard-demo');
    const off = await startEmulator({ instance: { ...defaultInstance(), instanceMetadataTags: 'disabled' } });
    expect((await raw(`${off.url}/latest/meta-data/tags/instance/Name`)).status).toBe(404);
    expect((await raw(`${off.url}/latest/meta-data/`)).body.split('\n')).not.toContain('tags/');
  });

  it('serves the role name and a credentials document with every field', async () => {
    const e = await startEmulator({ settings: { tokens: 'required' } });
    const token = await getToken(e.url);
    const h = { [TOKEN]: token };
    const role = (await raw(`${e.url}/latest/meta-data/iam/security-credentials/`, { headers: h })).body;
    expect(role).toBe('imdsguard-demo-role');
    const info = JSON.parse((await raw(`${e.url}/latest/meta-data/iam/info`, { headers: h })).body);
    expect(info.InstanceProfileArn).toMatch(/^arn:aws:iam::\d{12}:instance-profile\//);
    const doc = JSON.parse(
      (await raw(`${e.url}/latest/meta-data/iam/security-credentials/${role}`, { headers: h })).body,
    );
    expect(Object.keys(doc)).toEqual([
      'Code',
      'LastUpdated',
      'Type',
      'AccessKeyId',
      'SecretAccessKey',
      'Token',
      'Expiration',
    ]);
    expect(doc.Code).toBe('Success');
    expect(doc.Type).toBe('AWS-HMAC');
    expect(doc.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(doc.SecretAccessKey).toHaveLength(40);
    expect(Date.parse(doc.Expiration) - Date.parse(doc.LastUpdated)).toBe(6 * 3600 * 1000);
  });

  it('has no iam/ when the instance has no role', async () => {
    const e = await startEmulator({ instance: { ...defaultInstance(), iam: null } });
    expect((await raw(`${e.url}/latest/meta-data/`)).body.split('\n')).not.toContain('iam/');
    expect((await raw(`${e.url}/latest/meta-data/iam/security-credentials/`)).status).toBe(404);
  });

  it('rotates credentials before they expire (injected clock)', async () => {
    let now = Date.parse('2026-06-01T00:00:00Z');
    const e = await startEmulator({ now: () => now });
    const creds = async () =>
      JSON.parse(
        (await raw(`${e.url}/latest/meta-data/iam/security-credentials/imdsguard-demo-role`)).body,
      ) as {
        AccessKeyId: string;
        Expiration: string;
      };
    const first = await creds();
    now += 4 * 3600 * 1000;
    expect((await creds()).AccessKeyId).toBe(first.AccessKeyId);
    now += 1 * 3600 * 1000; // 5 h: rotation is due, 1 h before the first set expires
    const second = await creds();
    expect(second.AccessKeyId).not.toBe(first.AccessKeyId);
    expect(now).toBeLessThan(Date.parse(first.Expiration));
  });
});

describe('AWS emulator runtime control', () => {
  it('changes settings through the admin endpoint and validates them', async () => {
    const e = await startEmulator({ admin: { host: '127.0.0.1', port: 0 } });
    const admin = e.adminUrl as string;
    expect(JSON.parse((await raw(`${admin}/settings`)).body)).toMatchObject({
      flavor: 'aws',
      tokens: 'optional',
      endpoint: 'enabled',
      hopLimit: 1,
    });
    expect((await raw(`${e.url}/latest/meta-data/`)).status).toBe(200);
    const put = await raw(`${admin}/settings`, {
      method: 'PUT',
      body: JSON.stringify({ tokens: 'required', hopLimit: 2 }),
    });
    expect(put.status).toBe(200);
    expect(e.settings).toEqual({ tokens: 'required', endpoint: 'enabled', hopLimit: 2 });
    expect((await raw(`${e.url}/latest/meta-data/`)).status).toBe(401);
    await raw(`${admin}/settings`, { method: 'POST', body: '{"endpoint":"disabled"}' });
    expect((await raw(`${e.url}/latest/meta-data/`)).status).toBe(403);

    for (const [body, message] of [
      ['{"tokens":"sometimes"}', 'tokens: must be one of "optional", "required"'],
      ['{"hopLimit":65}', 'hopLimit: must be at most 64'],
      ['{"hopLimit":"2"}', 'hopLimit: must be a number'],
      ['{"colour":"red"}', 'colour: unknown key "colour"'],
      ['not json', 'body must be JSON'],
    ] as const) {
      const r = await raw(`${admin}/settings`, { method: 'PUT', body });
      expect(r.status, body).toBe(400);
      expect(JSON.parse(r.body).error).toContain(message);
    }
    expect(e.settings.endpoint).toBe('disabled');
    expect((await raw(`${admin}/nope`)).status).toBe(404);
  });

  it('setSettings validates too', async () => {
    const e = await startEmulator();
    let err: unknown;
    try {
      e.setSettings({ hopLimit: 0 });
    } catch (x) {
      err = x;
    }
    expect(isImdsguardError(err, 'IMDSGUARD_E_CONFIG')).toBe(true);
    e.setSettings({ tokens: 'required' });
    expect((await raw(`${e.url}/latest/meta-data/`)).status).toBe(401);
  });

  it('records requests without token values or credential bodies, and exposes them on the admin endpoint', async () => {
    const e = await startEmulator({ admin: { host: '127.0.0.1', port: 0 } });
    const token = await getToken(e.url);
    await raw(`${e.url}/latest/meta-data/iam/security-credentials/imdsguard-demo-role`, {
      headers: { [TOKEN]: token, 'user-agent': 'test-agent/1.0' },
    });
    await raw(`${e.url}/latest/meta-data/ami-id?x=1`, { headers: { forwarded: 'for=192.0.2.1' } });
    const log = e.requests;
    expect(log.map((r) => r.forwarded)).toEqual([false, false, true]);
    expect(log.map((r) => [r.method, r.path, r.status, r.tokenPut, r.withToken])).toEqual([
      ['PUT', '/latest/api/token', 200, true, false],
      ['GET', '/latest/meta-data/iam/security-credentials/imdsguard-demo-role', 200, false, true],
      ['GET', '/latest/meta-data/ami-id', 200, false, false],
    ]);
    expect(log[1]?.userAgent).toBe('test-agent/1.0');
    const adminView = (await raw(`${e.adminUrl}/requests`)).body;
    expect(JSON.parse(adminView).requests).toHaveLength(3);
    const creds = JSON.parse(
      (await raw(`${e.url}/latest/meta-data/iam/security-credentials/imdsguard-demo-role`)).body,
    ) as { SecretAccessKey: string; Token: string };
    const all = JSON.stringify(e.requests) + adminView;
    expect(all.includes(token)).toBe(false);
    expect(all.includes(creds.SecretAccessKey)).toBe(false);
    expect(all.includes(creds.Token)).toBe(false);
    expect((await raw(`${e.adminUrl}/requests`, { method: 'DELETE' })).status).toBe(200);
    expect(e.requests).toHaveLength(0);
  });

  it('forces a credential rotation with POST /rotate', async () => {
    const e = await startEmulator({ admin: { host: '127.0.0.1', port: 0 } });
    const key = async () =>
      JSON.parse((await raw(`${e.url}/latest/meta-data/iam/security-credentials/imdsguard-demo-role`)).body)
        .AccessKeyId;
    const before = await key();
    expect(await key()).toBe(before);
    const r = await raw(`${e.adminUrl}/rotate`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(await key()).not.toBe(before);
    expect((await raw(`${e.adminUrl}/rotate`)).status).toBe(405);
  });

  it('refuses a body larger than the limit', async () => {
    const e = await startEmulator();
    const r = await raw(`${e.url}/latest/api/token`, {
      method: 'PUT',
      headers: { [TTL]: '60' },
      body: 'x'.repeat(70_000),
    }).catch((err: Error) => ({ status: -1, body: err.message, headers: {} }));
    // Either a 413 or the server closing the socket mid-upload; never a token.
    expect([413, -1]).toContain(r.status);
  });

  it('refuses oversized request headers (431)', async () => {
    const e = await startEmulator();
    const r = await raw(`${e.url}/latest/meta-data/`, { headers: { 'x-big': 'a'.repeat(20_000) } });
    expect(r.status).toBe(431);
  });

  it('serves on several addresses at once and reports a port in use clearly', async () => {
    const e = await startEmulator({
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '::1', port: 0 },
      ],
    });
    expect(e.addresses).toHaveLength(2);
    for (const a of e.addresses) {
      const base = a.host.includes(':') ? `http://[${a.host}]:${a.port}` : `http://${a.host}:${a.port}`;
      expect((await raw(`${base}/latest/meta-data/ami-id`)).status).toBe(200);
    }
    const port = e.addresses[0]?.port as number;
    const clash = createEmulator({
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port },
      ],
    });
    let err: unknown;
    try {
      await clash.start();
    } catch (x) {
      err = x;
    }
    expect(isImdsguardError(err, 'IMDSGUARD_E_LISTEN')).toBe(true);
    expect((err as Error).message).toBe(`cannot listen on 127.0.0.1:${port}: address already in use`);
    expect(clash.addresses).toEqual([]);
  });
});

describe('AWS emulator wire format', () => {
  it('writes header names as the service does (X-Aws-Ec2-Metadata-Token-Ttl-Seconds)', async () => {
    const e = await startEmulator();
    const rawHeaders = await new Promise<string[]>((resolve, reject) => {
      const req = request(
        `${e.url}/latest/api/token`,
        { method: 'PUT', headers: { [TTL]: '5' }, agent: false },
        (res) => {
          res.resume();
          resolve(res.rawHeaders);
        },
      );
      req.on('error', reject);
      req.end();
    });
    const names = rawHeaders.filter((_, n) => n % 2 === 0);
    expect(names).toEqual(
      expect.arrayContaining([
        'X-Aws-Ec2-Metadata-Token-Ttl-Seconds',
        'Content-Type',
        'Connection',
        'Server',
      ]),
    );
  });

  it('closes the TCP connection after one response, even when the client asks for keep-alive', async () => {
    const e = await startEmulator();
    const port = e.addresses[0]?.port as number;
    const received = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1');
      let data = '';
      sock.on('data', (d) => {
        data += d.toString();
      });
      sock.on('close', () => resolve(data));
      sock.on('error', reject);
      const req =
        'GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: keep-alive\r\n\r\n';
      sock.write(req + req);
      setTimeout(() => reject(new Error('the server kept the connection open')), 5_000).unref();
    });
    expect(received.match(/HTTP\/1\.1 200/g)).toHaveLength(1);
    expect(received).toContain('Connection: close');
  });
});
