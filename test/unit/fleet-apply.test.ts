/**
 * The applier with an in-memory EC2 API and a real journal (SQLite in a temp dir): write-ahead order,
 * one failure does not stop the rest, throttle retries, stop midway, verification; the token bucket
 * with an injected clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImdsguardError } from '../../src/errors.js';
import type { FleetChangeApi, InstanceReadBack, Where } from '../../src/fleet/apply/api.js';
import { modifyInput } from '../../src/fleet/apply/api.js';
import { applyPlan } from '../../src/fleet/apply/apply.js';
import { formatChangeLogLine, memoryChangeLog } from '../../src/fleet/apply/changelog.js';
import { type Clock, RateLimiter, TokenBucket } from '../../src/fleet/apply/rate-limit.js';
import type { InstanceMetadataOptions, InstanceRecord } from '../../src/fleet/inventory/model.js';
import { Journal } from '../../src/fleet/journal/store.js';
import { planHarden } from '../../src/fleet/plan/harden.js';
import { EMPTY_CRITERIA, selectInstances } from '../../src/fleet/plan/selection.js';
import type { ChangePlan, MetadataValues } from '../../src/fleet/plan/types.js';
import { instanceRecord } from '../support/fleet-records.js';

let dir: string;
let journal: Journal;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsguard-apply-'));
  journal = Journal.open(join(dir, 'j.db'));
});
afterEach(() => {
  journal.close();
  rmSync(dir, { recursive: true, force: true });
});

function fakeClock(): Clock & { t: number; sleeps: number[] } {
  const c = {
    t: 0,
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

function fleet(count: number): InstanceRecord[] {
  return Array.from({ length: count }, (_, k) =>
    instanceRecord({
      instanceId: `i-${(k + 1).toString(16).padStart(17, '0')}`,
      region: k % 2 === 0 ? 'us-east-1' : 'eu-west-1',
      instanceType: null,
      m: { httpPutResponseHopLimit: 1 + (k % 3) },
    }),
  );
}

/** An in-memory API over a map of instance options; hooks decide failures. */
function memoryApi(
  state: Map<string, InstanceMetadataOptions>,
  hooks: {
    modify?: (id: string) => void;
    /** Runs after the change is made (a failure here is one that acted). */
    afterModify?: (id: string) => void;
    read?: (ids: readonly string[]) => void;
    /** Reads that still see `pending` after a change (default 0: applied at the next read). */
    pendingReads?: number;
    instanceState?: string;
  } = {},
): FleetChangeApi & { calls: string[]; reads: number } {
  const calls: string[] = [];
  const pendingLeft = new Map<string, number>();
  const api = {
    calls,
    reads: 0,
    async modifyInstanceMetadata(_w: Where, id: string, o: MetadataValues, dryRun: boolean) {
      calls.push(id);
      hooks.modify?.(id);
      if (dryRun) return;
      const cur = state.get(id);
      if (!cur) throw new Error('not found');
      state.set(id, {
        ...cur,
        ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)),
        state: 'pending',
      });
      pendingLeft.set(id, hooks.pendingReads ?? 0);
      hooks.afterModify?.(id);
    },
    async readInstanceMetadata(_w: Where, ids: readonly string[]) {
      api.reads += 1;
      hooks.read?.(ids);
      const out = new Map<string, InstanceReadBack>();
      for (const id of ids) {
        const cur = state.get(id);
        if (!cur) continue;
        const left = pendingLeft.get(id) ?? 0;
        if (cur.state === 'pending' && left <= 0) state.set(id, { ...cur, state: 'applied' });
        else pendingLeft.set(id, left - 1);
        out.set(id, {
          metadataOptions: state.get(id) as InstanceMetadataOptions,
          instanceState: hooks.instanceState ?? 'running',
        });
      }
      return out;
    },
    createTemplateVersion: async () => null,
    setTemplateDefaultVersion: async () => {},
    readTemplate: async () => ({ defaultVersion: 1, latestVersion: 1, metadataOptions: null }),
    setAccountDefaults: async () => {},
    readAccountDefaults: async () => ({
      httpTokens: null,
      httpEndpoint: null,
      httpPutResponseHopLimit: null,
      instanceMetadataTags: null,
      httpTokensEnforced: null,
    }),
  };
  return api;
}

function setup(count: number) {
  const instances = fleet(count);
  const state = new Map(instances.map((i) => [i.instanceId, { ...i.metadataOptions }]));
  const plan: ChangePlan = planHarden(selectInstances(instances, EMPTY_CRITERIA));
  const id = journal.createChangeSet({ plan, dryRun: false });
  return { instances, state, plan, id };
}

