import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_EVENTS_DB, eventsInput } from '../../src/cli/events-source.js';
import { isImdsguardError } from '../../src/errors.js';
import { type EventSource, filterEvents, newestEvents } from '../../src/guard/events/source.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { MemoryEventStore } from '../../src/guard/store/memory.js';
import { makeEvent } from '../support/guard-events.js';

/** Reading events back: the same selection and order from a JSON-lines file as from a store. */

const dir = mkdtempSync(join(tmpdir(), 'imdsguard-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* from(events: readonly GuardEvent[]): EventSource {
  yield* events;
}

async function collect(source: EventSource): Promise<GuardEvent[]> {
  const out: GuardEvent[] = [];
  for await (const e of source) out.push(e);
  return out;
}

const at = (minute: number, extra: Parameters<typeof makeEvent>[0] = {}) =>
  makeEvent({ time: new Date(Date.UTC(2026, 10, 20, 10, minute)).toISOString(), ...extra });

describe('newestEvents', () => {
  it('answers the newest, newest first, from a source that is not in time order, as the store does', async () => {
    // Written in completion order: some events finish after later ones.
    const events = [at(5), at(1), at(9), at(3), at(9), at(7), at(2), at(8), at(4), at(6), at(0)];
    const store = new MemoryEventStore();
    await store.insert(events);
    for (const limit of [1, 3, 4, 11, 50]) {
      const got = await newestEvents(from(events), limit);
      expect(
        got.map((e) => e.id),
        `limit ${limit}`,
      ).toEqual((await store.query({ limit, order: 'desc' })).map((e) => e.id));
    }
    expect(await newestEvents(from(events), 0)).toEqual([]);
  });
});

describe('filterEvents', () => {
  it('selects with the store predicate: window, decision, caller, path prefix, version', async () => {
    const events = [
      at(1, { decision: 'allow', request: { version: 'v2', path: '/latest/meta-data/ami-id' } }),
      at(2, { decision: 'deny', request: { version: 'v1', path: '/latest/meta-data/iam/info' } }),
      at(3, {
        decision: 'deny',
        caller: { resolved: 'full', exe: '/usr/bin/python3', user: 'app', uid: 1000 },
      }),
      at(4, { decision: 'allow', request: { version: 'token', path: '/latest/api/token', method: 'PUT' } }),
    ];
    const ids = async (selection: Parameters<typeof filterEvents>[1]) =>
      (await collect(filterEvents(from(events), selection))).map((e) => e.time.slice(14, 16));
    expect(await ids({})).toEqual(['01', '02', '03', '04']);
    expect(await ids({ decision: 'deny' })).toEqual(['02', '03']);
    expect(await ids({ version: 'token' })).toEqual(['04']);
    expect(await ids({ pathPrefix: '/latest/meta-data/iam/' })).toEqual(['02', '03']);
    expect(await ids({ exe: '/usr/bin/python3' })).toEqual(['03']);
    expect(await ids({ user: 'app' })).toEqual(['03']);
    const t = (m: number) => Date.UTC(2026, 10, 20, 10, m);
    expect(await ids({ sinceMs: t(2), untilMs: t(4) })).toEqual(['02', '03']);
  });
});

describe('eventsInput: which file a command reads', () => {
  it('--events is a JSON-lines file; else --db, else IMDSGUARD_DB, else the default store', () => {
    expect(eventsInput({ events: 'e.jsonl' }, { IMDSGUARD_DB: 'x.db' }, 'events')).toMatchObject({
      kind: 'file',
      path: 'e.jsonl',
    });
    expect(eventsInput({ db: 'a.db' }, { IMDSGUARD_DB: 'x.db' }, 'events')).toMatchObject({
      kind: 'db',
      path: 'a.db',
    });
    expect(eventsInput({}, { IMDSGUARD_DB: 'x.db' }, 'events')).toMatchObject({ kind: 'db', path: 'x.db' });
    expect(eventsInput({}, {}, 'events')).toMatchObject({ kind: 'db', path: DEFAULT_EVENTS_DB });
    expect(eventsInput({}, { IMDSGUARD_DB: '' }, 'events')).toMatchObject({ path: DEFAULT_EVENTS_DB });
  });

  it('refuses both flags, naming the command', () => {
    try {
      eventsInput({ events: 'e.jsonl', db: 'a.db' }, {}, 'callers');
      expect.unreachable();
    } catch (err) {
      expect(isImdsguardError(err, 'IMDSGUARD_E_USAGE')).toBe(true);
      expect((err as Error).message).toBe('callers: give --events or --db, not both');
    }
  });

  it('reads a file with the filter applied, counts its bad lines, and says which file it cannot read', async () => {
    const file = join(dir, 'events.jsonl');
    const kept = at(30, { decision: 'allow' });
    writeFileSync(
      file,
      `${JSON.stringify(at(10))}\nnot json\n${JSON.stringify(kept)}\n${JSON.stringify(at(20))}\n`,
    );
    const input = eventsInput({ events: file }, {}, 'events');
    expect((await input.newest({ decision: 'allow' }, 10)).map((e) => e.id)).toEqual([kept.id]);
    expect(input.stats).toMatchObject({ lines: 4, bad: 1, firstBadLine: 2 });

    const missing = eventsInput({ events: join(dir, 'nope.jsonl') }, {}, 'report');
    await expect(collect(missing.read({}))).rejects.toMatchObject({
      code: 'IMDSGUARD_E_CONFIG_READ',
      message: `report: cannot read ${join(dir, 'nope.jsonl')}`,
      hint: 'check the path and that this user may read it',
    });
    // Not given: the default store is missing; the hint names both flags.
    const store = eventsInput({}, {}, 'callers');
    expect(store.path).toBe(DEFAULT_EVENTS_DB);
  });
});
