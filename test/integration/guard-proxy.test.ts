import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { isImdsguardError } from '../../src/errors.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import { guardConfig, MemoryRecorder, raw, send, statusOf } from '../support/guard-helpers.js';

/** The guard in front of the real emulator (tokens required) and an echo upstream, on loopback. */

const TTL = { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' };
const SECRET = 'guard-secret-4f9c2a7e';

let emulator: Emulator;
let echo: Server;
let echoUrl: string;
let echoed: Array<{ method: string; url: string; headers: IncomingHttpHeaders; rawHeaders: string[] }> = [];
const guards: Guard[] = [];

beforeAll(async () => {
  emulator = createEmulator({ settings: { tokens: 'required' }, listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
  echo = createServer((req, res) => {
    echoed.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
      res.end(`echo ${n}`);
    });
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await emulator.close();
  await new Promise<void>((r) => echo.close(() => r()));
});

afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
  echoed = [];
});

async function startGuard(guard: Record<string, unknown>, extra: { recorder?: MemoryRecorder } = {}) {
  const recorder = extra.recorder ?? new MemoryRecorder();
  const g = createGuard({
    config: guardConfig({ upstream: emulator.url, ...guard }),
    recorders: [recorder],
    hostname: 'test-host',
  });
  guards.push(g);
  await g.start();
  return { g, recorder, url: g.url };
}

async function token(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await send(url, 'PUT', '/latest/api/token', { ...TTL, ...headers });
  expect(r.status).toBe(200);
  return r.body;
}

describe('IMDSv2 through the guard (enforce)', () => {
  it('gets a token and credentials, and records one event per request', async () => {
    const { url, recorder } = await startGuard({});
    const t = await token(url, { 'user-agent': 'aws-sdk-js/3' });
    const role = await send(url, 'GET', '/latest/meta-data/iam/security-credentials/', {
      'x-aws-ec2-metadata-token': t,
    });
    expect(role.status).toBe(200);
    const creds = await send(url, 'GET', `/latest/meta-data/iam/security-credentials/${role.body.trim()}`, {
      'x-aws-ec2-metadata-token': t,
    });
    expect(creds.status).toBe(200);
    expect(JSON.parse(creds.body)).toMatchObject({ Code: 'Success', Type: 'AWS-HMAC' });
    const events = await recorder.waitFor(3);
    expect(events.map((e) => [e.request.version, e.decision, e.rule, e.action, e.status])).toEqual([
      ['token', 'allow', 'imdsv2-token', 'forwarded', 200],
      ['v2', 'allow', 'imdsv2', 'forwarded', 200],
      ['v2', 'allow', 'imdsv2', 'forwarded', 200],
    ]);
    const e = events[2]!;
    expect(e).toMatchObject({ v: 1, host: 'test-host', mode: 'enforce', alert: false });
    expect(e.request).toMatchObject({ method: 'GET', flavor: 'aws', client: { address: '127.0.0.1' } });
    expect(e.upstream?.status).toBe(200);
    expect(typeof e.upstream?.latencyMs).toBe('number');
    expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(new Set(events.map((x) => x.id)).size).toBe(3);
    expect([...events.map((x) => x.id)].sort()).toEqual(events.map((x) => x.id));
    expect(events[0]?.request.userAgent).toBe('aws-sdk-js/3');
  });

  it('forwards token headers untouched, strips only the secret, adds no forwarding header', async () => {
    const { url } = await startGuard({ upstream: echoUrl, authSecret: SECRET });
    const r = await send(url, 'PUT', '/latest/api/token', {
      'X-aws-ec2-metadata-token-ttl-seconds': '21600',
      'X-Meta-Auth': SECRET,
      'X-Custom': 'kept',
    });
    expect(r.status).toBe(200);
    await send(url, 'GET', '/latest/meta-data/', { 'X-aws-ec2-metadata-token': 'AQAEA-token-value==' });
    expect(echoed).toHaveLength(2);
    const [put, get] = echoed;
    expect(put?.method).toBe('PUT');
    expect(put?.rawHeaders).toContain('X-aws-ec2-metadata-token-ttl-seconds');
    expect(put?.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('21600');
    expect(put?.headers['x-custom']).toBe('kept');
    expect(put?.headers['x-meta-auth']).toBeUndefined();
    expect(get?.headers['x-aws-ec2-metadata-token']).toBe('AQAEA-token-value==');
    for (const e of echoed) {
      for (const h of ['x-forwarded-for', 'forwarded', 'via', 'x-forwarded-host', 'x-real-ip']) {
        expect(e.headers[h], h).toBeUndefined();
      }
    }
  });

  it('sends the upstream the normalized path it decided on, query kept', async () => {
    const { url } = await startGuard({ upstream: echoUrl });
    const r = await send(url, 'GET', '/latest//meta-data/iam/info/..%2Fsecurity-credentials/?x=1', {
      'x-aws-ec2-metadata-token': 't',
    });
    expect(r.status).toBe(200);
    expect(echoed[0]?.url).toBe('/latest/meta-data/iam/security-credentials/?x=1');
  });
});

describe('the default policy refuses', () => {
  it('tokenless requests from unknown callers with an IMDS-like 401, and allows known User-Agents', async () => {
    const { url, recorder } = await startGuard({});
    const r = await send(url, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'curl/8.5.0' });
    expect(r.status).toBe(401);
    expect(r.body).toContain('<title>401 - Unauthorized</title>');
    expect(r.headers['server']).toBe('EC2ws');
    expect(r.headers['x-imdsguard-rule']).toBeUndefined();
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({
      decision: 'deny',
      action: 'refused',
      rule: 'default-deny-v1',
      status: 401,
      alert: true,
    });
    expect(e?.upstream).toBeUndefined();
    // an allowed UA gets through to the emulator, which itself requires tokens here
    const b = await send(url, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'Botocore/1.29' });
    expect(b.status).toBe(401);
    const e2 = (await recorder.waitFor(2))[1];
    expect(e2).toMatchObject({
      decision: 'allow',
      rule: 'ua-allowlist',
      action: 'forwarded',
      upstream: { status: 401 },
    });
  });

  it('X-Forwarded-For on a token PUT (SSRF through a proxy), with the rule header when revealRule is on', async () => {
    const { url, recorder } = await startGuard({ revealRule: true });
    const before = emulator.requests.length;
    const r = await send(url, 'PUT', '/latest/api/token', { ...TTL, 'X-Forwarded-For': '203.0.113.9' });
    expect(r.status).toBe(403);
    expect(r.headers['x-imdsguard-rule']).toBe('forwarding-header');
    expect(emulator.requests.length).toBe(before);
    expect((await recorder.waitFor(1))[0]).toMatchObject({
      rule: 'forwarding-header',
      request: { version: 'token' },
    });
  });

  it('a DNS-rebinding Host', async () => {
    const { url, recorder } = await startGuard({});
    const t = await token(url);
    const r = await send(url, 'GET', '/latest/meta-data/', {
      host: 'attacker.example',
      'x-aws-ec2-metadata-token': t,
    });
    expect(r.status).toBe(403);
    expect((await recorder.waitFor(2))[1]).toMatchObject({
      rule: 'host',
      request: { hostHeader: 'attacker.example' },
    });
  });

  it('an encoded-path bypass of a path rule', async () => {
    const { url, recorder } = await startGuard({
      rules: [
        {
          name: 'creds-v2-only',
          path: '/latest/meta-data/iam/security-credentials/',
          version: 'v1',
          action: 'deny',
        },
      ],
    });
    const r = await send(url, 'GET', '/latest/meta-data/iam/info/%2e%2e%2Fsecurity-credentials/', {
      'user-agent': 'aws-cli/2.15',
    });
    expect(r.status).toBe(403);
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({
      rule: 'creds-v2-only',
      request: { path: '/latest/meta-data/iam/security-credentials/' },
    });
  });
});