function throttle(): Error {
  return new ImdsguardError('IMDSGUARD_E_AWS_THROTTLED', 'throttled', {
    cause: Object.assign(new Error('Request limit exceeded.'), {
      name: 'RequestLimitExceeded',
      $metadata: {},
    }),
  });
}

describe('applyPlan', () => {
  it('writes each item ahead (sent, committed) before its call, then its result and verification', async () => {
    const { state, plan, id } = setup(10);
    const reader = Journal.open(join(dir, 'j.db'), { mustExist: true });
    const seen: string[] = [];
    const api = memoryApi(state, {
      modify: (iid) => {
        // A second connection sees the committed write-ahead row while the call is in flight.
        const row = reader.items(id).find((i) => i.item.resourceId === iid);
        seen.push(`${row?.status}:${row?.attempts}`);
      },
    });
    const log = memoryChangeLog();
    const r = await applyPlan(plan, api, { journal, changeSetId: id, dryRun: false, changeLog: log });
    reader.close();
    expect(seen).toHaveLength(10);
    expect(seen.every((s) => s === 'sent:1')).toBe(true);
    expect(r.counts).toEqual({ verified: 10 });
    expect(journal.items(id).every((i) => i.status === 'verified' && i.sentAt !== null)).toBe(true);
    expect(journal.getChangeSet(id)?.status).toBe('done');
    const statuses = log.entries.filter((e) => e.resource === plan.items[0]?.resourceId).map((e) => e.status);
    expect(statuses).toEqual(['sent', 'applied', 'verified']);
    const line = formatChangeLogLine(log.entries[0] as never, 'json');
    expect(Object.keys(JSON.parse(line))).toEqual(
      expect.arrayContaining(['timestamp', 'change', 'resource', 'dryRun', 'status']),
    );
  });

  it('one failure does not stop the others, and is recorded with its code', async () => {
    const { state, plan, id } = setup(9);
    const bad = plan.items[4]?.resourceId;
    const api = memoryApi(state, {
      modify: (iid) => {
        if (iid === bad)
          throw new ImdsguardError(
            'IMDSGUARD_E_AWS_ACCESS',
            `account 111111111111 us-east-1 ${iid}: denied`,
            {
              details: { awsCode: 'UnauthorizedOperation' },
              cause: { name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } },
            },
          );
      },
    });
    const r = await applyPlan(plan, api, { journal, changeSetId: id, dryRun: false });
    expect(r.failures).toBe(1);
    expect(r.counts).toEqual({ verified: 8, failed: 1 });
    const failed = journal.items(id).find((i) => i.status === 'failed');
    expect(failed?.item.resourceId).toBe(bad);
    expect(failed?.errorCode).toBe('UnauthorizedOperation');
    expect(failed?.errorMessage).toContain(String(bad));
  });

  it('retries a throttled call with backoff and journals every attempt', async () => {
    const { state, plan, id } = setup(3);
    let left = 3;
    const api = memoryApi(state, {
      modify: () => {
        if (left-- > 0) throw throttle();
      },
    });
    const clock = fakeClock();
    const r = await applyPlan(plan, api, {
      journal,
      changeSetId: id,
      dryRun: false,
      concurrency: 1,
      groupConcurrency: 1,
      clock,
      random: () => 0.5,
    });
    expect(r.counts).toEqual({ verified: 3 });
    expect(clock.sleeps).toEqual([1000, 2000, 4000]);
    expect(journal.items(id).map((i) => i.attempts)).toEqual([4, 1, 1]);
  });

  it('gives up after the retry rounds and marks the item failed', async () => {
    const { state, plan, id } = setup(1);
    const api = memoryApi(state, {
      modify: () => {
        throw throttle();
      },
    });
    const r = await applyPlan(plan, api, {
      journal,
      changeSetId: id,
      dryRun: false,
      throttleRetries: 2,
      clock: fakeClock(),
    });
    expect(r.counts).toEqual({ failed: 1 });
    expect(journal.items(id)[0]?.attempts).toBe(3);
  });

  it('stops sending when aborted: unsent items stay planned, the change set is interrupted', async () => {
    const { state, plan, id } = setup(20);
    const stop = new AbortController();
    const api = memoryApi(state, {
      modify: () => {
        if (api.calls.length >= 5) stop.abort();
      },
    });
    const r = await applyPlan(plan, api, {
      journal,
      changeSetId: id,
      dryRun: false,
      concurrency: 1,
      groupConcurrency: 1,
      signal: stop.signal,
    });
    expect(r.interrupted).toBe(true);
    expect(api.calls).toHaveLength(5);
    const items = journal.items(id);
    expect(items.filter((i) => i.status === 'planned')).toHaveLength(15);
    expect(
      items
        .filter((i) => i.status !== 'planned')
        .map((i) => i.item.resourceId)
        .sort(),
    ).toEqual([...api.calls].sort());
    expect(journal.getChangeSet(id)?.status).toBe('interrupted');
  });

  it('records a mismatch when the read-back differs', async () => {
    const { state, plan, id } = setup(2);
    const api = memoryApi(state);
    const orig = api.modifyInstanceMetadata;
    api.modifyInstanceMetadata = async (w, iid, o, d) => {
      if (iid === plan.items[1]?.resourceId) return; // accepted, but not applied
      return orig(w, iid, o, d);
    };
    const r = await applyPlan(plan, api, { journal, changeSetId: id, dryRun: false });
    expect(r.counts).toEqual({ verified: 1, mismatch: 1 });
    expect(journal.items(id)[1]?.errorCode).toBe('IMDSGUARD_E_CHANGE_FAILED');
  });

  it('dry run: no verification, items dry-run-ok', async () => {
    const { state, plan } = setup(4);
    const id = journal.createChangeSet({ plan, dryRun: true });
    const api = memoryApi(state);
    const r = await applyPlan(plan, api, { journal, changeSetId: id, dryRun: true });
    expect(r.counts).toEqual({ 'dry-run-ok': 4 });
    expect([...state.values()].every((m) => m.httpTokens === 'optional')).toBe(true);
  });
});

