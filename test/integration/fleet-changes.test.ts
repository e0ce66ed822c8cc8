/**
 * Fleet changes through the real CLI code and the real AWS SDK against fake-aws: dry run, plan without
 * --yes, harden keeping every other field, exact rollback (harden, disable, hop limit), throttling
 * storm under the API's token bucket, an interrupted apply and its idempotent re-run, templates --fix
 * and defaults --set with their rollbacks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliContext } from '../../src/cli/context.js';
import { runCli } from '../../src/cli/program.js';
import { sdkChangeApi } from '../../src/fleet/apply/api.js';
import { RateLimiter } from '../../src/fleet/apply/rate-limit.js';
import { AwsClientFactory } from '../../src/fleet/aws/clients.js';
import type { MiddlewareClient } from '../../src/fleet/aws/counter.js';
import { Journal } from '../../src/fleet/journal/store.js';
import type { ChangeDocument } from '../../src/report/changes.js';
import { capture } from '../support/cli.js';
import {
  addInstance,
  allInstances,
  FAKE_CREDENTIALS,
  type FakeAws,
  type FakeFleet,
  type FakeInstance,
  fakeCredentialsEnv,
  startFakeAws,
} from '../support/fake-aws/index.js';
import {
  ACCOUNT,
  fakeInstance,
  fakeRegion,
  fleetCli,
  handFleet,
  metadata,
  metadataSnapshot,
} from '../support/fake-fleet.js';

const REGION = 'us-east-1';
const NEVER = new Promise<string>(() => {});

let aws: FakeAws | undefined;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-changes-'));
});

afterEach(async () => {
  await aws?.close();
  aws = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function env(): Record<string, string> {
  return fakeCredentialsEnv(REGION);
}

function cli(args: string[], opts: { shutdown?: Promise<string> } = {}) {
  return fleetCli<ChangeDocument>(aws as FakeAws, [REGION], dir, args, opts);
}

/** A fleet of `n` instances with a mix of settings (no terminated ones unless asked). */
function mixedFleet(n: number): FakeFleet {
  return handFleet([REGION], (r) => {
    for (let k = 0; k < n; k++) {
      const i = fakeInstance({
        httpTokens: k % 3 === 0 ? 'required' : 'optional',
        httpEndpoint: k % 7 === 0 ? 'disabled' : 'enabled',
        httpPutResponseHopLimit: 1 + (k % 4),
        httpProtocolIpv6: k % 5 === 0 ? 'enabled' : 'disabled',
        instanceMetadataTags: k % 6 === 0 ? 'enabled' : 'disabled',
      });
      if (k % 2 === 0) i.tags['env'] = 'prod';
      if (k % 11 === 0) i.state = 'stopped';
      addInstance(r, ACCOUNT, i);
    }
  });
}

