import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { ImdsguardError } from '../../errors.js';
import type { EventRecorder, GuardEvent } from './types.js';

/**
 * Writes one JSON line per event to a stream (stdout) or a file opened for append. record() only
 * pushes the event into a bounded buffer; serialization and writing happen on a later tick, in
 * batches, and wait for 'drain' when the stream is slow. When the buffer is full, new events are
 * dropped and counted (and reported through `log`): a slow disk never stalls a request.
 */

export interface JsonlRecorderOptions {
  /** Append to this file (created with mode 0640). */
  file?: string;
  /** Or write to this stream (not closed by close()); a plain { write } target is treated as never slow. */
  stream?: Writable | { write(chunk: string): unknown };
  /** Events buffered at most, count. Default 10000. */
  maxBuffered?: number;
  /** Operational messages (drops, write errors). */
  log?: (message: string) => void;
}

export interface JsonlRecorder extends EventRecorder {
  /** Events dropped because the buffer was full or the output failed. */
  readonly dropped: number;
  /** The file the events go to; undefined while they go to the stream. */
  readonly file: string | undefined;
  /**
   * Opens `file` (default: the current file) and sends the next events there (SIGHUP: logrotate
   * renames the file, then signals). Events already handed to the old file are written there before
   * it is closed, so none is lost. A failed output is retried on the new one. Throws, keeping the
   * current output, when the file cannot be opened; without a file and without a current file, it
   * does nothing.
   */
  reopen(file?: string): Promise<void>;
}

/** Opens a JSON-lines file for append (created with mode 0640). */
function openAppend(file: string): WriteStream {
  let fd: number;
  try {
    fd = openSync(file, 'a', 0o640);
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG',
      `events.file: cannot open ${file} for append: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    return createWriteStream('', { fd, flags: 'a' });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Ends a file stream once what was written to it is on disk; errors are reported, never thrown. */
function endFile(stream: WriteStream, file: string, log: (m: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    stream.once('error', (err) => {
      log(`events: finishing ${file} failed: ${err.message}`);
      resolve();
    });
    stream.end(() => resolve());
  });
}

export const JSONL_DEFAULT_MAX_BUFFERED = 10_000;

export function createJsonlRecorder(options: JsonlRecorderOptions): JsonlRecorder {
  const max = options.maxBuffered ?? JSONL_DEFAULT_MAX_BUFFERED;
  const log = options.log ?? (() => {});
  let out: Writable;
  let owned: WriteStream | undefined;
  let file = options.file;
  if (options.file !== undefined) {
    owned = openAppend(options.file);
    out = owned;
  } else if (options.stream !== undefined) {
    const st = options.stream;
    out =
      typeof (st as Writable).once === 'function'
        ? (st as Writable)
        : (new (class extends Writable {
            override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
              st.write(chunk.toString('utf8'));
              cb();
            }
          })() as Writable);
  } else {
    throw new ImdsguardError('IMDSGUARD_E_INTERNAL', 'jsonl recorder needs a file or a stream');
  }

  let buffer: GuardEvent[] = [];
  let scheduled = false;
  let waitingDrain = false;
  let failed = false;
  let dropped = 0;
  let reportedDrops = 0;
  let closed = false;
  const idle: Array<() => void> = [];

  const onError = (err: Error) => {
    if (!failed) log(`events: writing JSON lines failed, events are now dropped: ${err.message}`);
    failed = true;
    dropped += buffer.length;
    buffer = [];
    waitingDrain = false;
    settle();
  };
  out.on('error', onError);

  function settle(): void {
    if (buffer.length === 0 && !waitingDrain) for (const f of idle.splice(0)) f();
  }

  /** The buffered events as JSON lines; the buffer is empty after. */
  function takeBuffer(): string {
    let chunk = '';
    for (const e of buffer) chunk += `${JSON.stringify(e)}\n`;
    buffer = [];
    return chunk;
  }

  function flush(): void {
    scheduled = false;
    if (waitingDrain || buffer.length === 0) {
      settle();
      return;
    }
    if (failed) {
      dropped += buffer.length;
      buffer = [];
      settle();
      return;
    }
    const chunk = takeBuffer();
    if (dropped > reportedDrops) {
      log(`events: ${dropped - reportedDrops} event(s) dropped (buffer of ${max} full)`);
      reportedDrops = dropped;
    }
    const target = out;
    const ok = target.write(chunk);
    if (!ok) {
      waitingDrain = true;
      target.once('drain', () => {
        if (out !== target) return; // reopened meanwhile: the new output is not waiting
        waitingDrain = false;
        flush();
      });
    } else if (buffer.length > 0) schedule();
    else settle();
  }

  function schedule(): void {
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }

  return {
    get dropped() {
      return dropped;
    },
    get file() {
      return file;
    },
    async reopen(next = file) {
      if (closed || next === undefined) return;
      const stream = openAppend(next);
      const old = owned;
      const oldFile = file;
      // What was recorded before the signal goes where it would have gone (a stream that is
      // waiting for 'drain' still takes it, and is ended, i.e. flushed, below).
      if (buffer.length > 0 && !failed) out.write(takeBuffer());
      out.off('error', onError);
      out = stream;
      owned = stream;
      file = next;
      out.on('error', onError);
      waitingDrain = false;
      if (failed) log(`events: writing to ${next} again`);
      failed = false;
      schedule();
      if (old) await endFile(old, oldFile ?? '', log);
    },
    record(event) {
      if (closed || buffer.length >= max) {
        dropped++;
        return;
      }
      buffer.push(event);
      schedule();
    },
    async close() {
      if (closed) return;
      await new Promise<void>((resolve) => {
        idle.push(resolve);
        schedule();
      });
      closed = true;
      out.off('error', onError);
      if (owned) await endFile(owned, file ?? '', () => {});
    },
  };
}