describe('monitor mode', () => {
  it('forwards what enforce would refuse, flags it and alerts', async () => {
    // unknownToken allow: the token below is not one this guard issued (that alone would alert)
    const { url, recorder } = await startGuard({ mode: 'monitor', upstream: echoUrl, unknownToken: 'allow' });
    const r = await send(url, 'GET', '/latest/meta-data/', {
      'user-agent': 'curl/8',
      'x-forwarded-for': '1.2.3.4',
    });
    expect(r.status).toBe(200);
    expect(r.body).toBe('echo 0');
    const ok = await send(url, 'GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': 't' });
    expect(ok.status).toBe(200);
    const events = await recorder.waitFor(2);
    expect(events[0]).toMatchObject({
      mode: 'monitor',
      decision: 'deny',
      action: 'flagged',
      rule: 'forwarding-header',
      alert: true,
    });
    expect(events[1]).toMatchObject({ decision: 'allow', action: 'forwarded', alert: false });
    // protocol refusals still apply
    const s = await raw(
      url,
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expect(statusOf(s)).toBe(400);
  });
});

describe('trap mode', () => {
  const honey = {
    role: 'prod-admin',
    accessKeyId: 'ASIAHONEYTOKEN1234567',
    secretAccessKey: 'honey-secret-value-xyz',
  };

  it('forwards nothing and answers like IMDS, never a constant 200', async () => {
    const { url, recorder } = await startGuard({ mode: 'trap', trap: { honeyCredentials: honey } });
    const before = emulator.requests.length;
    const t = await token(url);
    expect(t.length).toBeGreaterThan(40);
    const listing = await send(url, 'GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': t });
    expect(listing.status).toBe(200);
    expect(listing.body.split('\n')).toEqual(expect.arrayContaining(['instance-id', 'iam/', 'placement/']));
    const id = await send(url, 'GET', '/latest/meta-data/instance-id', { 'x-aws-ec2-metadata-token': t });
    expect(id.body).toMatch(/^i-0[0-9a-f]{16}$/);
    const roles = await send(url, 'GET', '/latest/meta-data/iam/security-credentials/');
    expect(roles.body).toBe('prod-admin');
    const creds = JSON.parse(
      (await send(url, 'GET', '/latest/meta-data/iam/security-credentials/prod-admin')).body,
    );
    expect(creds).toMatchObject({ Code: 'Success', AccessKeyId: honey.accessKeyId, Type: 'AWS-HMAC' });
    const missing = await send(url, 'GET', '/latest/meta-data/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('404 - Not Found');
    expect(
      (await send(url, 'GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': 'forged' })).status,
    ).toBe(401);
    expect((await send(url, 'PUT', '/latest/api/token')).status).toBe(400);
    expect((await send(url, 'GET', '/latest/api/token')).status).toBe(405);
    expect(emulator.requests.length).toBe(before);
    const events = await recorder.waitFor(9);
    expect(events.every((e) => e.action === 'trapped' && e.alert && e.mode === 'trap')).toBe(true);
    expect(events.some((e) => e.upstream !== undefined)).toBe(false);
    const text = JSON.stringify(events);
    expect(text).not.toContain(honey.secretAccessKey);
    expect(text).not.toContain(t);
  });

  it('other flavours get their own shapes: required headers, listings, JSON, 404s', async () => {
    const gcp = await startGuard({ mode: 'trap', flavor: 'gcp' });
    expect((await send(gcp.url, 'GET', '/computeMetadata/v1/instance/id')).status).toBe(403);
    const list = await send(gcp.url, 'GET', '/computeMetadata/v1/', { 'metadata-flavor': 'Google' });
    expect(list.status).toBe(200);
    expect(list.body.trim().split('\n')).toEqual(['instance/', 'project/']);
    expect(list.headers['metadata-flavor']).toBe('Google');
    const id = await send(gcp.url, 'GET', '/computeMetadata/v1/instance/id', { 'metadata-flavor': 'Google' });
    expect(id.body).toMatch(/^\d{16,}$/);
    expect(
      (await send(gcp.url, 'GET', '/computeMetadata/v1/nope', { 'metadata-flavor': 'Google' })).status,
    ).toBe(404);
    const az = await startGuard({ mode: 'trap', flavor: 'azure' });
    expect((await send(az.url, 'GET', '/metadata/instance', { metadata: 'true' })).status).toBe(400);
    const inst = await send(az.url, 'GET', '/metadata/instance?api-version=2021-02-01', { metadata: 'true' });
    expect(inst.status).toBe(200);
    expect(JSON.parse(inst.body)).toMatchObject({ compute: { azEnvironment: 'AzurePublicCloud' } });
    const d = await startGuard({ mode: 'trap', flavor: 'digitalocean' });
    expect((await send(d.url, 'GET', '/metadata/v1/id')).body).toMatch(/^\d+$/);
    const events = [...gcp.recorder.events, ...az.recorder.events, ...d.recorder.events];
    expect(events.every((e) => e.action === 'trapped' && e.alert)).toBe(true);
  });

  it('without honey credentials the instance has no role', async () => {
    const { url } = await startGuard({ mode: 'trap' });
    expect((await send(url, 'GET', '/latest/meta-data/iam/security-credentials/')).status).toBe(404);
    expect((await send(url, 'GET', '/latest/meta-data/')).body).not.toContain('iam/');
  });
});

