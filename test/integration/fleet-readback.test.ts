/**
 * Read-backs after a change and after an ambiguous failure, through the real CLI code and the real AWS SDK against fake-aws:
 *   - the read-back after a change gets the same retries and pacing as every other call: under
 *     throttling a harden and its rollback both verify, and a read that never succeeds is `unverified`
 *     (exit 1, its own sentence), never `mismatch`;
 *   - a modify whose connection is cut is read back: `applied` when AWS acted before the cut,
 *     `not-applied` when it did not; the rollback restores the first and leaves the second alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/fleet/journal/store.js';
import type { ChangeDocument } from '../../src/report/changes.js';
import { type FakeAws, type FakeFleet, startFakeAws } from '../support/fake-aws/index.js';
import {
  add,
  fakeRegion,
  fleetCli,
  handFleet,
  metadataSnapshot,
  numberedInstance,
} from '../support/fake-fleet.js';

const REGION = 'us-east-1';

let aws: FakeAws | undefined;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-readback-'));
});

afterEach(async () => {
  await aws?.close();
  aws = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** `n` instances on optional with a mix of the other settings. */
function fleetOf(n: number): FakeFleet {
  return handFleet([REGION], (r) => {
    for (let k = 1; k <= n; k++) {
      add(
        r,
        numberedInstance(k, {
          httpEndpoint: k % 5 === 0 ? 'disabled' : 'enabled',
          httpPutResponseHopLimit: 1 + (k % 3),
          httpProtocolIpv6: k % 4 === 0 ? 'enabled' : 'disabled',
          instanceMetadataTags: k % 2 === 0 ? 'enabled' : 'disabled',
        }),
      );
    }
  });
}

function cli(args: string[]) {
  return fleetCli<ChangeDocument>(aws as FakeAws, [REGION], dir, [
    ...args,
    '--journal',
    join(dir, 'j.db'),
    '--max-attempts',
    '2',
  ]);
}

/** The read-backs: DescribeInstances filtered by instance id (the inventory scan uses no filter). */
const readBack = (c: { params?: URLSearchParams | undefined }) =>
  c.params?.get('Filter.1.Name') === 'instance-id';