describe('fleet harden / disable / hop-limit against fake-aws', () => {
  it('without --yes prints the plan, makes no change and says how to apply', async () => {
    aws = await startFakeAws({ fleet: mixedFleet(20) });
    const before = metadataSnapshot(aws);
    const r = await cli(['harden']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('--yes');
    expect(r.doc?.applied).toBe(false);
    expect(r.doc?.counts.change).toBeGreaterThan(0);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(0);
    expect(metadataSnapshot(aws)).toEqual(before);
  });

  it('on a terminal, applies only after the interactive confirmation', async () => {
    aws = await startFakeAws({ fleet: mixedFleet(12) });
    const questions: string[] = [];
    const run = async (answer: boolean) => {
      const stdout = capture(true);
      const stderr = capture(true);
      const ctx: CliContext = {
        stdout,
        stderr,
        env: env(),
        cwd: dir,
        shutdown: NEVER,
        onReload: () => () => {},
        confirm: async (q) => {
          questions.push(q);
          return answer;
        },
        exitCode: 0,
      };
      const code = await runCli(
        ['fleet', 'harden', '--endpoint-url', (aws as FakeAws).url, '--regions', REGION],
        ctx,
      );
      return { code, stdout: stdout.text, stderr: stderr.text };
    };
    const no = await run(false);
    expect(no.code).toBe(0);
    expect(no.stdout).toContain('ACTION');
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(0);
    const yes = await run(true);
    expect(yes.code, yes.stderr).toBe(0);
    expect(questions[0]).toMatch(/^Apply \d+ change\(s\) \(harden\)\?$/);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBeGreaterThan(0);
    expect(yes.stdout).toContain('verified');
  });

  it('--dry-run sends every call with DryRun and changes nothing', async () => {
    aws = await startFakeAws({ fleet: mixedFleet(40) });
    const before = metadataSnapshot(aws);
    const r = await cli(['harden', '--dry-run', '--journal', 'j.db']);
    expect(r.code, r.stderr).toBe(0);
    const changes = r.doc?.counts.change ?? 0;
    expect(changes).toBeGreaterThan(10);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(changes);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions', errorCode: 'DryRunOperation' })).toBe(
      changes,
    );
    expect(metadataSnapshot(aws)).toEqual(before);
    for (const { instance: i } of allInstances(aws.fleet)) expect(i.modifiedAt).toBeUndefined();
    expect(r.doc?.items.filter((i) => i.action === 'change').every((i) => i.status === 'dry-run-ok')).toBe(
      true,
    );
    // The dry run is journalled, but a rollback refuses it (it changed nothing).
    const j = Journal.open(join(dir, 'j.db'), { mustExist: true });
    expect(j.listChangeSets()[0]?.dryRun).toBe(true);
    j.close();
    const rb = await cli(['rollback', '--journal', 'j.db', '--yes']);
    expect(rb.code).toBe(2);
    expect(rb.stderr).toContain('IMDSGUARD_E_CHANGE_SET');
  });

  it('harden requires tokens, keeps every other field, never re-enables a disabled endpoint', async () => {
    let keep!: FakeInstance;
    let off!: FakeInstance;
    let done!: FakeInstance;
    let gone!: FakeInstance;
    let excluded!: FakeInstance;
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        keep = fakeInstance({
          httpPutResponseHopLimit: 3,
          httpProtocolIpv6: 'enabled',
          instanceMetadataTags: 'enabled',
        });
        off = fakeInstance({ httpEndpoint: 'disabled', httpPutResponseHopLimit: 2 });
        done = fakeInstance({ httpTokens: 'required', httpPutResponseHopLimit: 5 });
        gone = fakeInstance({}, { state: 'terminated' });
        excluded = fakeInstance({}, { tags: { Name: 'x', keep: 'v1' } });
        for (const i of [keep, off, done, gone, excluded]) addInstance(r, ACCOUNT, i);
      }),
    });
    const r = await cli(['harden', '--yes', '--journal', 'j.db', '--exclude-tags', 'keep=v1']);
    expect(r.code, r.stderr).toBe(0);
    expect(keep.metadataOptions).toMatchObject({
      httpTokens: 'required',
      httpEndpoint: 'enabled',
      httpPutResponseHopLimit: 3,
      httpProtocolIpv6: 'enabled',
      instanceMetadataTags: 'enabled',
    });
    expect(off.metadataOptions).toMatchObject({
      httpTokens: 'optional',
      httpEndpoint: 'disabled',
      httpPutResponseHopLimit: 2,
    });
    expect(excluded.metadataOptions.httpTokens).toBe('optional');
    const reason = (id: string) => r.doc?.items.find((i) => i.resourceId === id)?.skip?.reason;
    expect(reason(off.instanceId)).toBe('endpoint-disabled');
    expect(reason(done.instanceId)).toBe('already-compliant');
    expect(reason(gone.instanceId)).toBe('terminated');
    expect(reason(excluded.instanceId)).toBe('excluded');
    expect(r.doc?.items.find((i) => i.resourceId === keep.instanceId)?.status).toBe('verified');
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(1);
  });

  // In-process: six change runs over the fake fleet, several seconds on a loaded machine.
  it('harden, disable and hop-limit, each rolled back, leave every instance exactly as before', async () => {
    aws = await startFakeAws({ fleet: mixedFleet(120) });
    const original = metadataSnapshot(aws);
    const full = () =>
      Object.fromEntries(
        [...allInstances((aws as FakeAws).fleet)].map((x) => [
          x.instance.instanceId,
          { ...x.instance.metadataOptions },
        ]),
      );
    const fullOriginal = full();
    const h = await cli(['harden', '--yes', '--journal', 'j.db', '--tags', 'env=prod']);
    expect(h.code, h.stderr).toBe(0);
    const d = await cli(['disable', '--yes', '--journal', 'j.db', '--states', 'stopped']);
    expect(d.code, d.stderr).toBe(0);
    const hl = await cli(['hop-limit', '2', '--yes', '--journal', 'j.db']);
    expect(hl.code, hl.stderr).toBe(0);
    expect(metadataSnapshot(aws)).not.toEqual(original);
    for (const doc of [h.doc, d.doc, hl.doc]) {
      expect(doc?.result?.failures).toBe(0);
      expect(doc?.result?.counts.verified).toBe(doc?.counts.change);
    }
    // Roll back the most recent first (hop-limit), then the others by id.
    const r1 = await cli(['rollback', '--journal', 'j.db', '--yes']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.doc?.rollbackOf).toBe(hl.doc?.changeSetId);
    const r2 = await cli([
      'rollback',
      '--journal',
      'j.db',
      '--change-set',
      String(d.doc?.changeSetId),
      '--yes',
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    const r3 = await cli([
      'rollback',
      '--journal',
      'j.db',
      '--change-set',
      String(h.doc?.changeSetId),
      '--yes',
    ]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(metadataSnapshot(aws)).toEqual(original);
    // All six fields, state included, for running instances: every change read back and settled. A
    // stopped instance's change reads pending until it starts (EC2 API reference), so the stopped
    // instances disable touched still read pending.
    const states = new Map(
      [...allInstances((aws as FakeAws).fleet)].map((x) => [x.instance.instanceId, x.instance.state]),
    );
    const only = (m: Record<string, unknown>, state: string) =>
      Object.fromEntries(Object.entries(m).filter(([id]) => states.get(id) === state));
    expect(only(full(), 'running')).toEqual(only(fullOriginal, 'running'));
    const disabled = (d.doc?.items ?? []).filter((i) => i.action === 'change').map((i) => i.resourceId);
    expect(disabled.length).toBeGreaterThan(0);
    for (const id of disabled) expect(full()[id]?.state).toBe('pending');
    // The most recent change set was rolled back: a bare rollback refuses to cascade.
    const again = await cli(['rollback', '--journal', 'j.db', '--yes']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already rolled back');
    // Each rollback is its own change set, of kind rollback, referencing the original.
    const j = Journal.open(join(dir, 'j.db'), { mustExist: true });
    const sets = j.listChangeSets();
    j.close();
    expect(
      sets
        .filter((s) => s.kind === 'rollback')
        .map((s) => s.rollbackOf)
        .sort(),
    ).toEqual([h.doc?.changeSetId, d.doc?.changeSetId, hl.doc?.changeSetId].sort());
  }, 60_000);

  it('selects from a CSV with a BOM, quotes, CRLF and blank lines; a bad row names its line', async () => {
    aws = await startFakeAws({ fleet: mixedFleet(30) });
    const ids = [...allInstances(aws.fleet)].map((x) => x.instance.instanceId);
    const lines = [
      '\ufeffaccount_id,"instance_id",note',
      `${ACCOUNT},"${ids[1]}","a, quoted note"`,
      '',
      `,${ids[2]},x`,
    ];
    writeFileSync(join(dir, 'sel.csv'), `${lines.join('\r\n')}\r\n\r\n`);
    const r = await cli(['harden', '--input-file', 'sel.csv']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc?.items.map((i) => i.resourceId).sort()).toEqual([ids[1], ids[2]].sort());
    writeFileSync(join(dir, 'bad.csv'), `instance_id\n${ids[1]}\n\nnot-an-id\n`);
    const bad = await cli(['harden', '--input-file', 'bad.csv']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bad.csv:4');
    expect(bad.stderr).toContain('IMDSGUARD_E_INPUT_FILE');
  });

  it('a throttling storm: everything applied, and the API token bucket is never exceeded', async () => {
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        for (let k = 0; k < 130; k++)
          addInstance(r, ACCOUNT, fakeInstance({ httpPutResponseHopLimit: 1 + (k % 3) }));
      }),
    });
    aws.limits.enable();
    aws.faults.throttle({ action: 'ModifyInstanceMetadataOptions', percent: 25 });
    const r = await cli(['harden', '--yes', '--journal', 'j.db', '--concurrency', '8']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc?.result?.counts.verified).toBe(130);
    expect(aws.faults.fired['RequestLimitExceeded'] ?? 0).toBeGreaterThan(10);
    expect(aws.limits.exceededCount).toBe(0);
    for (const { instance: i } of allInstances(aws.fleet))
      expect(i.metadataOptions.httpTokens).toBe('required');
  }, 60_000);

  it('an apply stopped midway leaves a consistent journal, and a re-run finishes without repeating a change', async () => {
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        for (let k = 0; k < 60; k++) addInstance(r, ACCOUNT, fakeInstance({}));
      }),
      latencyMs: 15,
    });
    let stop!: (s: string) => void;
    const shutdown = new Promise<string>((res) => {
      stop = res;
    });
    const timer = setInterval(() => {
      if ((aws as FakeAws).calls.count({ action: 'ModifyInstanceMetadataOptions' }) >= 12) stop('SIGINT');
    }, 2);
    const first = await cli(['harden', '--yes', '--journal', 'j.db', '--concurrency', '2'], { shutdown });
    clearInterval(timer);
    expect(first.code).toBe(1);
    expect(first.doc?.result?.interrupted).toBe(true);
    const j = Journal.open(join(dir, 'j.db'), { mustExist: true });
    const set = j.listChangeSets()[0];
    expect(set?.status).toBe('interrupted');
    const items = j.items(String(set?.id));
    j.close();
    const changed = new Set(
      [...allInstances(aws.fleet)]
        .filter((x) => x.instance.modifiedAt !== undefined)
        .map((x) => x.instance.instanceId),
    );
    const journalled = new Set(items.filter((i) => i.status !== 'planned').map((i) => i.item.resourceId));
    expect(changed.size).toBeGreaterThanOrEqual(12);
    expect(changed.size).toBeLessThan(60);
    // Every call the server saw has its journal row (written before the call).
    for (const id of changed) expect(journalled.has(id)).toBe(true);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(journalled.size);
    const sentBefore = aws.calls.count({ action: 'ModifyInstanceMetadataOptions' });
    const second = await cli(['harden', '--yes', '--journal', 'j.db']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.doc?.counts.bySkipReason['already-compliant']).toBe(changed.size);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' }) - sentBefore).toBe(60 - changed.size);
    for (const { instance: i } of allInstances(aws.fleet))
      expect(i.metadataOptions.httpTokens).toBe('required');
  }, 30_000);
});

