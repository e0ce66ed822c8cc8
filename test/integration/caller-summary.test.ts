import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { defaultInstance } from '../../src/emulator/instance.js';
import type { CallerRecord } from '../../src/guard/callers/interval.js';
import { type WiredGuard, wireGuard } from '../../src/guard/wire.js';
import { type FakeCwLogs, startFakeCwLogs } from '../support/fake-cwlogs.js';
import { tokenPut, v1Get, v2Get } from '../support/imds-requests.js';
import { parseResponses, RawConnection } from '../support/raw-http.js';
import { waitFor } from '../support/wait.js';

/**
 * The guard's caller summary, through the real wiring: a guard in front of the
 * emulator, its CloudWatch Logs sink pointed at a fake CloudWatch Logs, a 1-second interval. The
 * records carry the identity read from the emulator's identity document with IMDSv2, land in one
 * log stream named after the instance, and never reach a sink that did not ask for them.
 */

const SECRET = 'Sum-Secret-4d1e9b7a2c';
const dir = mkdtempSync(join(tmpdir(), 'imdsg-callers-'));
let emulator: Emulator;
let fake: FakeCwLogs;
let wired: WiredGuard;
const logs: string[] = [];
const saved = { ...process.env };

async function exchange(url: string, raw: string): Promise<string> {
  const u = new URL(url);
  const c = await RawConnection.open(u.hostname, Number(u.port));
  await c.write(raw);
  await c.until((b) => parseResponses(b).some((r) => r.complete), 10_000, 'an answer');
  c.destroy();
  return parseResponses(c.received())[0]?.body.toString('latin1') ?? '';
}

function records(): CallerRecord[] {
  return [...(fake.groups.get('/imdsguard/callers')?.values() ?? [])]
    .flat()
    .map((e) => JSON.parse(e.message) as { kind: string })
    .filter((m): m is CallerRecord => m.kind === 'callers');
}

beforeAll(async () => {
  process.env['AWS_ACCESS_KEY_ID'] = 'AKIDCALLERSUMMARY';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'caller-summary-test-secret';
  delete process.env['AWS_PROFILE'];
  const instance = {
    ...defaultInstance(),
    instanceId: 'i-0feedbeef0000cafe',
    accountId: '444455556666',
    region: 'eu-west-1',
  };
  emulator = createEmulator({ instance });
  await emulator.start();
  fake = await startFakeCwLogs();
  wired = await wireGuard({
    config: parseConfig({
      guard: { listen: ['127.0.0.1:0'], upstream: emulator.url, mode: 'monitor', authSecret: SECRET },
      events: { file: join(dir, 'events.jsonl') },
      alerts: {
        quiet: false,
        callers: { intervalMs: 1000 },
        sinks: [
          {
            type: 'cloudwatch-logs',
            group: '/imdsguard/callers',
            region: 'eu-west-1',
            endpoint: fake.endpoint,
          },
          { type: 'file', path: join(dir, 'alerts.jsonl') },
        ],
      },
    }),
    stdout: { write: () => true },
    log: (m) => logs.push(m),
    hostname: 'summary-host',
  });
  await wired.guard.start();
}, 30_000);

afterAll(async () => {
  await wired?.close();
  await emulator?.close();
  await fake?.close();
  process.env = saved;
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('the caller summary', () => {
  it('ships one record per caller and version, with the instance identity, to a stream named after the instance', async () => {
    const url = wired.guard.url;
    await exchange(url, v1Get('/latest/meta-data/iam/security-credentials/'));
    await exchange(url, v1Get('/latest/meta-data/ami-id', [['X-Meta-Auth', SECRET]]));
    const token = await exchange(url, tokenPut());
    await exchange(url, v2Get('/latest/meta-data/instance-id', token));
    await waitFor(
      () => records().some((r) => r.version === 'v1') && records().some((r) => r.version === 'v2'),
      'caller records in CloudWatch Logs',
    );
    const group = fake.groups.get('/imdsguard/callers');
    expect([...(group?.keys() ?? [])]).toEqual(['i-0feedbeef0000cafe']);
    const v1 = records().filter((r) => r.version === 'v1');
    // the test process is the caller of every request; attribution may or may not name it
    expect(v1.reduce((n, r) => n + r.calls, 0)).toBe(2);
    expect(v1[0]).toMatchObject({
      kind: 'callers',
      host: 'summary-host',
      instanceId: 'i-0feedbeef0000cafe',
      accountId: '444455556666',
      region: 'eu-west-1',
      mode: 'monitor',
    });
    expect(
      records()
        .filter((r) => r.version === 'v2')
        .reduce((n, r) => n + r.calls, 0),
    ).toBe(2);
    // nothing secret, and the token never leaves the guard
    const all = [...(group?.values() ?? [])]
      .flat()
      .map((e) => e.message)
      .join('\n');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(token);
    expect(all).not.toContain('caller-summary-test-secret');
    expect(logs.join('\n')).not.toContain(token);
  }, 30_000);

  it('keeps shipping a heartbeat when nothing calls, and never sends the records to sinks that did not ask', async () => {
    await waitFor(() => records().some((r) => r.version === 'none'), 'a heartbeat record');
    expect(records().find((r) => r.version === 'none')).toMatchObject({
      calls: 0,
      exe: '-',
      instanceId: 'i-0feedbeef0000cafe',
    });
    const fileSink = readFileSync(join(dir, 'alerts.jsonl'), 'utf8');
    expect(fileSink).toContain('"kind":"event"');
    expect(fileSink).not.toContain('"kind":"callers"');
  }, 30_000);
});

describe('the caller summary off EC2', () => {
  it('without an identity document: records without instance id, the stream named after the host, and one line saying why', async () => {
    const down = createEmulator({ settings: { endpoint: 'disabled' } });
    await down.start();
    const own = await startFakeCwLogs();
    const lines: string[] = [];
    const g = await wireGuard({
      config: parseConfig({
        guard: { listen: ['127.0.0.1:0'], upstream: down.url, mode: 'monitor' },
        events: { file: join(dir, 'events-2.jsonl') },
        alerts: {
          callers: { intervalMs: 1000 },
          sinks: [{ type: 'cloudwatch-logs', group: '/g', region: 'eu-west-1', endpoint: own.endpoint }],
        },
      }),
      stdout: { write: () => true },
      log: (m) => lines.push(m),
      hostname: 'not-on-ec2',
    });
    try {
      await g.guard.start();
      await waitFor(() => (own.groups.get('/g')?.get('not-on-ec2')?.length ?? 0) > 0, 'a record');
      const [first] = own.groups.get('/g')?.get('not-on-ec2') ?? [];
      const rec = JSON.parse(first?.message ?? '{}') as CallerRecord;
      expect(rec).toMatchObject({ kind: 'callers', version: 'none', host: 'not-on-ec2' });
      expect('instanceId' in rec).toBe(false);
      expect(lines.filter((l) => l.includes('instance identity document'))).toHaveLength(1);
      expect(lines.join('\n')).toContain('answered 403');
    } finally {
      await g.close();
      await down.close();
      await own.close();
    }
  }, 30_000);
});
