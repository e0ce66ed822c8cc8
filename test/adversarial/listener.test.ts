import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import { runInProcess } from '../support/cli.js';
import { tokenPut } from '../support/imds-requests.js';
import { parseResponses, RawConnection } from '../support/raw-http.js';

/**
 * Remote callers through a public listener: in enforce and monitor modes the proxy
 * listens on loopback unless an explicit, documented option says otherwise; trap mode may listen
 * anywhere (a remote canary). No traffic is sent to a non-loopback address: a refused listener is
 * judged by start() failing and nothing being bound.
 */

const started: Guard[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((g) => g.close()));
});

/** Builds and starts a guard; resolves with the error that refused it, or undefined if it listened. */
async function tryListen(mode: string, listen: string[]): Promise<unknown> {
  let guard: Guard;
  try {
    guard = createGuard({
      config: parseConfig({ guard: { mode, listen, upstream: 'http://127.0.0.1:9' } }).guard,
      hostname: 'h',
    });
    await guard.start();
  } catch (err) {
    return err;
  }
  started.push(guard);
  return undefined;
}

describe('loopback listeners', () => {
  it.each([['127.0.0.1:0'], ['[::1]:0'], ['127.0.0.2:0']])(
    'enforce on loopback %s is fine',
    async (listen) => {
      expect(await tryListen('enforce', [listen])).toBeUndefined();
    },
  );
});

describe('trap mode may listen anywhere (a remote canary)', () => {
  it('trap on 0.0.0.0 starts and answers (asked over loopback)', async () => {
    expect(await tryListen('trap', ['0.0.0.0:0'])).toBeUndefined();
    const g = started[0]!;
    const port = g.addresses[0]!.port;
    const c = await RawConnection.open('127.0.0.1', port);
    await c.write(tokenPut([], '169.254.169.254'));
    await c.until((b) => b.includes('\r\n\r\n'), 10_000, 'the trap answer');
    c.destroy();
    expect(parseResponses(c.received())[0]?.status).toBe(200);
  });
});

/** A non-loopback address of this host, if it has one. */
function hostAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? [])
      if (a.family === family && !a.internal && !a.address.startsWith('fe80')) return a.address;
  }
  return undefined;
}

const v4 = hostAddress('IPv4');
const v6 = hostAddress('IPv6');
const publicListens: string[][] = [
  ['0.0.0.0:0'],
  ['[::]:0'],
  ['127.0.0.1:0', '0.0.0.0:0'],
  ...(v4 ? [[`${v4}:0`]] : []),
  ...(v6 ? [[`[${v6}]:0`]] : []),
];

describe('enforce and monitor refuse a non-loopback listener by default', () => {
  for (const mode of ['enforce', 'monitor']) {
    it.each(publicListens.map((l) => [l.join(' + '), l] as const))(`${mode} on %s`, async (_n, listen) => {
      const err = await tryListen(mode, [...listen]);
      expect(err, `the ${mode} guard listened on ${listen.join(', ')}`).toBeDefined();
      expect(String((err as Error).message)).toMatch(/loopback/i);
      expect((err as { code?: string }).code).toMatch(/^IMDSGUARD_E_/);
    });
  }

  it('the CLI refuses `guard --listen 0.0.0.0:PORT` with a usage error naming the address', async () => {
    const r = await runInProcess(['guard', '--listen', '0.0.0.0:0', '--upstream', 'http://127.0.0.1:9']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('0.0.0.0');
    expect(r.stderr).not.toContain('listening on');
  });
});

describe('the explicit option opens a non-loopback listener', () => {
  it.each([['enforce'], ['monitor']])(
    '%s on 0.0.0.0 with guard.allowRemoteListen: true starts',
    async (mode) => {
      let guard: Guard | undefined;
      try {
        guard = createGuard({
          config: parseConfig({
            guard: { mode, listen: ['0.0.0.0:0'], allowRemoteListen: true, upstream: 'http://127.0.0.1:9' },
          }).guard,
          hostname: 'h',
        });
        await guard.start();
        expect(guard.addresses[0]?.host).toBe('0.0.0.0');
      } finally {
        await guard?.close();
      }
    },
  );
});
