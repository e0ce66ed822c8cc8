import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import {
  type EventStore,
  MemoryEventStore,
  readEventsFromStore,
  SqliteEventStore,
  StoreRecorder,
} from '../../src/guard/store/index.js';
import { makeEvent, waitFor } from '../support/guard-events.js';

const tmp = mkdtempSync(join(tmpdir(), 'imdsguard-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(tmp, `events-${++n}.db`);

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const at = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();

/** A small, varied population. */
function population(): GuardEvent[] {
  return [
    makeEvent({
      time: at(0),
      decision: 'deny',
      request: { path: '/latest/meta-data/iam/security-credentials/', version: 'v1' },
    }),
    makeEvent({
      time: at(1000),
      decision: 'allow',
      action: 'forwarded',
      rule: 'imdsv2',
      alert: false,
      request: { path: '/latest/meta-data/instance-id', version: 'v2' },
      caller: { resolved: 'full', pid: 10, exe: '/usr/bin/python3', user: 'app' },
    }),
    makeEvent({
      time: at(2000),
      decision: 'allow',
      action: 'forwarded',
      rule: 'imdsv2',
      alert: false,
      request: { method: 'PUT', path: '/latest/api/token', version: 'token' },
      caller: { resolved: 'full', pid: 10, exe: '/usr/bin/python3', user: 'app' },
    }),
    makeEvent({
      time: at(3000),
      request: { path: '/latest/user-data', version: 'v1' },
      caller: { resolved: 'partial', uid: 0, user: 'root' },
    }),
    makeEvent({
      time: at(4000),
      request: { path: '/latest/meta-data/iam/info', version: 'v1' },
      caller: { resolved: 'none' },
    }),
  ];
}

function storeContract(name: string, make: () => EventStore) {
  describe(`event store contract: ${name}`, () => {
    const open: EventStore[] = [];
    const store = () => {
      const s = make();
      open.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });

    it('is empty when fresh', async () => {
      expect(await store().query({})).toEqual([]);
    });

    it('returns what was inserted, newest first by default, oldest first on request', async () => {
      const s = store();
      const pop = population();
      await s.insert(pop);
      expect(await s.query({})).toEqual([...pop].reverse());
      expect(await s.query({ order: 'asc' })).toEqual(pop);
    });

    it('ignores an event inserted twice', async () => {
      const s = store();
      const e = makeEvent();
      await s.insert([e]);
      await s.insert([e]);
      expect(await s.query({})).toHaveLength(1);
    });

    it('filters by time, decision, exe, user, path prefix and version', async () => {
      const s = store();
      const pop = population();
      await s.insert(pop);
      const ids = async (f: Parameters<EventStore['query']>[0]) =>
        (await s.query({ ...f, order: 'asc' })).map((e) => e.id);
      const id = (i: number) => (pop[i] as GuardEvent).id;
      expect(await ids({ sinceMs: T0 + 2000 })).toEqual([id(2), id(3), id(4)]);
      expect(await ids({ sinceMs: T0 + 1000, untilMs: T0 + 3000 })).toEqual([id(1), id(2)]);
      expect(await ids({ decision: 'allow' })).toEqual([id(1), id(2)]);
      expect(await ids({ decision: 'deny' })).toEqual([id(0), id(3), id(4)]);
      expect(await ids({ exe: '/usr/bin/python3' })).toEqual([id(1), id(2)]);
      expect(await ids({ user: 'root' })).toEqual([id(3)]);
      expect(await ids({ pathPrefix: '/latest/meta-data/iam/' })).toEqual([id(0), id(4)]);
      expect(await ids({ pathPrefix: '/latest/meta-data/iam/info' })).toEqual([id(4)]);
      expect(await ids({ pathPrefix: '/latest/meta-data/iam_' })).toEqual([]);
      expect(await ids({ version: 'token' })).toEqual([id(2)]);
      expect(await ids({ version: 'v1', decision: 'deny', sinceMs: T0 + 3000 })).toEqual([id(3), id(4)]);
    });

    it('treats LIKE and GLOB characters in a path prefix literally', async () => {
      const s = store();
      const a = makeEvent({ request: { path: '/a%b/c' } });
      const b = makeEvent({ request: { path: '/aXb/c' } });
      await s.insert([a, b]);
      expect((await s.query({ pathPrefix: '/a%' })).map((e) => e.id)).toEqual([a.id]);
      expect((await s.query({ pathPrefix: '/a*' })).map((e) => e.id)).toEqual([]);
    });

    it('applies the limit (default 100) and pages with after', async () => {
      const s = store();
      const many = Array.from({ length: 250 }, (_, i) => makeEvent({ time: at(i) }));
      await s.insert(many);
      expect(await s.query({})).toHaveLength(100);
      const page1 = await s.query({ order: 'asc', limit: 10 });
      const last = page1[9] as GuardEvent;
      const page2 = await s.query({
        order: 'asc',
        limit: 10,
        after: { timeMs: Date.parse(last.time), id: last.id },
      });
      expect(page2.map((e) => e.id)).toEqual(many.slice(10, 20).map((e) => e.id));
    });

    it('prunes by age', async () => {
      const s = store();
      const old = makeEvent({ time: at(0) });
      const recent = makeEvent({ time: at(40 * 86_400_000) });
      await s.insert([old, recent]);
      expect(await s.prune(T0 + 40 * 86_400_000)).toBe(1);
      expect((await s.query({})).map((e) => e.id)).toEqual([recent.id]);
    });

    it('reads back through readEventsFromStore, oldest first, across pages', async () => {
      const s = store();
      const many = Array.from({ length: 2500 }, (_, i) => makeEvent({ time: at(Math.floor(i / 3)) }));
      await s.insert(many);
      const got: string[] = [];
      for await (const e of readEventsFromStore(s, { decision: 'deny' })) got.push(e.id);
      expect(got).toEqual(many.map((e) => e.id));
      const some: string[] = [];
      for await (const e of readEventsFromStore(s, { limit: 1500 })) some.push(e.id);
      expect(some).toHaveLength(1500);
    });
  });
}

storeContract('SQLite', () => new SqliteEventStore({ path: fresh() }));
storeContract('memory', () => new MemoryEventStore());

describe('SQLite store specifics', () => {
  it('uses WAL and survives a reopen; readEventsFromStore opens a path read-only', async () => {
    const path = fresh();
    const s = new SqliteEventStore({ path });
    const pop = population();
    await s.insert(pop);
    await s.close();
    const got: GuardEvent[] = [];
    for await (const e of readEventsFromStore(path)) got.push(e);
    expect(got).toEqual(pop);
    const reopened = new SqliteEventStore({ path });
    expect(await reopened.query({ limit: 1 })).toEqual([pop[4]]);
    await reopened.close();
  });

  it('prunes the oldest events to stay under maxBytes', async () => {
    const s = new SqliteEventStore({
      path: fresh(),
      retention: { maxAgeMs: 365 * 86_400_000, maxBytes: 1024 * 1024 },
    });
    const big = 'x'.repeat(1500);
    for (let b = 0; b < 10; b++) {
      await s.insert(
        Array.from({ length: 200 }, (_, i) => makeEvent({ time: at(b * 1000 + i), reason: big })),
      );
    }
    expect(s.bytesInUse()).toBeGreaterThan(1024 * 1024);
    const deleted = await s.prune(T0);
    expect(deleted).toBeGreaterThan(0);
    expect(s.bytesInUse()).toBeLessThanOrEqual(1024 * 1024);
    const oldest = (await s.query({ order: 'asc', limit: 1 }))[0] as GuardEvent;
    const newest = (await s.query({ limit: 1 }))[0] as GuardEvent;
    expect(Date.parse(oldest.time)).toBeGreaterThan(T0);
    expect(newest.time).toBe(at(9 * 1000 + 199));
    await s.close();
  });

  it('refuses a missing database read-only with IMDSGUARD_E_STORE', () => {
    expect(() => new SqliteEventStore({ path: join(tmp, 'nope.db'), readonly: true })).toThrow(
      expect.objectContaining({ code: 'IMDSGUARD_E_STORE' }),
    );
  });
});

describe('store recorder', () => {
  it('batches inserts off the request path and flushes on close', async () => {
    const store = new MemoryEventStore();
    const rec = new StoreRecorder(store, {
      maxBuffered: 50,
      flushMs: 10,
      batchSize: 20,
      pruneEveryMs: 60_000,
    });
    const evs = Array.from({ length: 70 }, (_, i) => makeEvent({ time: at(i) }));
    for (const e of evs) expect(rec.record(e)).toBeUndefined();
    expect(rec.depth).toBeLessThanOrEqual(50);
    expect(rec.dropped).toBe(20);
    await waitFor(() => rec.inserted === 50, 'inserts');
    rec.record(makeEvent({ time: at(999) }));
    await rec.flush();
    expect((await store.query({ limit: 1000 })).length).toBe(51);
    await rec.close();
  });
});
