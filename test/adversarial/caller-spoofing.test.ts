import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcResolver } from '../../src/guard/attribution/index.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { GuardUnderTest } from '../support/guard-under-test.js';

/**
 * An allowed executable is judged by what the kernel says the process runs (/proc/PID/exe), never by
 * what the process says it is: argv[0], a symlink with the allowed name, or a User-Agent. Real
 * processes, real attribution. And the header-only allow paths that a config can switch off stay off.
 */

const dir = mkdtempSync(join(tmpdir(), 'imdsg-adv-spoof-'));
let g: GuardUnderTest;

beforeAll(async () => {
  g = await GuardUnderTest.start({
    guard: { allowExe: ['/usr/bin/curl'], allowUserAgents: [], attribution: { timeoutMs: 2000 } },
    resolver: createProcResolver({ budgetMs: 1500 }),
    upstream: { emulator: { settings: { tokens: 'optional' } } },
  });
}, 30_000);
afterAll(async () => {
  await g?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `command args` (spawned with argv0), waits for its event. Tokenless requests are held until attribution answers. */
async function run(command: string, args: string[], argv0?: string): Promise<GuardEvent | undefined> {
  const before = g.log.events.length;
  const child = spawn(command, args, { stdio: 'ignore', ...(argv0 ? { argv0 } : {}) });
  child.on('error', () => {});
  await new Promise((r) => child.on('exit', r));
  await g.idle(15_000);
  return g.log.events[before];
}

const nodeClient = (url: string) => [
  '-e',
  `require('http').get(${JSON.stringify(url)}, { agent: false, headers: { 'User-Agent': 'curl/8.5.0' } }, (r) => { r.resume(); r.on('end', () => process.exit(0)); }).on('error', () => process.exit(1));`,
];

describe('an allowed executable is the one the kernel runs', () => {
  it('the control: the real /usr/bin/curl is allowed to make a tokenless read', async () => {
    const e = await run('curl', ['-sS', '-o', '/dev/null', `${g.guard.url}/latest/meta-data/instance-id`]);
    expect(e?.rule, JSON.stringify(e)).toBe('allowed-caller');
    expect(e?.caller?.exe).toBe('/usr/bin/curl');
  }, 30_000);

  it('node with argv[0] = /usr/bin/curl and a curl User-Agent is refused', async () => {
    const e = await run(
      process.execPath,
      nodeClient(`${g.guard.url}/latest/meta-data/instance-id`),
      '/usr/bin/curl',
    );
    expect(e?.decision, JSON.stringify(e)).toBe('deny');
    expect(e?.action).toBe('refused');
    expect(e?.caller?.exe).not.toBe('/usr/bin/curl');
  }, 30_000);

  it('node started through a symlink named curl is refused', async () => {
    const link = join(dir, 'curl');
    symlinkSync(process.execPath, link);
    const e = await run(link, nodeClient(`${g.guard.url}/latest/meta-data/instance-id`));
    expect(e?.decision, JSON.stringify(e)).toBe('deny');
    expect(e?.caller?.exe).not.toBe('/usr/bin/curl');
  }, 30_000);

  it('only the real curl was forwarded', () => {
    const forwarded = g.log.events.filter((e) => e.action === 'forwarded');
    expect(forwarded.length).toBeGreaterThan(0);
    for (const e of forwarded) expect(e.caller?.exe, JSON.stringify(g.log.events)).toBe('/usr/bin/curl');
  });
});

// ---- findings the adversarial review reported, each fixed ----

import { describeExchange } from '../support/guard-under-test.js';
import { METADATA_HOST, request } from '../support/imds-requests.js';

describe('allowMetadataFlavorAmazon: false turns the header allow path off', () => {
  let off: GuardUnderTest;
  beforeAll(async () => {
    off = await GuardUnderTest.start({ guard: { allowMetadataFlavorAmazon: false } });
  }, 30_000);
  afterAll(() => off?.close());
  it.each(['Amazon', 'amazon', ' Amazon '])(
    'a tokenless read with Metadata-Flavor: %s is refused',
    async (value) => {
      const x = await off.exchange(
        request('GET', '/latest/meta-data/iam/security-credentials/', [
          ['Host', METADATA_HOST],
          ['Metadata-Flavor', value],
        ]),
      );
      expect(x.upstreamBytes, describeExchange(x)).toBe(0);
      expect(x.events[0]?.decision).toBe('deny');
    },
  );
});
