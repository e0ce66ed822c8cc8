import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  restoreRouteLocalnet,
  routeLocalnetStates,
  sweepRouteLocalnet,
  watchPodInterfaces,
} from '../../src/host/interfaces-io.js';
import type { ApplyReport } from '../../src/host/types.js';

/**
 * The route_localnet sweep, its record and the watcher, against a sysctl tree of real files in a
 * temporary directory (--sysctl-root points the code there; the e2e tests use the kernel's).
 */

let dir: string;
let sys: string;
let state: string;
const conf = (name: string) => join(sys, 'net', 'ipv4', 'conf', name);
const addIface = (name: string, value = '0') => {
  mkdirSync(conf(name), { recursive: true });
  writeFileSync(join(conf(name), 'route_localnet'), `${value}\n`);
};
const value = (name: string) => readFileSync(join(conf(name), 'route_localnet'), 'utf8').trim();
const report = (): ApplyReport => ({ changes: [], notes: [] });
const record = () =>
  JSON.parse(readFileSync(join(state, 'var/lib/imdsguard/route-localnet.json'), 'utf8')) as {
    changed: Array<{ name: string; previous: string }>;
  };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsg-ifaces-'));
  sys = join(dir, 'sys');
  state = join(dir, 'root');
  for (const n of ['all', 'default', 'lo', 'eth0']) addIface(n);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the route_localnet sweep', () => {
  it('turns on matching interfaces only, records what it changed, and is idempotent', async () => {
    addIface('eni1');
    addIface('eni2', '1');
    addIface('cali7');
    addIface('docker0');
    const r = report();
    await sweepRouteLocalnet(['eni+', 'docker0'], sys, state, r);
    expect([value('eni1'), value('eni2'), value('docker0'), value('cali7'), value('eth0')]).toEqual([
      '1',
      '1',
      '1',
      '0',
      '0',
    ]);
    expect(value('lo')).toBe('0');
    expect(value('all')).toBe('0');
    expect(value('default')).toBe('0');
    expect(r.changes).toHaveLength(2);
    // eni2 was on already: not ours, never restored.
    expect(record().changed).toEqual([
      { name: 'docker0', previous: '0' },
      { name: 'eni1', previous: '0' },
    ]);
    const again = report();
    await sweepRouteLocalnet(['eni+', 'docker0'], sys, state, again);
    expect(again.changes).toEqual([]);
    expect(await routeLocalnetStates(['eni+'], sys)).toEqual({ eni1: true, eni2: true });
  });

  it('forgets interfaces that went away, and records new ones as they come', async () => {
    addIface('eni1');
    await sweepRouteLocalnet(['eni+'], sys, state, report());
    rmSync(conf('eni1'), { recursive: true });
    addIface('eni3');
    await sweepRouteLocalnet(['eni+'], sys, state, report());
    expect(record().changed).toEqual([{ name: 'eni3', previous: '0' }]);
  });

  it('restore puts back exactly what the sweeps changed and removes the record', async () => {
    addIface('eni1');
    addIface('eni2', '1');
    await sweepRouteLocalnet(['eni+'], sys, state, report());
    addIface('eni4'); // appeared later, never swept: left alone
    const r = report();
    await restoreRouteLocalnet(sys, state, r);
    expect([value('eni1'), value('eni2'), value('eni4')]).toEqual(['0', '1', '0']);
    expect(existsSync(join(state, 'var/lib/imdsguard/route-localnet.json'))).toBe(false);
    expect(r.changes).toEqual([
      `restored ${join(conf('eni1'), 'route_localnet')} = 0`,
      `removed ${join(state, 'var/lib/imdsguard/route-localnet.json')}`,
    ]);
    const none = report();
    await restoreRouteLocalnet(sys, state, none);
    expect(none.changes).toEqual([]);
  });
});

describe('the interface watcher', () => {
  it('sweeps at start and on every monitor line, and stops when asked', async () => {
    addIface('eni1');
    const fifo = join(dir, 'monitor');
    execFileSync('mkfifo', [fifo]);
    let stop: (v: unknown) => void = () => {};
    const stopped = new Promise((r) => {
      stop = r;
    });
    const reports: ApplyReport[] = [];
    let notify: () => void = () => {};
    const next = () =>
      new Promise<void>((r) => {
        notify = r;
      });
    let first = next();
    const done = watchPodInterfaces({
      patterns: ['eni+'],
      sysctlRoot: sys,
      stateRoot: state,
      stop: stopped,
      guarded: async () => true,
      onReport: (rep) => {
        reports.push(rep);
        notify();
      },
      resyncMs: 3_600_000,
      monitor: ['cat', fifo],
    });
    await first;
    expect(value('eni1')).toBe('1');
    // A new pod interface, then the link event the kernel would send.
    addIface('eni2');
    first = next();
    const writer = await open(fifo, 'w');
    await writer.write('5: eni2@if3: <BROADCAST,MULTICAST> mtu 9001 state DOWN\n');
    await first;
    expect(value('eni2')).toBe('1');
    expect(reports.flatMap((r) => r.changes)).toEqual([
      `set ${join(conf('eni1'), 'route_localnet')} = 1 (was 0)`,
      `set ${join(conf('eni2'), 'route_localnet')} = 1 (was 0)`,
    ]);
    // The monitor ends (EOF): the watcher says so and restarts it.
    first = next();
    await writer.close();
    await first;
    expect(reports.at(-1)?.notes[0]).toMatch(/^link monitor exited \(0\); restarting in 1000 ms$/);
    stop('test');
    await done;
  }, 20_000);

  it('leaves route_localnet alone while the loopback drop rule is missing', async () => {
    addIface('eni1');
    let stop: (v: unknown) => void = () => {};
    const stopped = new Promise((r) => {
      stop = r;
    });
    const got = new Promise<ApplyReport>((resolve) => {
      void watchPodInterfaces({
        patterns: ['eni+'],
        sysctlRoot: sys,
        stateRoot: state,
        stop: stopped,
        guarded: async () => false,
        onReport: resolve,
        monitor: ['sleep', '60'],
      });
    });
    const r = await got;
    stop('test');
    expect(r.notes.join('\n')).toContain('route_localnet left alone');
    expect(value('eni1')).toBe('0');
  }, 20_000);
});
