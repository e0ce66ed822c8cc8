import type { EventRecorder, GuardEvent } from '../events/types.js';
import type { EventStore } from './port.js';

/**
 * The guard's recorder into an EventStore: record() only buffers (bounded; beyond it events are
 * dropped and counted); batches are inserted off the request path and retention runs periodically.
 */

export interface StoreRecorderOptions {
  /** Events buffered before insert, count; beyond it they are dropped and counted. */
  maxBuffered: number;
  /** Longest wait before a batch is written, milliseconds. */
  flushMs: number;
  /** A batch is written as soon as this many events wait. */
  batchSize: number;
  /** How often retention runs, milliseconds. */
  pruneEveryMs: number;
  now?: () => number;
  log?: (message: string) => void;
}

export const DEFAULT_STORE_RECORDER: StoreRecorderOptions = {
  maxBuffered: 10_000,
  flushMs: 200,
  batchSize: 500,
  pruneEveryMs: 60_000,
};

/** Feeds a store from the request path: record() buffers; inserts run in batches on a later tick. */
export class StoreRecorder implements EventRecorder {
  private buffer: GuardEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pruneTimer: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  dropped = 0;
  inserted = 0;
  failed = 0;
  readonly store: EventStore;
  private readonly opts: StoreRecorderOptions;

  constructor(store: EventStore, opts: StoreRecorderOptions = DEFAULT_STORE_RECORDER) {
    this.store = store;
    this.opts = opts;
    this.pruneTimer = setInterval(() => {
      this.writing = this.writing.then(() => this.prune());
    }, opts.pruneEveryMs);
    this.pruneTimer.unref();
    this.writing = this.prune();
  }

  private async prune(): Promise<void> {
    try {
      await this.store.prune((this.opts.now ?? Date.now)());
    } catch (err) {
      this.opts.log?.(`event store retention failed: ${(err as Error).message}`);
    }
  }

  record(event: GuardEvent): void {
    if (this.closed) return;
    if (this.buffer.length >= this.opts.maxBuffered) {
      this.dropped += 1;
      return;
    }
    this.buffer.push(event);
    if (this.buffer.length >= this.opts.batchSize) this.schedule(0);
    else this.schedule(this.opts.flushMs);
  }

  /** Events waiting to be written. */
  get depth(): number {
    return this.buffer.length;
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined && ms > 0) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
  }

  /** Writes what is buffered; resolves when written. */
  flush(): Promise<void> {
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length > 0) {
      this.writing = this.writing.then(async () => {
        try {
          await this.store.insert(batch);
          this.inserted += batch.length;
        } catch (err) {
          this.failed += batch.length;
          this.opts.log?.(`event store: ${batch.length} events not written: ${(err as Error).message}`);
        }
      });
    }
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    clearInterval(this.pruneTimer);
    await this.flush();
    await this.store.close();
  }
}