/** An error like the SDK's when a connection is cut: no AWS answer at all. */
function cut(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

describe('applyPlan read-backs', () => {
  it('a throttled read-back gets the same retry rounds as the calls, then verifies', async () => {
    const { state, plan, id } = setup(4);
    let throttled = 3;
    const api = memoryApi(state, {
      read: () => {
        if (throttled-- > 0) throw throttle();
      },
    });
    const clock = fakeClock();
    const r = await applyPlan(plan, api, {
      journal,
      changeSetId: id,
      dryRun: false,
      groupConcurrency: 1,
      clock,
      random: () => 0.5,
    });
    expect(r.counts).toEqual({ verified: 4 });
    expect(r.failures).toBe(0);
    expect(clock.sleeps).toEqual([1000, 2000, 4000]);
  });

  it('a read-back that still fails is unverified, never mismatch, and fails the run', async () => {
    const { state, plan, id } = setup(3);
    const api = memoryApi(state, {
      read: () => {
        throw throttle();
      },
    });
    const r = await applyPlan(plan, api, {
      journal,
      changeSetId: id,
      dryRun: false,
      throttleRetries: 2,
      clock: fakeClock(),
    });
    expect(r.counts).toEqual({ unverified: 3 });
    expect(r.failures).toBe(3);
    for (const i of journal.items(id)) {
      expect(i.status).toBe('unverified');
      expect(i.errorCode).toBe('IMDSGUARD_E_CHANGE_UNVERIFIED');
      expect(i.errorMessage).toContain('could not be confirmed');
    }
    // The changes were made: a rollback must consider them.
    expect([...state.values()].every((m) => m.httpTokens === 'required')).toBe(true);
  });

  it('pending on a running instance is read again; still pending after the rounds is unverified; stopped is verified', async () => {
    const a = setup(2);
    const clock = fakeClock();
    const settles = await applyPlan(a.plan, memoryApi(a.state, { pendingReads: 2 }), {
      journal,
      changeSetId: a.id,
      dryRun: false,
      clock,
    });
    expect(settles.counts).toEqual({ verified: 2 });
    // Two regions (one instance each): two reads more each, waiting 2 s then 4 s.
    expect(clock.sleeps.sort((x, y) => x - y)).toEqual([2000, 2000, 4000, 4000]);
    const b = setup(2);
    const stuck = await applyPlan(b.plan, memoryApi(b.state, { pendingReads: 99 }), {
      journal,
      changeSetId: b.id,
      dryRun: false,
      clock: fakeClock(),
    });
    expect(stuck.counts).toEqual({ unverified: 2 });
    expect(journal.items(b.id)[0]?.errorMessage).toContain('still pending after 4 read(s)');
    const c = setup(2);
    const stopped = await applyPlan(
      c.plan,
      memoryApi(c.state, { pendingReads: 99, instanceState: 'stopped' }),
      {
        journal,
        changeSetId: c.id,
        dryRun: false,
        clock: fakeClock(),
      },
    );
    expect(stopped.counts).toEqual({ verified: 2 });
    // Still launching (instance state pending): applied when it runs, like a stopped one.
    const d = setup(2);
    const launching = await applyPlan(
      d.plan,
      memoryApi(d.state, { pendingReads: 99, instanceState: 'pending' }),
      { journal, changeSetId: d.id, dryRun: false, clock: fakeClock() },
    );
    expect(launching.counts).toEqual({ verified: 2 });
  });

  it('an ambiguous failure is read back: applied when the change is there, not-applied when not', async () => {
    const { state, plan, id } = setup(4);
    const [acted, notActed, refused] = plan.items.map((i) => i.resourceId);
    const api = memoryApi(state, {
      modify: (iid) => {
        if (iid === notActed) throw cut();
        if (iid === refused)
          throw new ImdsguardError('IMDSGUARD_E_AWS_ACCESS', 'denied', {
            details: { awsCode: 'UnauthorizedOperation' },
            cause: { name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } },
          });
      },
      afterModify: (iid) => {
        if (iid === acted) throw cut();
      },
    });
    const r = await applyPlan(plan, api, { journal, changeSetId: id, dryRun: false, clock: fakeClock() });
    const byId = new Map(journal.items(id).map((i) => [i.item.resourceId, i]));
    // Acted, then the connection was cut: read back, applied, then verified like any other.
    expect(byId.get(acted as string)).toMatchObject({ status: 'verified', errorCode: null });
    expect(byId.get(acted as string)?.result?.ambiguous?.message).toContain('socket hang up');
    // Cut before it acted: read back unchanged.
    expect(byId.get(notActed as string)).toMatchObject({ status: 'not-applied' });
    expect(byId.get(notActed as string)?.errorMessage).toContain('socket hang up');
    expect(state.get(notActed as string)?.httpTokens).toBe('optional');
    // AWS answered and refused: no read-back needed, failed.
    expect(byId.get(refused as string)).toMatchObject({
      status: 'failed',
      errorCode: 'UnauthorizedOperation',
    });
    expect(r.counts).toEqual({ verified: 2, 'not-applied': 1, failed: 1 });
    // Not applied is a change the plan asked for and did not get: it fails the run too.
    expect(r.failures).toBe(2);
  });

  it('an ambiguous failure whose read-back fails stays failed, marked ambiguous', async () => {
    const { state, plan, id } = setup(1);
    const api = memoryApi(state, {
      afterModify: () => {
        throw cut();
      },
      read: () => {
        throw new Error('read failed too');
      },
    });
    const r = await applyPlan(plan, api, { journal, changeSetId: id, dryRun: false, clock: fakeClock() });
    expect(r.counts).toEqual({ failed: 1 });
    const [item] = journal.items(id);
    expect(item?.errorMessage).toContain('could not tell whether it acted');
    expect(item?.result?.ambiguous?.message).toContain('socket hang up');
  });
});

