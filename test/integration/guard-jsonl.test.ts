import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isImdsguardError } from '../../src/errors.js';
import { createJsonlRecorder } from '../../src/guard/events/jsonl.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { numberedEvent as event } from '../support/guard-events.js';
import { waitFor } from '../support/wait.js';

/** The JSON-lines recorder: batched off the request path, bounded, never blocking, never throwing. */

describe('JSON-lines recorder', () => {
  it('appends one line per event to a file (mode 0640) and flushes on close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsg-jsonl-'));
    const file = join(dir, 'events.jsonl');
    const r = createJsonlRecorder({ file });
    for (let i = 0; i < 100; i++) r.record(event(i));
    // nothing is written synchronously: serialization happens on a later tick
    expect(readFileSync(file, 'utf8')).toBe('');
    await r.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(100);
    expect((JSON.parse(lines[99] as string) as GuardEvent).id).toBe('id-99');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    const again = createJsonlRecorder({ file });
    again.record(event(100));
    await again.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(101);
  });

  it('drops (and counts) events beyond its buffer while the output is stalled, without blocking', async () => {
    const logs: string[] = [];
    let release: () => void = () => {};
    const stalled = new Writable({
      highWaterMark: 1,
      write(_chunk, _enc, cb) {
        release = () => cb();
      },
    });
    const r = createJsonlRecorder({ stream: stalled, maxBuffered: 5, log: (m) => logs.push(m) });
    r.record(event(0));
    await new Promise((res) => setImmediate(res));
    // The output holds the first write: record() still returns at once, keeping 5 and counting the rest.
    for (let i = 1; i <= 50; i++) r.record(event(i));
    expect(r.dropped).toBe(45);
    expect(logs).toEqual([]);
    // Once the output drains, the next batch goes out and the drops are reported.
    release();
    await waitFor(() => logs.length > 0, 'the drop report');
    expect(logs.join('\n')).toMatch(/45 event\(s\) dropped/);
    release();
  });

  it('a failing output never throws into record()', async () => {
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(new Error('disk full'));
      },
    });
    const logs: string[] = [];
    const r = createJsonlRecorder({ stream: broken, log: (m) => logs.push(m) });
    r.record(event(1));
    await waitFor(() => logs.length > 0, 'the write error');
    expect(logs.join('\n')).toContain('disk full');
    expect(() => r.record(event(2))).not.toThrow();
    // close() waits until the buffer is settled: event 2 was dropped, not written or thrown.
    await r.close();
    expect(r.dropped).toBeGreaterThanOrEqual(1);
  });

  it('an unwritable file is a clear configuration error at start-up', () => {
    try {
      createJsonlRecorder({ file: '/nonexistent-dir/events.jsonl' });
      expect.unreachable();
    } catch (err) {
      expect(isImdsguardError(err, 'IMDSGUARD_E_CONFIG')).toBe(true);
      expect((err as Error).message).toContain('events.file: cannot open /nonexistent-dir/events.jsonl');
    }
  });
});