describe('secrets never reach events', () => {
  it('a credential fetch with the secret header leaves no secret, token or credential in events', async () => {
    const { url, recorder } = await startGuard({ authSecret: SECRET, rules: [] });
    const t = await token(url, { 'x-meta-auth': SECRET });
    const role = (
      await send(url, 'GET', '/latest/meta-data/iam/security-credentials/', {
        'x-aws-ec2-metadata-token': t,
        'x-meta-auth': SECRET,
      })
    ).body.trim();
    const credsReply = await send(url, 'GET', `/latest/meta-data/iam/security-credentials/${role}`, {
      'x-aws-ec2-metadata-token': t,
      'x-meta-auth': SECRET,
    });
    const creds = JSON.parse(credsReply.body) as Record<string, string>;
    await send(url, 'GET', '/latest/user-data', { 'x-aws-ec2-metadata-token': t });
    await send(url, 'GET', '/latest/meta-data/', { 'x-meta-auth': 'wrong-secret-value' });
    const events = await recorder.waitFor(5);
    const text = JSON.stringify(events);
    for (const needle of [
      SECRET,
      'wrong-secret-value',
      t,
      creds['AccessKeyId'],
      creds['SecretAccessKey'],
      creds['Token'],
    ]) {
      expect(needle && text.includes(needle), `events contain ${String(needle).slice(0, 6)}...`).toBe(false);
    }
    expect(events[4]).toMatchObject({ rule: 'auth-header', decision: 'deny' });
  });
});

