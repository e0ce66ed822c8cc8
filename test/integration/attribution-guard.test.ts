import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { createProcResolver } from '../../src/guard/attribution/index.js';
import type { Caller, ProcessResolver } from '../../src/guard/attribution/types.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import { guardConfig, MemoryRecorder, send } from '../support/guard-helpers.js';

/**
 * The /proc resolver inside the real guard (createGuard): events name this very process, and a
 * client that leaves while attribution is pending neither crashes the guard nor loses its event.
 */

let emulator: Emulator | undefined;
let guard: Guard | undefined;
let resolver: ProcessResolver | undefined;

afterEach(async () => {
  await guard?.close();
  await resolver?.close();
  await emulator?.close();
  guard = undefined;
  resolver = undefined;
  emulator = undefined;
});

async function start(
  r: ProcessResolver,
  recorder: MemoryRecorder,
  extra: Record<string, unknown> = {},
): Promise<Guard> {
  emulator = createEmulator({ listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
  resolver = r;
  guard = createGuard({
    config: guardConfig({
      mode: 'monitor',
      upstream: emulator.url,
      listen: ['127.0.0.1:0', '[::1]:0'],
      attribution: { timeoutMs: 2000 },
      ...extra,
    }),
    resolver: r,
    recorders: [recorder],
    hostname: 'test',
  });
  await guard.start();
  return guard;
}

/** A client that sends one request and keeps its connection open until told to close. */
function openClient(host: string, port: number): Promise<{ close(): void }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => {
      s.write('GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n');
      resolve({ close: () => s.destroy() });
    });
    s.on('error', reject);
    s.on('data', () => {});
  });
}

describe('the /proc resolver in the guard', () => {
  it('events name the calling process over IPv4 and IPv6', async () => {
    const rec = new MemoryRecorder();
    const g = await start(createProcResolver({ budgetMs: 1500 }), rec);
    const [v4, v6] = g.addresses;
    // The guard looks the caller up beside the request; the clients stay connected until it is done.
    const a = await openClient('127.0.0.1', v4?.port as number);
    const b = await openClient('::1', v6?.port as number);
    const events = await rec.waitFor(2);
    a.close();
    b.close();
    expect(events).toHaveLength(2);
    for (const e of events) {
      expect(e.caller, JSON.stringify(e.caller)).toMatchObject({
        resolved: 'full',
        pid: process.pid,
        uid: process.getuid?.(),
      });
      expect(e.attributionMs).toBeGreaterThanOrEqual(0);
    }
    expect(events.map((e) => e.request.client.address).sort()).toEqual(['127.0.0.1', '::1']);
  });

  it('a client that disconnects while attribution is pending: the guard survives and records it', async () => {
    // Each lookup waits until the test releases it; lookupStarted(n) resolves once the n-th has begun.
    const pending: Array<(c: Caller) => void> = [];
    const waiters: Array<() => void> = [];
    const lookupStarted = (n: number) =>
      new Promise<void>((res) => {
        if (pending.length >= n) res();
        else waiters[n - 1] = res;
      });
    const slow: ProcessResolver = {
      resolve: () =>
        new Promise<Caller>((res) => {
          pending.push(res);
          waiters[pending.length - 1]?.();
        }),
      close: async () => {},
    };
    const rec = new MemoryRecorder();
    // An exe rule under enforce: the decision on a tokenless request waits for the caller.
    const g = await start(slow, rec, { mode: 'enforce', allowExe: ['/nonexistent/agent'] });
    const port = g.addresses[0]?.port as number;
    const s = connect(port, '127.0.0.1', () => {
      s.write('GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n');
    });
    s.on('error', () => {});
    // The client leaves (a reset, not a half-close, which is answered) once the guard waits for its caller.
    await lookupStarted(1);
    s.resetAndDestroy();
    const [gone] = await rec.waitFor(1);
    expect(gone?.status).toBe(499);
    expect(gone?.action).toBe('error');
    pending[0]?.({ resolved: 'none', error: 'late' });
    // Still serving: the next request is decided (refused: its caller is unknown, fail closed).
    const r = send(`http://127.0.0.1:${port}`, 'GET', '/latest/meta-data/');
    await lookupStarted(2);
    pending[1]?.({ resolved: 'none', error: 'test' });
    expect((await r).status).toBeGreaterThanOrEqual(400);
  });
});