describe('read-back after a change', () => {
  it('under throttling the harden and its rollback verify, and every instance is exactly as before', async () => {
    aws = await startFakeAws({ fleet: fleetOf(12) });
    const original = metadataSnapshot(aws);
    // Each read-back is throttled more times than the SDK's own attempts (2): only the run's
    // throttle rounds get it through.
    aws.faults.throttle({ action: 'DescribeInstances', match: readBack, next: 3 });
    const h = await cli(['harden', '--yes']);
    expect(h.code, h.stderr).toBe(0);
    expect(h.doc?.result?.counts).toEqual({ verified: h.doc?.counts.change });
    expect(aws.calls.count({ action: 'DescribeInstances', errorCode: 'RequestLimitExceeded' })).toBe(3);
    aws.faults.throttle({ action: 'DescribeInstances', match: readBack, next: 3 });
    const r = await cli(['rollback', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc?.result?.counts).toEqual({ verified: h.doc?.counts.change });
    expect(r.doc?.items.some((i) => i.status === 'mismatch')).toBe(false);
    expect(metadataSnapshot(aws)).toEqual(original);
  }, 90_000);

  it('a read-back that never succeeds is unverified (never mismatch): the change is made, exit 1', async () => {
    aws = await startFakeAws({ fleet: fleetOf(4) });
    // Every read-back fails (a 500 the SDK retries, then gives up); the retry rounds for a read that
    // stays throttled are the unit tests' (fake clock).
    aws.faults.fail({ action: 'DescribeInstances', match: readBack, code: 'InternalError', status: 500 });
    const h = await cli(['harden', '--yes']);
    expect(h.code).toBe(1);
    const changed = h.doc?.items.filter((i) => i.action === 'change') ?? [];
    expect(changed.length).toBe(4);
    for (const i of changed) {
      expect(i.status).toBe('unverified');
      expect(i.errorCode).toBe('IMDSGUARD_E_CHANGE_UNVERIFIED');
    }
    expect(h.stderr).toContain('4 applied but not confirmed (unverified');
    expect(h.stderr).toContain('[IMDSGUARD_E_CHANGE_UNVERIFIED]');
    expect(h.stderr).not.toContain('mismatch');
    // It was applied: the fleet says so, and the journal lets a rollback consider it.
    const region = fakeRegion(aws, REGION);
    for (const i of changed)
      expect(region?.instances.get(i.resourceId)?.metadataOptions.httpTokens).toBe('required');
  });
});

describe('ambiguous failures are read back', () => {
  it('a modify cut after AWS acted is applied, one cut before is not-applied; the rollback uses that record', async () => {
    aws = await startFakeAws({ fleet: fleetOf(6) });
    const original = metadataSnapshot(aws);
    const acted = 'i-00000000000000001';
    const notActed = 'i-00000000000000002';
    // Every attempt is cut: the SDK's retries cannot hide it.
    aws.faults.cut({ action: 'ModifyInstanceMetadataOptions', resourceId: acted, when: 'after' });
    aws.faults.cut({ action: 'ModifyInstanceMetadataOptions', resourceId: notActed, when: 'before' });
    const h = await cli(['harden', '--yes']);
    // One change the plan asked for did not happen: exit 1, and the sentence says which kind.
    expect(h.code).toBe(1);
    expect(h.stderr).toContain('1 not applied (the call failed; read back unchanged)');
    const byId = new Map((h.doc?.items ?? []).map((i) => [i.resourceId, i]));
    expect(byId.get(acted)?.status).toBe('verified');
    expect(byId.get(notActed)?.status).toBe('not-applied');
    expect(byId.get(notActed)?.errorMessage).toMatch(/socket hang up|ECONNRESET|aborted/);
    const region = fakeRegion(aws, REGION);
    expect(region?.instances.get(acted)?.metadataOptions.httpTokens).toBe('required');
    expect(region?.instances.get(notActed)?.metadataOptions.httpTokens).toBe('optional');
    const j = Journal.open(join(dir, 'j.db'), { mustExist: true });
    const items = new Map(j.items(String(h.doc?.changeSetId)).map((i) => [i.item.resourceId, i]));
    j.close();
    expect(items.get(acted)?.result?.ambiguous?.message).toMatch(/socket hang up|ECONNRESET|aborted/);
    expect(items.get(notActed)?.status).toBe('not-applied');

    aws.faults.reset();
    const r = await cli(['rollback', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const rolled = (r.doc?.items ?? []).map((i) => i.resourceId);
    expect(rolled).toContain(acted);
    // Nothing to undo for the change that never happened.
    expect(rolled).not.toContain(notActed);
    expect(metadataSnapshot(aws)).toEqual(original);
  });
});

describe('a failing DryRun fails the dry run', () => {
  it('UnauthorizedOperation on a DryRun call is dry-run-failed, exit 1; nothing changes', async () => {
    aws = await startFakeAws({ fleet: fleetOf(4) });
    const original = metadataSnapshot(aws);
    const denied = 'i-00000000000000003';
    aws.faults.deny({ action: 'ModifyInstanceMetadataOptions', resourceId: denied });
    const d = await cli(['harden', '--dry-run']);
    expect(d.code).toBe(1);
    const byId = new Map((d.doc?.items ?? []).map((i) => [i.resourceId, i]));
    expect(byId.get(denied)).toMatchObject({ status: 'dry-run-failed', errorCode: 'UnauthorizedOperation' });
    const others = (d.doc?.items ?? []).filter((i) => i.action === 'change' && i.resourceId !== denied);
    expect(others.length).toBe(3);
    for (const i of others) expect(i.status).toBe('dry-run-ok');
    expect(d.stderr).toContain('1 change(s) would fail [IMDSGUARD_E_CHANGE_FAILED]');
    // Every call was a DryRun: AWS answered DryRunOperation (would succeed) or UnauthorizedOperation.
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions', errorCode: 'DryRunOperation' })).toBe(
      3,
    );
    expect(
      aws.calls.count({ action: 'ModifyInstanceMetadataOptions', errorCode: 'UnauthorizedOperation' }),
    ).toBe(1);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions', failed: false })).toBe(0);
    expect(metadataSnapshot(aws)).toEqual(original);
  });
});
