/**
 * What a change says about itself is true, through the real CLI code and the real
 * SDK against fake-aws: the journal records the selection (ids, tags, the input file and its hash); a
 * rollback never suggests rolling back itself; a scan failure that stops a region stops the change
 * there, and one that does not is not said to.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Journal } from '../../src/fleet/journal/store.js';
import type { ChangeDocument } from '../../src/report/changes.js';
import { type FakeAws, startFakeAws } from '../support/fake-aws/index.js';
import {
  ACCOUNT,
  add,
  fakeInstance,
  fakeRegion,
  fakeTemplate,
  fleetCli,
  handFleet,
} from '../support/fake-fleet.js';

// Whole commands run in-process against fake-aws over HTTP through the real SDK (whose first import
// the first test pays): seconds each on a quiet machine, many times that on a loaded one.
vi.setConfig({ testTimeout: 60_000 });

const EAST = 'us-east-1';
const WEST = 'eu-west-1';

let aws: FakeAws | undefined;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-record-'));
});

afterEach(async () => {
  await aws?.close();
  aws = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function cli(regions: readonly string[], args: string[]) {
  return fleetCli<ChangeDocument>(aws as FakeAws, regions, dir, args);
}

describe('the journal records the selection', () => {
  it('--instances, --tags, --exclude-*, --states and the input file with its SHA-256', async () => {
    const a = fakeInstance({}, { tags: { env: 'prod', team: 'web' } });
    const b = fakeInstance({}, { tags: { env: 'prod', team: 'db' } });
    const c = fakeInstance({}, { tags: { env: 'dev' } });
    aws = await startFakeAws({ fleet: handFleet([EAST], (r) => add(r, a, b, c)) });
    const csv = `instance_id,region\n${a.instanceId},${EAST}\n${b.instanceId},${EAST}\n`;
    writeFileSync(join(dir, 'ready.csv'), csv);
    const r = await cli(
      [EAST],
      [
        'harden',
        '--input-file',
        'ready.csv',
        '--instance-ids',
        c.instanceId,
        '--tags',
        'env=prod',
        '--exclude-tags',
        'team=db',
        '--states',
        'running,stopped',
        '--yes',
        '--journal',
        'j.db',
      ],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc?.result?.counts.verified).toBe(1);
    const j = Journal.open(join(dir, 'j.db'), { mustExist: true });
    const set = j.listChangeSets()[0];
    j.close();
    expect(set?.args).toMatchObject({
      command: 'harden',
      regions: [EAST],
      selection: {
        instances: [c.instanceId],
        inputFile: {
          name: 'ready.csv',
          path: join(dir, 'ready.csv'),
          sha256: createHash('sha256').update(csv).digest('hex'),
          rows: 2,
        },
        tags: ['env=prod'],
        excludeTags: ['team=db'],
        excludeInstances: [],
        states: ['running', 'stopped'],
        onlyReady: null,
      },
    });
  });
});

describe('a rollback never suggests rolling back itself', () => {
  it('harden suggests its rollback; the rollback says what it restored, and suggests no rollback', async () => {
    aws = await startFakeAws({ fleet: handFleet([EAST], (r) => add(r, fakeInstance(), fakeInstance())) });
    const h = await cli([EAST], ['harden', '--yes', '--journal', 'j.db']);
    expect(h.code, h.stderr).toBe(0);
    const hardenSet = h.doc?.changeSetId as string;
    expect(h.stderr).toContain(`Roll back with: imdsguard fleet rollback --change-set ${hardenSet}`);
    const rb = await cli([EAST], ['rollback', '--yes', '--journal', 'j.db']);
    expect(rb.code, rb.stderr).toBe(0);
    const rollbackSet = rb.doc?.changeSetId as string;
    expect(rollbackSet).not.toBe(hardenSet);
    expect(rb.stderr).not.toContain('Roll back with');
    expect(rb.stderr).not.toContain(`--change-set ${rollbackSet}`);
    expect(rb.stderr).toContain(`Change set ${rollbackSet} restored the settings ${hardenSet} had changed`);
  });
});

describe('scan failures: what they stop is said, and what is said is done', () => {
  it('templates --fix --yes: nothing changes where the template versions could not be read; an AMI failure stops nothing', async () => {
    aws = await startFakeAws({
      fleet: handFleet([EAST, WEST], (r) => {
        r.launchTemplates.push(
          fakeTemplate(r.name === EAST ? 'lt-0eeeeeeeeeeeeeee1' : 'lt-0fffffffffffffff1', 'web', 'optional'),
        );
        add(r, fakeInstance());
      }),
    });
    const a = aws;
    a.faults.deny({ action: 'DescribeLaunchTemplateVersions', region: WEST });
    a.faults.deny({ action: 'DescribeImages', region: EAST });
    const r = await cli([EAST, WEST], ['templates', '--fix', '--yes', '--journal', 'j.db']);
    expect(r.code).toBe(1);
    // What the message says ...
    const [stops, goesOn] = r.stderr.split('this change does not use what failed');
    expect(stops).toContain('1 scan failure(s); nothing is changed in these accounts and regions:');
    expect(stops).toContain(`${ACCOUNT} ${WEST} launch-template-versions`);
    expect(stops).not.toContain(`${EAST} images`);
    expect(goesOn).toContain(`${ACCOUNT} ${EAST} images`);
    // ... is what was done: the east template is fixed, the west one untouched and shown as such.
    expect(fakeRegion(a, EAST).launchTemplates[0]?.defaultVersion).toBe(2);
    expect(fakeRegion(a, WEST).launchTemplates[0]?.defaultVersion).toBe(1);
    expect(fakeRegion(a, WEST).launchTemplates[0]?.versions).toHaveLength(1);
    // Its versions were never read: the west template is in no change of the plan.
    expect(r.doc?.items.filter((i) => i.region === WEST && i.action !== 'skip')).toEqual([]);
    expect(r.doc?.items.filter((i) => i.region === EAST).map((i) => i.action)).toEqual(['change']);
    expect(a.calls.count({ action: 'CreateLaunchTemplateVersion', region: WEST })).toBe(0);
  });

  it('a rollback never calls an instance of an unread region "no longer exists", and leaves it alone', async () => {
    aws = await startFakeAws({
      fleet: handFleet([EAST, WEST], (r) => add(r, fakeInstance(), fakeInstance())),
    });
    const a = aws;
    const h = await cli([EAST, WEST], ['harden', '--yes', '--journal', 'j.db']);
    expect(h.code, h.stderr).toBe(0);
    a.faults.deny({ action: 'DescribeInstances', region: WEST });
    const rb = await cli([EAST, WEST], ['rollback', '--yes', '--journal', 'j.db']);
    expect(rb.code).toBe(1);
    expect(rb.stderr).toContain('nothing is changed in these accounts and regions');
    const items = rb.doc?.items ?? [];
    expect(items.filter((i) => i.region === WEST).map((i) => i.skip?.reason)).toEqual([
      'scan-failed',
      'scan-failed',
    ]);
    expect(items.filter((i) => i.region === EAST).map((i) => i.action)).toEqual(['change', 'change']);
    for (const i of fakeRegion(a, WEST).instances.values())
      expect(i.metadataOptions.httpTokens).toBe('required');
    for (const i of fakeRegion(a, EAST).instances.values())
      expect(i.metadataOptions.httpTokens).toBe('optional');
  });
});