describe('fleet relax / enable against fake-aws', () => {
  it('relax allows IMDSv1 on the selection only, keeps every other field and a disabled endpoint; enable turns endpoints back on keeping HttpTokens; both roll back exactly', async () => {
    let hardened!: FakeInstance;
    let other!: FakeInstance;
    let off!: FakeInstance;
    let offRequired!: FakeInstance;
    let already!: FakeInstance;
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        hardened = fakeInstance(
          { httpTokens: 'required', httpPutResponseHopLimit: 2, instanceMetadataTags: 'enabled' },
          { tags: { Name: 'a', app: 'legacy' } },
        );
        other = fakeInstance({ httpTokens: 'required' }, { tags: { Name: 'b', app: 'new' } });
        off = fakeInstance(
          { httpTokens: 'required', httpEndpoint: 'disabled', httpPutResponseHopLimit: 3 },
          {
            tags: { Name: 'c', app: 'legacy' },
          },
        );
        offRequired = fakeInstance(
          { httpTokens: 'required', httpEndpoint: 'disabled' },
          { tags: { Name: 'd' } },
        );
        already = fakeInstance({ httpTokens: 'optional' }, { tags: { Name: 'e', app: 'legacy' } });
        for (const i of [hardened, other, off, offRequired, already]) addInstance(r, ACCOUNT, i);
      }),
    });
    const original = metadataSnapshot(aws);
    const plan = await cli(['relax', '--tags', 'app=legacy']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.doc?.kind).toBe('relax');
    expect(plan.doc?.applied).toBe(false);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(0);

    const dry = await cli(['relax', '--tags', 'app=legacy', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions', errorCode: 'DryRunOperation' })).toBe(
      1,
    );
    expect(metadataSnapshot(aws)).toEqual(original);

    const r = await cli(['relax', '--tags', 'app=legacy', '--yes', '--journal', 'j.db']);
    expect(r.code, r.stderr).toBe(0);
    expect(hardened.metadataOptions).toMatchObject({
      httpTokens: 'optional',
      httpEndpoint: 'enabled',
      httpPutResponseHopLimit: 2,
      httpProtocolIpv6: 'disabled',
      instanceMetadataTags: 'enabled',
    });
    expect(other.metadataOptions.httpTokens).toBe('required');
    expect(off.metadataOptions).toMatchObject({ httpTokens: 'required', httpEndpoint: 'disabled' });
    const reason = (doc: typeof r.doc, id: string) =>
      doc?.items.find((i) => i.resourceId === id)?.skip?.reason;
    expect(reason(r.doc, off.instanceId)).toBe('endpoint-disabled');
    expect(reason(r.doc, already.instanceId)).toBe('already-compliant');
    // Outside the selection: not in the plan at all.
    expect(r.doc?.items.some((i) => i.resourceId === other.instanceId)).toBe(false);
    expect(r.doc?.items.find((i) => i.resourceId === hardened.instanceId)?.status).toBe('verified');

    const e = await cli([
      'enable',
      '--instances',
      `${off.instanceId},${offRequired.instanceId},${other.instanceId}`,
      '--yes',
      '--journal',
      'j.db',
    ]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.doc?.kind).toBe('enable');
    // The endpoint comes back with the options it had: tokens still required, hop limit kept.
    expect(off.metadataOptions).toMatchObject({
      httpTokens: 'required',
      httpEndpoint: 'enabled',
      httpPutResponseHopLimit: 3,
    });
    expect(offRequired.metadataOptions).toMatchObject({ httpTokens: 'required', httpEndpoint: 'enabled' });
    expect(reason(e.doc, other.instanceId)).toBe('already-compliant');

    // Both are journalled: rolled back (the most recent first), everything is exactly as before.
    const r1 = await cli(['rollback', '--journal', 'j.db', '--yes']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.doc?.rollbackOf).toBe(e.doc?.changeSetId);
    const r2 = await cli([
      'rollback',
      '--journal',
      'j.db',
      '--change-set',
      String(r.doc?.changeSetId),
      '--yes',
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(metadataSnapshot(aws)).toEqual(original);
  });

  it('where AWS enforces IMDSv2, relax and an enable of an instance on optional are blocked with the reason and never sent', async () => {
    let hardened!: FakeInstance;
    let offOptional!: FakeInstance;
    let offRequired!: FakeInstance;
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        hardened = fakeInstance({ httpTokens: 'required' });
        offOptional = fakeInstance({ httpTokens: 'optional', httpEndpoint: 'disabled' });
        offRequired = fakeInstance({ httpTokens: 'required', httpEndpoint: 'disabled' });
        for (const i of [hardened, offOptional, offRequired]) addInstance(r, ACCOUNT, i);
        r.defaults = { httpTokensEnforced: 'enabled' };
      }),
    });
    const before = metadataSnapshot(aws);
    const relax = await cli(['relax', '--instances', hardened.instanceId, '--yes', '--journal', 'j.db']);
    expect(relax.code).toBe(1);
    expect(relax.doc?.counts).toMatchObject({ change: 0, blocked: 1 });
    expect(relax.doc?.items[0]?.blocked?.reason).toBe('tokens-enforced');
    expect(relax.stderr).toContain('IMDSGUARD_E_CHANGE_BLOCKED');
    expect(metadataSnapshot(aws)).toEqual(before);
    expect(aws.calls.count({ action: 'ModifyInstanceMetadataOptions' })).toBe(0);

    const enable = await cli([
      'enable',
      '--instances',
      `${offOptional.instanceId},${offRequired.instanceId}`,
      '--yes',
      '--journal',
      'j.db',
    ]);
    expect(enable.code).toBe(1);
    const byId = new Map((enable.doc?.items ?? []).map((it) => [it.resourceId, it]));
    expect(byId.get(offOptional.instanceId)?.blocked?.reason).toBe('tokens-enforced');
    expect(byId.get(offRequired.instanceId)?.status).toBe('verified');
    expect(offRequired.metadataOptions).toMatchObject({ httpTokens: 'required', httpEndpoint: 'enabled' });
    expect(offOptional.metadataOptions.httpEndpoint).toBe('disabled');
    expect(
      aws.calls.count({ action: 'ModifyInstanceMetadataOptions', errorCode: 'UnsupportedOperation' }),
    ).toBe(0);
  });
});