describe('ModifyInstanceMetadataOptions input', () => {
  it('sends every known field explicitly', () => {
    expect(
      modifyInput(
        'i-1',
        {
          httpTokens: 'required',
          httpEndpoint: 'disabled',
          httpPutResponseHopLimit: 3,
          httpProtocolIpv6: 'enabled',
          instanceMetadataTags: 'disabled',
        },
        false,
      ),
    ).toEqual({
      InstanceId: 'i-1',
      HttpTokens: 'required',
      HttpEndpoint: 'disabled',
      HttpPutResponseHopLimit: 3,
      HttpProtocolIpv6: 'enabled',
      InstanceMetadataTags: 'disabled',
      DryRun: false,
    });
  });
});

describe('TokenBucket', () => {
  it('allows the burst at once, then refills at the rate', async () => {
    const clock = fakeClock();
    const b = new TokenBucket({ burst: 100, refillPerSecond: 5 }, clock);
    for (let k = 0; k < 100; k++) await b.take();
    expect(clock.t).toBe(0);
    for (let k = 0; k < 10; k++) await b.take();
    expect(clock.t).toBe(2000);
    expect(b.takenCount).toBe(110);
  });

  it('never grants more than burst + rate x elapsed, in any window', async () => {
    const clock = fakeClock();
    const b = new TokenBucket({ burst: 10, refillPerSecond: 5 }, clock);
    const times: number[] = [];
    await Promise.all(
      Array.from({ length: 60 }, async () => {
        await b.take();
        times.push(clock.t);
      }),
    );
    for (let i = 0; i < times.length; i++)
      for (let j = i; j < times.length; j++) {
        const window = (times[j] as number) - (times[i] as number);
        expect(j - i + 1).toBeLessThanOrEqual(10 + Math.floor((window / 1000) * 5) + 0);
      }
  });

  it('keeps one bucket per account, region and action; unlimited actions pass', async () => {
    const clock = fakeClock();
    const l = new RateLimiter({ A: { burst: 1, refillPerSecond: 1 } }, clock);
    await l.take('1', 'r', 'A');
    await l.take('2', 'r', 'A');
    await l.take('1', 's', 'A');
    await l.take('1', 'r', 'B');
    expect(clock.t).toBe(0);
    await l.take('1', 'r', 'A');
    expect(clock.t).toBe(1000);
  });
});
