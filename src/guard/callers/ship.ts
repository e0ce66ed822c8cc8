import type { EventRecorder, GuardEvent } from '../events/types.js';
import { type CallerRecord, type InstanceIdentity, IntervalCallers } from './interval.js';

/**
 * The caller summary's recorder: counts every event in the current interval (record() is O(1), never
 * waits, never throws) and, every intervalMs, hands one record per caller and version to publish()
 * (the alert pipeline's durable spool, which the CloudWatch Logs sink drains). close() publishes the
 * last, partial interval.
 */
export interface CallerShipperOptions {
  intervalMs: number;
  maxCallers: number;
  host: string;
  mode: GuardEvent['mode'];
  /** The instance's identity, when it can be read (called once per interval until it is known). */
  identity: () => Promise<InstanceIdentity | undefined>;
  publish: (records: CallerRecord[]) => void;
  now?: () => number;
}

export class CallerShipper implements EventRecorder {
  readonly #opts: CallerShipperOptions;
  readonly #now: () => number;
  readonly #counts: IntervalCallers;
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  /** Records handed to publish() so far. */
  published = 0;

  constructor(opts: CallerShipperOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#counts = new IntervalCallers(this.#now(), opts.maxCallers);
    // Read the identity early so the first records (and the log stream) carry it.
    void opts.identity();
    this.#timer = setInterval(() => void this.ship(), opts.intervalMs);
    this.#timer.unref();
  }

  record(event: GuardEvent): void {
    if (!this.#closed) this.#counts.add(event);
  }

  /** Ends the current interval now and publishes its records. */
  async ship(): Promise<void> {
    const identity = await this.#opts.identity().catch(() => undefined);
    const records = this.#counts.records(this.#now(), this.#opts.host, identity, this.#opts.mode);
    this.published += records.length;
    this.#opts.publish(records);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.ship();
  }
}