describe('bad input is refused, recorded, and the guard stays up', () => {
  it.each([
    ['garbage', 'HELLO\r\n\r\n', 400, 'malformed-request'],
    [
      'CL with TE',
      'GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
      'smuggling',
    ],
    [
      'duplicate CL',
      'PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n',
      400,
      'smuggling',
    ],
    [
      'duplicate equal CL',
      'PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n',
      400,
      'smuggling',
    ],
    [
      'TE gzip',
      'GET / HTTP/1.1\r\nHost: 169.254.169.254\r\nTransfer-Encoding: gzip\r\n\r\n',
      400,
      'smuggling',
    ],
    [
      'absolute-form',
      'GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: aws-cli/2\r\n\r\n',
      400,
      'absolute-form',
    ],
    ['CONNECT', 'CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n', 405, 'connect'],
    [
      'upgrade',
      'GET / HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      400,
      'upgrade',
    ],
    [
      'absurd header',
      `GET / HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'header-overflow',
    ],
    ['NUL in path', 'GET /latest/%00 HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n', 400, 'malformed-path'],
  ])('%s', async (_name, payload, status, rule) => {
    const { url, recorder } = await startGuard({});
    const before = emulator.requests.length;
    const reply = await raw(url, payload);
    expect(statusOf(reply)).toBe(status);
    const events = await recorder.waitFor(1);
    expect(events[0]).toMatchObject({ decision: 'deny', action: 'refused', rule, status, alert: true });
    expect(emulator.requests.length).toBe(before);
    const t = await send(url, 'PUT', '/latest/api/token', TTL);
    expect(t.status).toBe(200);
  });

  it('slowloris: a request head that never ends gets 408', async () => {
    const { url, recorder } = await startGuard({ limits: { headersTimeoutMs: 300, requestTimeoutMs: 400 } });
    const parts = [
      'GET /latest/meta-data/ HTTP/1.1\r\n',
      'Host: 169.254.169.254\r\n',
      'X-a: 1\r\n',
      'X-b: 2\r\n',
      'X-c: 3\r\n',
    ];
    const reply = await raw(url, [...parts, ...parts.slice(2), ...parts.slice(2)], 4000, 250);
    expect(statusOf(reply)).toBe(408);
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({ rule: 'request-timeout', status: 408 });
    expect((await send(url, 'PUT', '/latest/api/token', TTL)).status).toBe(200);
  });

  it('a large body gets 413', async () => {
    const { url, recorder } = await startGuard({ upstream: echoUrl });
    const r = await send(url, 'PUT', '/latest/api/token', TTL, 'x'.repeat(5000));
    expect(r.status).toBe(413);
    expect((await recorder.waitFor(1))[0]).toMatchObject({ rule: 'body-too-large', action: 'refused' });
    const chunked = await raw(
      url,
      `PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nTransfer-Encoding: chunked\r\n\r\n${(2000).toString(16)}\r\n${'y'.repeat(2000)}\r\n0\r\n\r\n`,
    );
    expect(statusOf(chunked)).toBe(413);
  });
});

describe('upstream failures', () => {
  it('unreachable -> 502, recorded', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const { url, recorder } = await startGuard({ upstream: `http://127.0.0.1:${port}` });
    const r = await send(url, 'PUT', '/latest/api/token', TTL);
    expect(r.status).toBe(502);
    expect((await recorder.waitFor(1))[0]).toMatchObject({
      decision: 'allow',
      rule: 'imdsv2-token',
      action: 'error',
      status: 502,
      alert: true,
      upstream: { error: 'unreachable' },
    });
  });

  it('slow -> 504, recorded', async () => {
    const slow = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const port = (slow.address() as AddressInfo).port;
      const { url, recorder } = await startGuard({
        upstream: `http://127.0.0.1:${port}`,
        limits: { upstreamTimeoutMs: 300 },
      });
      expect((await send(url, 'PUT', '/latest/api/token', TTL)).status).toBe(504);
      const [event] = await recorder.waitFor(1);
      expect([event?.status, event?.action, event?.upstream?.error]).toEqual([504, 'error', 'timeout']);
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  it('a full queue -> 503, recorded; the request holding the upstream still completes', async () => {
    // The upstream holds each request until the test releases it.
    const held: Array<() => void> = [];
    let arrived: () => void = () => {};
    const firstArrived = new Promise<void>((r) => {
      arrived = r;
    });
    const busy = createServer((_req, res) => {
      held.push(() => res.end('token'));
      arrived();
    });
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const port = (busy.address() as AddressInfo).port;
      const { url, recorder } = await startGuard({
        upstream: `http://127.0.0.1:${port}`,
        limits: { maxUpstreamConnections: 1, maxQueuedRequests: 0 },
      });
      const first = send(url, 'PUT', '/latest/api/token', TTL);
      // The only upstream connection is taken once the upstream has the first request.
      await firstArrived;
      const second = await send(url, 'PUT', '/latest/api/token', TTL);
      expect(second.status).toBe(503);
      for (const release of held) release();
      expect((await first).status).toBe(200);
      const events = await recorder.waitFor(2);
      expect(events.map((e) => [e.status, e.action, e.upstream?.error])).toEqual([
        [503, 'error', undefined],
        [200, 'forwarded', undefined],
      ]);
    } finally {
      busy.closeAllConnections();
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });
});

describe('life cycle', () => {
  it('a port in use is IMDSGUARD_E_LISTEN with the address', async () => {
    const { g } = await startGuard({});
    const port = g.addresses[0]!.port;
    const other = createGuard({ config: guardConfig({ listen: [`127.0.0.1:${port}`] }), hostname: 'h' });
    const err = await other.start().catch((e: unknown) => e);
    expect(isImdsguardError(err, 'IMDSGUARD_E_LISTEN')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).toContain('already in use');
  });

  it('reload swaps the policy atomically; a bad reload keeps the old one', async () => {
    // every answer closes the client's connection, as IMDS does: each request is a new connection
    const keep = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    await new Promise<void>((r) => keep.listen(0, '127.0.0.1', r));
    const keepUrl = `http://127.0.0.1:${(keep.address() as AddressInfo).port}`;
    const { g, url, recorder } = await startGuard({ upstream: keepUrl, mode: 'monitor' });
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const u = new URL(url);
    const get = () =>
      new Promise<{ status: number; port: number }>((resolve, reject) => {
        const req = (async () => (await import('node:http')).request)();
        req.then((request) => {
          const r = request(
            {
              host: u.hostname,
              port: Number(u.port),
              path: '/latest/meta-data/',
              headers: { 'user-agent': 'curl/8' },
              agent,
            },
            (res) => {
              const port = res.socket?.localPort ?? -1;
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0, port }));
            },
          );
          r.on('error', reject);
          r.end();
        });
      });
    const a = await get();
    expect(a.status).toBe(200);
    g.reload(guardConfig({ upstream: keepUrl, mode: 'enforce' }));
    const b = await get();
    // judged by the new policy: a tokenless curl is refused in enforce
    expect(b.status).toBe(401);
    expect(() =>
      g.reload(guardConfig({ upstream: keepUrl, rules: [{ exe: '/x', action: 'deny' }] })),
    ).toThrow(/resolver/);
    expect(g.mode).toBe('enforce');
    agent.destroy();
    expect((await recorder.waitFor(2)).map((e) => [e.mode, e.action])).toEqual([
      ['monitor', 'flagged'],
      ['enforce', 'refused'],
    ]);
    await new Promise<void>((r) => keep.close(() => r()));
  });

  it('two guards in one process share nothing: each has its own event sequence', async () => {
    const a = await startGuard({});
    const b = await startGuard({});
    await send(a.url, 'GET', '/latest/meta-data/', { 'user-agent': 'aws-cli/2' });
    await send(b.url, 'GET', '/latest/meta-data/', { 'user-agent': 'aws-cli/2' });
    await send(a.url, 'GET', '/latest/meta-data/', { 'user-agent': 'aws-cli/2' });
    const [a1, a2] = await a.recorder.waitFor(2);
    const [b1] = await b.recorder.waitFor(1);
    // ids are time-sequence-counter: each guard counts its own events from 1
    expect(a1?.id).toMatch(/-00001$/);
    expect(a2?.id).toMatch(/-00002$/);
    expect(b1?.id).toMatch(/-00001$/);
  });

  it('a throwing recorder never breaks a request', async () => {
    const bad = {
      record: () => {
        throw new Error('boom');
      },
      close: async () => {},
    };
    const recorder = new MemoryRecorder();
    const g = createGuard({
      config: guardConfig({ upstream: emulator.url }),
      recorders: [bad, recorder],
      hostname: 'h',
    });
    guards.push(g);
    await g.start();
    expect((await send(g.url, 'PUT', '/latest/api/token', TTL)).status).toBe(200);
    expect(await recorder.waitFor(1)).toHaveLength(1);
  });
});