describe('the SDK change API', () => {
  it('puts every field to keep on the wire, and wraps errors with account, region and instance', async () => {
    let target!: FakeInstance;
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        target = fakeInstance({
          httpEndpoint: 'disabled',
          httpPutResponseHopLimit: 4,
          instanceMetadataTags: 'enabled',
        });
        addInstance(r, ACCOUNT, target);
      }),
    });
    const factory = new AwsClientFactory({
      endpointUrl: aws.url,
      credentials: FAKE_CREDENTIALS,
      defaultRegion: REGION,
    });
    try {
      const account = { accountId: ACCOUNT, name: null, roleArn: null };
      const bodies: string[] = [];
      const stack = factory.ec2(account, REGION)
        .middlewareStack as unknown as MiddlewareClient['middlewareStack'];
      stack.add(
        (next: (a: unknown) => Promise<unknown>) => async (args: unknown) => {
          bodies.push(String((args as { request: { body: unknown } }).request.body));
          return next(args);
        },
        { step: 'finalizeRequest', name: 'testCaptureBody', priority: 'low' },
      );
      const api = sdkChangeApi(factory, [account], new RateLimiter());
      const where = { accountId: ACCOUNT, region: REGION };
      await api.modifyInstanceMetadata(
        where,
        target.instanceId,
        {
          httpTokens: 'required',
          httpEndpoint: 'disabled',
          httpPutResponseHopLimit: 4,
          httpProtocolIpv6: 'disabled',
          instanceMetadataTags: 'enabled',
        },
        false,
      );
      const sent = new URLSearchParams(bodies.find((b) => b.includes('ModifyInstanceMetadataOptions')));
      expect(Object.fromEntries(sent)).toMatchObject({
        InstanceId: target.instanceId,
        HttpTokens: 'required',
        HttpEndpoint: 'disabled',
        HttpPutResponseHopLimit: '4',
        HttpProtocolIpv6: 'disabled',
        InstanceMetadataTags: 'enabled',
      });
      const err = await api
        .modifyInstanceMetadata(
          where,
          'i-0fffffffffffffff0',
          { ...metadata(), state: undefined } as never,
          false,
        )
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'IMDSGUARD_E_AWS' });
      expect(String((err as Error).message)).toContain(
        `account ${ACCOUNT} ${REGION} ec2:ModifyInstanceMetadataOptions i-0fffffffffffffff0: InvalidInstanceID.NotFound`,
      );
    } finally {
      factory.destroy();
    }
  });
});

