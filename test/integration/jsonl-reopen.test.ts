import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isImdsguardError } from '../../src/errors.js';
import { createJsonlRecorder } from '../../src/guard/events/jsonl.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { numberedEvent as event } from '../support/guard-events.js';
import { waitFor } from '../support/wait.js';

/** The JSON-lines recorder's reopen (SIGHUP after logrotate renamed the file): nothing is lost. */

const ids = (file: string) =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as GuardEvent).id)
    : [];
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `id-${from + i}`);

describe('JSON-lines recorder: reopen', () => {
  it('after a rename, new events go to a new file at the old path; the renamed one keeps the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-reopen-'));
    const file = join(dir, 'events.jsonl');
    const r = createJsonlRecorder({ file });
    for (let i = 0; i < 100; i++) r.record(event(i));
    await waitFor(() => ids(file).length === 100, 'the first events');
    renameSync(file, `${file}.1`);
    // Before the signal, events still go to the renamed file (its descriptor is open).
    for (let i = 100; i < 150; i++) r.record(event(i));
    await r.reopen();
    for (let i = 150; i < 180; i++) r.record(event(i));
    await r.close();
    expect(ids(`${file}.1`)).toEqual(range(0, 150));
    expect(ids(file)).toEqual(range(150, 180));
    expect(r.dropped).toBe(0);
  });

  it('loses nothing when events keep arriving while it reopens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-reopen-'));
    const file = join(dir, 'events.jsonl');
    const r = createJsonlRecorder({ file, maxBuffered: 100_000 });
    let n = 0;
    const reopened: Array<Promise<void>> = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 2000; i++) r.record(event(n++));
      renameSync(file, `${file}.${round}`);
      for (let i = 0; i < 500; i++) r.record(event(n++));
      reopened.push(r.reopen());
      for (let i = 0; i < 500; i++) r.record(event(n++));
    }
    await Promise.all(reopened);
    await r.close();
    const all = [0, 1, 2, 3, 4].flatMap((k) => ids(`${file}.${k}`)).concat(ids(file));
    expect(all.length).toBe(n);
    expect(new Set(all).size).toBe(n);
    expect(r.dropped).toBe(0);
  });

  it('switches to another file (a changed events.file), and from a stream to a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-reopen-'));
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    const r = createJsonlRecorder({ file: a });
    r.record(event(0));
    await r.reopen(b);
    expect(r.file).toBe(b);
    r.record(event(1));
    await r.close();
    expect(ids(a)).toEqual(['id-0']);
    expect(ids(b)).toEqual(['id-1']);

    let streamed = '';
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        streamed += chunk.toString();
        cb();
      },
    });
    const s = createJsonlRecorder({ stream });
    expect(s.file).toBeUndefined();
    await s.reopen(); // no file: nothing to reopen
    s.record(event(2));
    await waitFor(() => streamed.includes('id-2'), 'the streamed event');
    await s.reopen(a);
    s.record(event(3));
    await s.close();
    expect(ids(a)).toEqual(['id-0', 'id-3']);
    expect(streamed).not.toContain('id-3');
  });

  it('keeps writing to the current file when the new one cannot be opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-reopen-'));
    const file = join(dir, 'events.jsonl');
    const r = createJsonlRecorder({ file });
    r.record(event(0));
    const err = await r.reopen(join(dir, 'missing', 'events.jsonl')).catch((e: unknown) => e);
    expect(isImdsguardError(err) && err.code).toBe('IMDSGUARD_E_CONFIG');
    expect(String((err as Error).message)).toContain('cannot open');
    expect(r.file).toBe(file);
    r.record(event(1));
    await r.close();
    expect(ids(file)).toEqual(['id-0', 'id-1']);
  });
});
