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
import type { FleetChangeApi } from '../../src/fleet/apply/api.js';
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
  hooks: { modify?: (id: string) => void } = {},
): FleetChangeApi & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async modifyInstanceMetadata(_w, id, o: MetadataValues, dryRun) {
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
    },
    async readInstanceMetadata(_w, ids) {
      return new Map(
        ids.filter((id) => state.has(id)).map((id) => [id, state.get(id) as InstanceMetadataOptions]),
      );
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
    }),
  };
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
