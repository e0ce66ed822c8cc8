import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import type { Caller, ConnectionInfo, ProcessResolver } from '../../src/guard/attribution/types.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import { guardConfig, MemoryRecorder, send } from '../support/guard-helpers.js';
import { waitFor } from '../support/wait.js';

/** Caller rules with a fake ProcessResolver: the seam the /proc resolver plugs into. */

class FakeResolver implements ProcessResolver {
  caller: Caller | (() => Promise<Caller>) = { resolved: 'none', error: 'not set' };
  seen: ConnectionInfo[] = [];
  async resolve(conn: ConnectionInfo): Promise<Caller> {
    this.seen.push(conn);
    return typeof this.caller === 'function' ? this.caller() : this.caller;
  }
  async close(): Promise<void> {}
}

const TTL = { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' };
let emulator: Emulator;
const guards: Guard[] = [];

beforeAll(async () => {
  emulator = createEmulator({ settings: { tokens: 'optional' }, listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
});
afterAll(() => emulator.close());
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
});

async function start(guard: Record<string, unknown>, resolver: FakeResolver) {
  const recorder = new MemoryRecorder();
  const g = createGuard({
    config: guardConfig({ upstream: emulator.url, ...guard }),
    resolver,
    recorders: [recorder],
    hostname: 'h',
  });
  guards.push(g);
  await g.start();
  return { url: g.url, recorder };
}

const app: Caller = {
  resolved: 'full',
  pid: 42,
  exe: '/opt/app/bin/agent',
  uid: 1000,
  user: 'app',
  netns: 'host',
};

describe('caller rules through the guard', () => {
  it('allowed executables may use IMDSv1; others may not; the caller is in the event', async () => {
    const r = new FakeResolver();
    const { url, recorder } = await start({ allowExe: ['/opt/app/*'] }, r);
    r.caller = app;
    expect((await send(url, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'curl/8' })).status).toBe(
      200,
    );
    r.caller = { ...app, exe: '/usr/bin/curl' };
    expect((await send(url, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'curl/8' })).status).toBe(
      401,
    );
    const events = await recorder.waitFor(2);
    expect(events[0]).toMatchObject({
      rule: 'allowed-caller',
      caller: { exe: '/opt/app/bin/agent', pid: 42, user: 'app' },
    });
    expect(typeof events[0]?.attributionMs).toBe('number');
    expect(events[1]).toMatchObject({ rule: 'default-deny-v1', caller: { exe: '/usr/bin/curl' } });
    expect(r.seen[0]).toMatchObject({ family: 4, remoteAddress: '127.0.0.1', localAddress: '127.0.0.1' });
  });

  it('fails closed when attribution fails, times out or throws', async () => {
    const r = new FakeResolver();
    const { url, recorder } = await start({ allowUser: ['app'], attribution: { timeoutMs: 50 } }, r);
    r.caller = { resolved: 'none', error: 'permission denied reading /proc/77/exe' };
    expect((await send(url, 'GET', '/latest/meta-data/', { 'user-agent': 'curl/8' })).status).toBe(403);
    // answers only after the 50 ms timeout has decided
    let release: (() => void) | undefined;
    r.caller = () =>
      new Promise<Caller>((resolve) => {
        release = () => resolve(app);
      });
    expect((await send(url, 'GET', '/latest/meta-data/', { 'user-agent': 'curl/8' })).status).toBe(403);
    release?.();
    r.caller = async () => {
      throw new Error('netlink exploded');
    };
    expect((await send(url, 'GET', '/latest/meta-data/', { 'user-agent': 'curl/8' })).status).toBe(403);
    // the User-Agent path does not need the caller and still works
    expect((await send(url, 'GET', '/latest/meta-data/', { 'user-agent': 'aws-cli/2' })).status).toBe(200);
    // The timed-out lookup's event waits for the lookup (it names the caller later): by request order.
    const events = [...(await recorder.waitFor(4))].sort((a, b) => a.id.localeCompare(b.id));
    expect(events.slice(0, 3).map((e) => e.rule)).toEqual([
      'attribution-required',
      'attribution-required',
      'attribution-required',
    ]);
    expect(events[0]?.reason).toContain('permission denied reading /proc/77/exe');
    expect(events[1]?.reason).toContain('timed out after 50 ms');
    // Refused without the caller, then named once the lookup finished.
    expect(events[1]?.caller).toMatchObject({ resolved: 'full', exe: '/opt/app/bin/agent', late: true });
    expect(events[2]?.reason).toContain('netlink exploded');
  });

  it('monitor mode flags an attribution failure instead of refusing', async () => {
    const r = new FakeResolver();
    const { url, recorder } = await start({ mode: 'monitor', allowUser: ['app'] }, r);
    expect((await send(url, 'GET', '/latest/meta-data/', { 'user-agent': 'curl/8' })).status).toBe(200);
    expect((await recorder.waitFor(1))[0]).toMatchObject({ rule: 'attribution-required', action: 'flagged' });
  });

  it('token requests from a local address never wait for attribution (the socket proves the namespace)', async () => {
    const r = new FakeResolver();
    const { url, recorder } = await start({ allowExe: ['/usr/local/bin/trusted'] }, r);
    // a lookup that has not answered (and would claim another namespace) cannot delay or refuse a
    // loopback client: the token is answered while it is still pending
    let release: (() => void) | undefined;
    r.caller = () =>
      new Promise((resolve) => {
        release = () => resolve({ ...app, container: { id: 'c0ffee', runtime: 'docker' }, netns: 'other' });
      });
    expect((await send(url, 'PUT', '/latest/api/token', TTL)).status).toBe(200);
    // Answered while the lookup is pending; its event waits for the lookup (past the 50 ms timeout
    // if need be) and names the caller.
    expect(release).toBeDefined();
    release?.();
    const [e] = await recorder.waitFor(1);
    expect(e).toMatchObject({ rule: 'imdsv2-token', status: 200 });
    expect(e?.caller).toMatchObject({ resolved: 'full', pid: 42 });
  });

  it('resolves the caller for events when no rule needs it (attribution.forEvents), and not when off', async () => {
    const r = new FakeResolver();
    r.caller = app;
    const { url, recorder } = await start({}, r);
    await send(url, 'GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': 'x' });
    expect((await recorder.waitFor(1))[0]?.caller?.exe).toBe('/opt/app/bin/agent');
    const r2 = new FakeResolver();
    r2.caller = app;
    const { url: url2, recorder: rec2 } = await start({ attribution: { forEvents: false } }, r2);
    await send(url2, 'GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': 'x' });
    expect((await rec2.waitFor(1))[0]?.caller).toBeUndefined();
    expect(r2.seen).toHaveLength(0);
  });

  it('holds a tokenless (v1) request until the caller is known; an IMDSv2 one goes upstream at once (attribution.holdV1)', async () => {
    const r = new FakeResolver();
    let release: (() => void) | undefined;
    let resolvedAt = 0;
    r.caller = () =>
      new Promise<Caller>((resolve) => {
        release = () => {
          resolvedAt = performance.now();
          resolve(app);
        };
      });
    const { url, recorder } = await start({ attribution: { timeoutMs: 5_000 } }, r);
    // v1 (allowed by its User-Agent): the request waits for the lookup before it goes upstream
    const before = emulator.requests.length;
    const v1 = send(url, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'aws-cli/2.9.19' }).then(
      (res) => ({ res, at: performance.now() }),
    );
    // The request waits for the lookup before it goes upstream: nothing reaches the upstream until
    // the lookup is released.
    await waitFor(() => release !== undefined, 'the lookup');
    await new Promise((t) => setTimeout(t, 50));
    expect(emulator.requests.length).toBe(before);
    (release as unknown as () => void)();
    const { res: v1Res, at: v1At } = await v1;
    expect(v1Res.status).toBe(200);
    expect(resolvedAt).toBeGreaterThan(0);
    expect(v1At).toBeGreaterThanOrEqual(resolvedAt);
    expect((await recorder.waitFor(1))[0]?.caller?.exe).toBe('/opt/app/bin/agent');

    // IMDSv2: forwarded while the lookup is still pending; the answer (which closes the connection)
    // waits for the lookup, at most attribution.timeoutMs, so that the event can name the caller
    release = undefined;
    const sent = emulator.requests.length;
    const v2 = send(url, 'GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': 'x' });
    await waitFor(() => emulator.requests.length > sent, 'the upstream request');
    expect(release).toBeDefined();
    (release as unknown as () => void)();
    expect((await v2).status).not.toBe(0);
    expect((await recorder.waitFor(2))[1]?.caller?.exe).toBe('/opt/app/bin/agent');
  });

  it('sends v1 upstream without waiting when holdV1 is off', async () => {
    const r = new FakeResolver();
    let release: (() => void) | undefined;
    r.caller = () =>
      new Promise<Caller>((resolve) => {
        release = () => resolve(app);
      });
    const { url, recorder } = await start({ attribution: { timeoutMs: 5_000, holdV1: false } }, r);
    const sent = emulator.requests.length;
    const res = send(url, 'GET', '/latest/meta-data/instance-id', { 'user-agent': 'aws-cli/2.9.19' });
    await waitFor(() => emulator.requests.length > sent, 'the upstream request');
    expect(release).toBeDefined();
    (release as unknown as () => void)();
    expect((await res).status).toBe(200);
    expect((await recorder.waitFor(1))[0]?.caller?.exe).toBe('/opt/app/bin/agent');
  });
  it('a lookup that missed the deadline names the caller in the event (marked late)', async () => {
    const r = new FakeResolver();
    let release: (() => void) | undefined;
    r.caller = () =>
      new Promise<Caller>((resolve) => {
        release = () => resolve(app);
      });
    const { url, recorder } = await start({ allowUser: ['app'], attribution: { timeoutMs: 50 } }, r);
    // Decided without the caller: refused (fail closed), the lookup still running. The refusal
    // closes the connection, as every answer of the service does.
    const res = await send(url, 'GET', '/latest/meta-data/', { 'user-agent': 'curl/8' });
    expect(res.status).toBe(403);
    expect(res.headers.connection).toBe('close');
    expect(release).toBeDefined();
    (release as unknown as () => void)();
    const [first] = await recorder.waitFor(1);
    expect(first).toMatchObject({ rule: 'attribution-required', decision: 'deny' });
    expect(first?.reason).toContain('timed out after 50 ms');
    expect(first?.caller).toMatchObject({ resolved: 'full', user: 'app', pid: 42, late: true });
    expect(typeof first?.attributionMs).toBe('number');
  });

  it('an event waits for a late lookup at most attribution.eventWaitMs (0: not at all)', async () => {
    for (const eventWaitMs of [0, 100]) {
      const r = new FakeResolver();
      r.caller = () => new Promise<Caller>(() => {}); // never answers
      const { url, recorder } = await start(
        { allowUser: ['app'], attribution: { timeoutMs: 50, eventWaitMs } },
        r,
      );
      expect((await send(url, 'GET', '/latest/meta-data/', { 'user-agent': 'curl/8' })).status).toBe(403);
      const [e] = await recorder.waitFor(1);
      expect(e?.caller).toMatchObject({ resolved: 'none' });
      expect(e?.caller?.error).toBe(
        `attribution timed out after 50 ms; the lookup did not finish within ${eventWaitMs} ms`,
      );
    }
  });
});
