/**
 * The real CLI binary (dist/cli/main.js, `npm run build`) against fake-aws: `fleet usage` over a mixed
 * fleet, and `fleet harden --only-ready --yes` changing exactly the ready instances (quiet ones that
 * ran through the whole window), checked on the fake fleet's own state afterwards.
 * Fake credentials and empty AWS config files: the machine's AWS configuration is never read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, fakeAwsEnv, requireBuild, runBin } from '../support/bin.js';
import { mixedUsageFleet, onlyKinds, USAGE_KINDS, type UsageKind } from '../support/fake-aws/cloudwatch.js';
import { type FakeAws, getRegion, startFakeAws } from '../support/fake-aws/index.js';

const ACCOUNT = '111111111111';
let aws: FakeAws | undefined;
let dir: string;

function run(args: string[]): Promise<CliRun> {
  const config = join(dir, 'config');
  return runBin(args, { env: fakeAwsEnv(dir, { config, credentials: config }), cwd: dir });
}

beforeAll(() => {
  requireBuild();
});

afterEach(async () => {
  await aws?.close();
  aws = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(perRegion: Partial<Record<UsageKind, number>>) {
  const m = mixedUsageFleet({ nowMs: Date.now(), accounts: [ACCOUNT], regions: ['us-east-1'], perRegion });
  aws = await startFakeAws({ fleet: m.fleet });
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-usage-e2e-'));
  writeFileSync(join(dir, 'config'), '');
  return { aws, kinds: m.kinds };
}

function tokensByKind(a: FakeAws, kinds: Map<string, UsageKind>): Record<string, string[]> {
  const region = getRegion(a.fleet, ACCOUNT, 'us-east-1');
  const out: Record<string, string[]> = {};
  for (const [id, kind] of kinds) {
    const t = region?.instances.get(id)?.metadataOptions.httpTokens ?? 'missing';
    const list = out[kind] ?? [];
    list.push(t);
    out[kind] = list;
  }
  return out;
}

// Each test runs the binary once or twice (runBin kills a run after 60 s): 1-3 s a run when quiet.
describe('fleet usage and harden --only-ready (real binary)', { timeout: 120_000 }, () => {
  it('fleet usage --format ndjson: one line per instance with the readiness its kind must have', async () => {
    const { aws: a, kinds } = await start({ v1: 2, quiet: 3, stopped: 2, new: 2, enforced: 1, broken: 1 });
    const r = await run(['fleet', 'usage', '--endpoint-url', a.url, '--format', 'ndjson', '--days', '14']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({
      type: 'meta',
      kind: 'imdsguard.fleet.usage',
      window: { days: 14, periodSeconds: 21_600 },
    });
    expect(lines[1]).toEqual({
      type: 'summary',
      ready: 3,
      'not-ready': 2,
      unknown: 6,
      enforced: 1,
      disabled: 0,
      broken: 1,
    });
    const inst = lines.filter((l) => l.type === 'instance');
    expect(inst).toHaveLength(kinds.size);
    for (const l of inst) expect(l.readiness).toBe(USAGE_KINDS[kinds.get(l.instanceId) as UsageKind]);
  });

  it('harden --only-ready --yes hardens exactly the ready instances of a mixed fleet', async () => {
    const { aws: a, kinds } = await start({
      v1: 3,
      quiet: 4,
      stopped: 2,
      new: 2,
      enforced: 1,
      broken: 1,
      missing: 1,
      gaps: 1,
    });
    const before = tokensByKind(a, kinds);
    expect(before['quiet']).toEqual(['optional', 'optional', 'optional', 'optional']);

    // The plan alone first (no --yes, not a terminal): nothing changes.
    const plan = await run(['fleet', 'harden', '--only-ready', '--endpoint-url', a.url, '--format', 'json']);
    expect(plan.code).toBe(0);
    expect(a.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(0);

    const r = await run([
      'fleet',
      'harden',
      '--only-ready',
      '--yes',
      '--journal',
      join(dir, 'changes.db'),
      '--endpoint-url',
      a.url,
      '--format',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const modified = a.calls.count({ action: 'ModifyInstanceMetadataOptions', failed: false });
    expect(modified).toBe(4);
    const after = tokensByKind(a, kinds);
    expect(after).toEqual({
      v1: ['optional', 'optional', 'optional'],
      quiet: ['required', 'required', 'required', 'required'],
      stopped: ['optional', 'optional'],
      new: ['optional', 'optional'],
      enforced: ['required'],
      broken: ['required'],
      missing: ['optional'],
      gaps: ['optional'],
    });
    // Readiness was read from CloudWatch in batches, not per instance: 2 runs (the plan, then --yes) x 1
    // batch x 2 parts (the whole periods, then the tail up to now; no tail exactly on a boundary).
    expect([2, 4]).toContain(a.calls.count({ action: 'GetMetricData' }));
  });

  it('harden --only-ready refuses nothing it cannot see: a CloudWatch failure leaves every instance out, exit 1', async () => {
    const { aws: a, kinds } = await start(onlyKinds({ quiet: 3, v1: 1 }));
    a.faults.fail({ action: 'GetMetricData', code: 'AccessDenied', status: 403, message: 'not authorized' });
    const r = await run([
      'fleet',
      'harden',
      '--only-ready',
      '--yes',
      '--journal',
      join(dir, 'c.db'),
      '--endpoint-url',
      a.url,
      '--format',
      'json',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cloudwatch:GetMetricData');
    expect(a.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(0);
    expect(
      Object.values(tokensByKind(a, kinds))
        .flat()
        .every((t) => t === 'optional'),
    ).toBe(true);
  });
});