describe('fleet templates and fleet defaults against fake-aws', () => {
  it('templates --fix adds a tokens-required version inheriting everything, as default; rollback restores it', async () => {
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        const created = new Date(Date.UTC(2025, 0, 1));
        r.launchTemplates.push(
          {
            launchTemplateId: 'lt-0aaaaaaaaaaaaaaa1',
            launchTemplateName: 'web',
            createTime: created,
            defaultVersion: 1,
            versions: [
              {
                versionNumber: 1,
                createTime: created,
                data: {
                  imageId: 'ami-0123456789abcdef0',
                  instanceType: 'm6i.large',
                  iamInstanceProfileArn: `arn:aws:iam::${ACCOUNT}:instance-profile/web`,
                  metadataOptions: {
                    httpTokens: 'optional',
                    httpPutResponseHopLimit: 2,
                    httpProtocolIpv6: 'enabled',
                  },
                },
              },
            ],
          },
          {
            launchTemplateId: 'lt-0aaaaaaaaaaaaaaa2',
            launchTemplateName: 'safe',
            createTime: created,
            defaultVersion: 1,
            versions: [
              {
                versionNumber: 1,
                createTime: created,
                data: { metadataOptions: { httpTokens: 'required' } },
              },
            ],
          },
        );
        r.autoScalingGroups.push({
          name: 'web-asg',
          arn: `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/web-asg`,
          createdTime: created,
          minSize: 0,
          maxSize: 2,
          desiredCapacity: 0,
          launchTemplate: {
            launchTemplateId: 'lt-0aaaaaaaaaaaaaaa1',
            launchTemplateName: 'web',
            version: '1',
          },
          instanceIds: [],
        });
      }),
    });
    const report = await cli(['templates']);
    expect(report.code, report.stderr).toBe(0);
    const rep = JSON.parse(report.stdout) as {
      templates: { resourceId: string; action: string }[];
      autoScalingGroups: unknown[];
    };
    expect(rep.templates.find((t) => t.resourceId === 'lt-0aaaaaaaaaaaaaaa1')?.action).toBe('change');
    expect(rep.templates.find((t) => t.resourceId === 'lt-0aaaaaaaaaaaaaaa2')?.action).toBe('skip');
    expect(rep.autoScalingGroups.length).toBe(1);

    const fix = await cli(['templates', '--fix', '--yes', '--journal', 'j.db']);
    expect(fix.code, fix.stderr).toBe(0);
    const web = fakeRegion(aws, REGION).launchTemplates[0];
    expect(web?.defaultVersion).toBe(2);
    const v2 = web?.versions.find((v) => v.versionNumber === 2);
    expect(v2?.data).toEqual({
      imageId: 'ami-0123456789abcdef0',
      instanceType: 'm6i.large',
      iamInstanceProfileArn: `arn:aws:iam::${ACCOUNT}:instance-profile/web`,
      metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 2, httpProtocolIpv6: 'enabled' },
    });
    expect(fakeRegion(aws, REGION).launchTemplates[1]?.versions).toHaveLength(1);
    expect(fix.doc?.result?.counts.verified).toBe(1);

    const rb = await cli(['rollback', '--journal', 'j.db', '--yes']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(fakeRegion(aws, REGION).launchTemplates[0]?.defaultVersion).toBe(1);
    expect(rb.doc?.result?.counts.verified).toBe(1);
  });

  it('defaults --set required, then rollback back to no preference', async () => {
    aws = await startFakeAws({
      fleet: handFleet([REGION], (r) => {
        r.defaults = { httpPutResponseHopLimit: 2 };
      }),
    });
    const show = await cli(['defaults']);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout).defaults[0]).toMatchObject({
      httpTokens: null,
      httpPutResponseHopLimit: 2,
    });
    const set = await cli(['defaults', '--set', 'required', '--yes', '--journal', 'j.db']);
    expect(set.code, set.stderr).toBe(0);
    expect(fakeRegion(aws, REGION).defaults).toEqual({ httpTokens: 'required', httpPutResponseHopLimit: 2 });
    const again = await cli(['defaults', '--set', 'required', '--yes', '--journal', 'j.db']);
    expect(again.doc?.counts.bySkipReason['already-compliant']).toBe(1);
    const rb = await cli(['rollback', '--journal', 'j.db', '--yes']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(fakeRegion(aws, REGION).defaults).toEqual({ httpPutResponseHopLimit: 2 });
  });
});
